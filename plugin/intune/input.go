package intune

import (
	"context"
	"fmt"
	"sync"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

func init() {
	err := service.RegisterInput("intune_managed_devices", inputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.Input, error) {
			in, err := newInput(conf, mgr)
			if err != nil {
				return nil, err
			}
			// Our own replay of refused messages, not Benthos'
			// AutoRetryNacks: see replay.go for why.
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

// userAgent identifies us to Microsoft, as Graph's best practices ask.
const userAgent = "intune-benthos (+https://github.com/intune-benthos/intune-benthos)"

// pageItem is what the background sync hands to Read: one page's devices
// to emit, or a sync's deletions or markers.
type pageItem struct {
	bodies    [][]byte
	ids       []any // intune_device_id of each body (nil for markers)
	operation any   // intune_operation, boxed once
	pageMeta  any   // intune_page (0 for deletions and markers), boxed once
	run       *syncRun
	acks      *pageAcks
}

type managedDevicesInput struct {
	conf        inputConfig
	log         *service.Logger
	redact      redactor
	client      *graph.Client
	checkpoints *checkpointStore // nil without checkpoint_cache
	state       *stateStore      // nil without state_cache
	metrics     *inputMetrics

	connMu sync.Mutex
	items  chan pageItem // closed when the input is done
	cancel context.CancelFunc
	done   chan struct{}

	// Read's cursor into the current page.
	readMu sync.Mutex
	cur    pageItem
	next   int
}

func newInput(conf *service.ParsedConfig, mgr *service.Resources) (*managedDevicesInput, error) {
	c, err := parseInputConfig(conf)
	if err != nil {
		return nil, err
	}
	in := &managedDevicesInput{
		conf:    c,
		log:     mgr.Logger(),
		redact:  newRedactor(c.cred.secrets()...),
		metrics: newInputMetrics(mgr.Metrics()),
	}
	if in.client, err = c.newClient(in.metrics, retryLogger(in.log, in.redact, in.metrics)); err != nil {
		return nil, err
	}
	if in.state, err = c.newStateStore(mgr); err != nil {
		return nil, err
	}
	if in.checkpoints, err = c.newCheckpointStore(mgr); err != nil {
		return nil, err
	}
	return in, nil
}

// newStateStore is the store of state_cache, nil without one.
func (c inputConfig) newStateStore(mgr *service.Resources) (*stateStore, error) {
	if c.stateCache == "" {
		return nil, nil
	}
	if !mgr.HasCache(c.stateCache) {
		return nil, fmt.Errorf("%s: cache resource %q is not defined", fieldStateCache, c.stateCache)
	}
	ignore := map[string]bool{}
	for _, p := range c.ignoreProperties {
		ignore[p] = true
	}
	return &stateStore{
		res:   mgr,
		cache: c.stateCache,
		key:   storeKey(stateKeyPrefix, c.keyScope(), graph.ManagedDevicesURL(c.graphURL, c.query)),
		fp:    fingerprinter{ignore: ignore},
	}, nil
}

// newCheckpointStore is the store of checkpoint_cache, nil without one.
func (c inputConfig) newCheckpointStore(mgr *service.Resources) (*checkpointStore, error) {
	if c.checkpointCache == "" {
		return nil, nil
	}
	if !mgr.HasCache(c.checkpointCache) {
		return nil, fmt.Errorf("%s: cache resource %q is not defined", fieldCheckpointCache, c.checkpointCache)
	}
	return &checkpointStore{
		res:   mgr,
		cache: c.checkpointCache,
		key:   storeKey(checkpointKeyPrefix, c.keyScope(), graph.ManagedDevicesURL(c.graphURL, c.query)),
	}, nil
}

// Connect starts the background sync. It does no network I/O itself: a
// wrong secret or a missing permission is a sync failure with a clear
// message, not a connection Benthos would retry forever.
func (in *managedDevicesInput) Connect(ctx context.Context) error {
	in.connMu.Lock()
	defer in.connMu.Unlock()
	if in.items != nil {
		return nil
	}
	runCtx, cancel := context.WithCancel(context.Background())
	in.items = make(chan pageItem) // unbuffered: at most one page fetched ahead
	in.cancel = cancel
	in.done = make(chan struct{})
	go in.run(runCtx, in.items, in.done)
	return nil
}

// Read hands out the devices of the current page one by one, waiting for the
// next page when it is drained.
func (in *managedDevicesInput) Read(ctx context.Context) (*service.Message, service.AckFunc, error) {
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
	body := in.cur.bodies[in.next]
	in.next++

	msg := service.NewMessage(body)
	// The values are boxed once per page, not once per device.
	msg.MetaSetMut(metaSyncID, in.cur.run.idMeta)
	msg.MetaSetMut(metaSyncStartedAt, in.cur.run.startedAtMeta)
	msg.MetaSetMut(metaPage, in.cur.pageMeta)
	msg.MetaSetMut(metaAPIVersion, in.cur.run.apiVersionMeta)
	msg.MetaSetMut(metaOperation, in.cur.operation)
	if in.cur.ids != nil && in.cur.ids[in.next-1] != nil {
		msg.MetaSetMut(metaDeviceID, in.cur.ids[in.next-1])
	}
	return msg, in.cur.acks.ack, nil
}

// Close stops the background sync and waits for it, within ctx.
func (in *managedDevicesInput) Close(ctx context.Context) error {
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
