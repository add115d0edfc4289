package intune

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/benthosdev/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

const (
	dlFieldOutput     = "output"
	dlFieldDeadLetter = "dead_letter"
	dlFieldBatching   = "batching"
	dlFieldInFlight   = "max_in_flight"
)

func deadLetterSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Writes batches to `output`; a device that output refuses for its content goes to `dead_letter` instead of holding back its batch.").
		Description(`
A batch the output refuses for a reason that lies in a device (PostgreSQL's data exceptions and
constraint violations, SQLSTATE classes 22 and 23, such as a NUL character jsonb cannot hold;
SQLite's SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH and SQLITE_RANGE, and its malformed JSON; Kafka's
MESSAGE_TOO_LARGE and INVALID_RECORD; a message that is not a device) is split in halves and
written again until the devices that cause it are alone, or, when the output names them in a batch
error as ` + "`intune_sqlite`" + ` does, taken from it: the rest of the batch is written, and each refused device is written to
` + "`dead_letter`" + ` with the error in the metadata ` + "`intune_rejection`" + `, logged once at WARN with its id and the error,
and counted in ` + "`intune_devices_dead_lettered`" + `. Any other error (connection refused or reset, timeouts,
serialization failures, deadlocks, a server shutting down, a locked database) is the destination's
state, not a device's: the batch is refused as a whole, and ` + "`intune_managed_devices`" + ` sends it again
once the destination is back. A dead letter that cannot be written refuses its device the same way.

A one-shot run whose devices all arrived but some only in the dead letter exits with status 3.`).
		Field(service.NewOutputField(dlFieldOutput).
			Description("The destination. It receives whole batches: put batch processors (archive) in its `processors`.")).
		Field(service.NewOutputField(dlFieldDeadLetter).
			Description("Where refused devices go, one message each, with the metadata `intune_rejection`.")).
		Field(service.NewBatchPolicyField(dlFieldBatching)).
		Field(service.NewIntField(dlFieldInFlight).
			Description("Batches written at once.").
			Default(1))
}

func init() {
	err := service.RegisterBatchOutput("intune_dead_letter", deadLetterSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			out, err := conf.FieldOutput(dlFieldOutput)
			if err != nil {
				return nil, service.BatchPolicy{}, 0, err
			}
			dl, err := conf.FieldOutput(dlFieldDeadLetter)
			if err != nil {
				return nil, service.BatchPolicy{}, 0, err
			}
			policy, err := conf.FieldBatchPolicy(dlFieldBatching)
			if err != nil {
				return nil, service.BatchPolicy{}, 0, err
			}
			inFlight, err := conf.FieldInt(dlFieldInFlight)
			if err != nil {
				return nil, service.BatchPolicy{}, 0, err
			}
			return &deadLetterOutput{
				out: out, deadLetter: dl, log: mgr.Logger(),
				counted: mgr.Metrics().NewCounter("intune_devices_dead_lettered"),
			}, policy, inFlight, nil
		})
	if err != nil {
		panic(err)
	}
}

// deadLettered counts the devices of this process that went to a dead
// letter, for the sync's last log line and the exit status.
var deadLettered atomic.Int64

// DeadLettered is how many devices this process sent to a dead letter.
func DeadLettered() int64 { return deadLettered.Load() }

type deadLetterOutput struct {
	out, deadLetter *service.OwnedOutput
	log             *service.Logger
	counted         *service.MetricCounter

	primeOnce sync.Once
	primeErr  error
}

// Connect starts both outputs: one never written to must still close.
func (d *deadLetterOutput) Connect(context.Context) error {
	d.primeOnce.Do(func() { d.primeErr = errors.Join(d.out.Prime(), d.deadLetter.Prime()) })
	return d.primeErr
}

func (d *deadLetterOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	failed := map[int]error{}
	d.write(ctx, batch, indexes(len(batch)), failed)
	if len(failed) == 0 {
		return nil
	}
	var first error
	for _, err := range failed {
		first = err
		break
	}
	berr := service.NewBatchError(batch, first)
	for i, err := range failed {
		berr = berr.Failed(i, err)
	}
	return berr
}

