package intune

import (
	"context"
	"fmt"
	"sync"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

func init() {
	err := service.RegisterInput("intune_detected_apps", appsInputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.Input, error) {
			in, err := newAppsInput(conf, mgr)
			if err != nil {
				return nil, err
			}
			replay, err := conf.FieldBool(service.AutoRetryNacksToggleFieldName)
			if err != nil || !replay {
				return in, err
			}
			return newReplayInput(in, mgr.Logger(), in.metrics), nil
		})
	if err != nil {
		panic(err)
	}
}

// The entities of intune_detected_apps, in the intune_entity metadata field.
const (
	metaEntity = "intune_entity"
	metaAppID  = "intune_app_id"

	entityDetectedApp = "detected_app"
	entityDeviceApp   = "device_app"
)

// Boxed once: every message's metadata shares these values.
var (
	entityDetectedAppMeta any = entityDetectedApp
	entityDeviceAppMeta   any = entityDeviceApp
)

// appsItem is what the background sync hands to Read: one page of apps,
// or the pairs of one app or one device.
type appsItem struct {
	bodies    [][]byte
	entity    any
	appIDs    []any // intune_app_id of each body
	deviceIDs []any // intune_device_id of each body (nil for apps)
	operation any   // intune_operation: nil for upserts
	run       *appsRun
	acks      *pageAcks
}

type detectedAppsInput struct {
	conf        appsConfig
	log         *service.Logger
	redact      redactor
	client      *graph.Client
	throttle    *graph.Throttle
	state       *stateStore      // nil without state_cache
	checkpoints *checkpointStore // nil without checkpoint_cache
	metrics     *inputMetrics

	connMu sync.Mutex
	items  chan appsItem // closed when the input is done
	cancel context.CancelFunc
	done   chan struct{}

	// Read's cursor into the current item.
	readMu sync.Mutex
	cur    appsItem
	next   int
}

func newAppsInput(conf *service.ParsedConfig, mgr *service.Resources) (*detectedAppsInput, error) {
	c, err := parseAppsConfig(conf)
	if err != nil {
		return nil, err
	}
	in := &detectedAppsInput{
		conf:     c,
		log:      mgr.Logger(),
		redact:   newRedactor(c.cred.secrets()...),
		metrics:  newInputMetrics(mgr.Metrics()),
		throttle: graph.NewThrottle(c.requestsPerSecond, c.maxConcurrency),
	}
	if in.client, err = c.newClient(in.metrics, retryLogger(in.log, in.redact, in.metrics)); err != nil {
		return nil, err
	}
	in.client.Throttle = in.throttle
	if c.stateCache != "" {
		if !mgr.HasCache(c.stateCache) {
			return nil, fmt.Errorf("%s: cache resource %q is not defined", fieldStateCache, c.stateCache)
		}
		in.state = &stateStore{
			res:   mgr,
			cache: c.stateCache,
			key:   storeKey(appsStateKeyPrefix, c.keyScope(), graph.DetectedAppsURL(c.graphURL)),
		}
	}
	if c.checkpointCache != "" {
		if !mgr.HasCache(c.checkpointCache) {
			return nil, fmt.Errorf("%s: cache resource %q is not defined", fieldCheckpointCache, c.checkpointCache)
		}
		in.checkpoints = &checkpointStore{
			res:   mgr,
			cache: c.checkpointCache,
			key:   storeKey(appsCheckpointKeyPrefix, c.keyScope(), graph.DetectedAppsURL(c.graphURL)),
		}
	}
	return in, nil
}

// Connect starts the background sync; it does no network I/O itself.
func (in *detectedAppsInput) Connect(context.Context) error {
	in.connMu.Lock()
	defer in.connMu.Unlock()
	if in.items != nil {
		return nil
	}
	runCtx, cancel := context.WithCancel(context.Background())
	in.items = make(chan appsItem)
	in.cancel = cancel
	in.done = make(chan struct{})
	go in.run(runCtx, in.items, in.done)
	return nil
}

// Read hands out the messages of the current item one by one.
func (in *detectedAppsInput) Read(ctx context.Context) (*service.Message, service.AckFunc, error) {
	in.connMu.Lock()
	items := in.items
	in.connMu.Unlock()
	if items == nil {
		return nil, nil, service.ErrNotConnected
	}

	in.readMu.Lock()
	defer in.readMu.Unlock()
	for in.next >= len(in.cur.bodies) {
		select {
		case item, open := <-items:
			if !open {
				return nil, nil, service.ErrEndOfInput
			}
			in.cur, in.next = item, 0
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	i := in.next
	in.next++

	msg := service.NewMessage(in.cur.bodies[i])
	msg.MetaSetMut(metaEntity, in.cur.entity)
	msg.MetaSetMut(metaAppID, in.cur.appIDs[i])
	if in.cur.deviceIDs != nil {
		msg.MetaSetMut(metaDeviceID, in.cur.deviceIDs[i])
	}
	msg.MetaSetMut(metaSyncID, in.cur.run.idMeta)
	msg.MetaSetMut(metaSyncStartedAt, in.cur.run.startedAtMeta)
	if in.cur.operation != nil {
		msg.MetaSetMut(metaOperation, in.cur.operation)
	} else {
		msg.MetaSetMut(metaOperation, opUpsertMeta)
	}
	return msg, in.cur.acks.ack, nil
}

// Close stops the background sync and waits for it, within ctx.
func (in *detectedAppsInput) Close(ctx context.Context) error {
	in.connMu.Lock()
	cancel, done := in.cancel, in.done
	in.connMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