// write writes the messages of batch at idx, splitting them while a device
// refuses them for its content; failed collects the messages to send again.
func (d *deadLetterOutput) write(ctx context.Context, batch service.MessageBatch, idx []int, failed map[int]error) {
	part := make(service.MessageBatch, len(idx))
	for k, i := range idx {
		part[k] = batch[i].Copy() // the output's processors change what they get
	}
	indexer := part.Index()
	err := d.out.WriteBatch(ctx, part)
	if err == nil {
		return
	}
	var berr *service.BatchError
	if errors.As(err, &berr) && berr.IndexedErrors() > 0 {
		// The output wrote the rest of the part and names the devices it
		// did not write (intune_sqlite).
		done := map[int]bool{}
		berr.WalkMessagesIndexedBy(indexer, func(k int, _ *service.Message, merr error) bool {
			if merr == nil || k < 0 || k >= len(idx) || done[k] {
				return true
			}
			done[k] = true
			if reason, content := refusedForContent(merr); content {
				d.reject(ctx, batch[idx[k]], reason, merr, idx[k], failed)
			} else {
				failed[idx[k]] = merr
			}
			return true
		})
		if len(done) == 0 {
			// The error named no message of the part it was given (a
			// processor of the output's own re-made them): nothing tells
			// which were written, so all are sent again.
			for _, i := range idx {
				failed[i] = err
			}
		}
		return
	}
	reason, content := refusedForContent(err)
	switch {
	case !content:
		for _, i := range idx {
			failed[i] = err
		}
	case len(idx) > 1:
		half := len(idx) / 2
		d.write(ctx, batch, idx[:half], failed)
		d.write(ctx, batch, idx[half:], failed)
	default:
		d.reject(ctx, batch[idx[0]], reason, err, idx[0], failed)
	}
}

// reject writes one refused device to the dead letter.
func (d *deadLetterOutput) reject(ctx context.Context, msg *service.Message, reason string, cause error, i int, failed map[int]error) {
	dead := msg.Copy()
	dead.MetaSetMut(contract.Rejection, reason)
	if err := d.deadLetter.WriteBatch(ctx, service.MessageBatch{dead}); err != nil {
		failed[i] = fmt.Errorf("writing a refused device to the dead letter: %w", err)
		return
	}
	deadLettered.Add(1)
	d.counted.Incr(1)
	id, _ := msg.MetaGet(contract.DeviceID)
	d.log.Warnf("The destination refused device %s for its content (%v): it is in the dead letter, the rest of its batch was written", id, cause)
}

func (d *deadLetterOutput) Close(ctx context.Context) error {
	return errors.Join(d.out.Close(ctx), d.deadLetter.Close(ctx))
}

func indexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// refusedForContent tells an error caused by what a device holds from one
// caused by the destination's state, and describes it for the dead letter.
// Only what is known to be about content counts: anything else is retried.
func refusedForContent(err error) (reason string, content bool) {
	if errors.Is(err, errUnreadableDevice) {
		return err.Error(), true
	}
	var state interface{ SQLState() string } // lib/pq and pgx
	if errors.As(err, &state) {
		code := state.SQLState()
		return fmt.Sprintf("SQLSTATE %s: %v", code, err), strings.HasPrefix(code, "22") || strings.HasPrefix(code, "23")
	}
	var sqlite interface{ Code() int } // modernc.org/sqlite
	if errors.As(err, &sqlite) {
		switch sqlite.Code() & 0xff {
		case 18, 19, 20, 25: // SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE
			return err.Error(), true
		case 1:
			// SQLITE_ERROR is also a missing table or a wrong statement:
			// only a device a column's json_extract cannot read is the
			// device's fault.
			return err.Error(), strings.Contains(err.Error(), "malformed JSON")
		}
		return err.Error(), false
	}
	if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.InvalidRecord) {
		return err.Error(), true
	}
	return err.Error(), false
}
