package intune

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

func init() {
	registerInput("intune_managed_devices", inputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Input, *inputMetrics, error) {
		in, err := newInput(conf, mgr)
		if err != nil {
			return nil, nil, err
		}
		return in, in.metrics, nil
	})
}

// registerInput registers one of our inputs, wrapped in our own replay of
// refused messages when auto_replay_nacks is on (not Benthos'
// AutoRetryNacks: see replay.go for why).
func registerInput(name string, spec *service.ConfigSpec, build func(*service.ParsedConfig, *service.Resources) (service.Input, *inputMetrics, error)) {
	err := service.RegisterInput(name, spec, func(conf *service.ParsedConfig, mgr *service.Resources) (service.Input, error) {
		in, metrics, err := build(conf, mgr)
		if err != nil {
			return nil, err
		}
		replay, err := conf.FieldBool(service.AutoRetryNacksToggleFieldName)
		if err != nil || !replay {
			return in, err
		}
		return newReplayInput(in, mgr.Logger(), metrics), nil
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
	bodies [][]byte
	ids    []any // intune_device_id of each body (nil for markers)
	// With details: intune_details_fetched_at (nil: none known) and
	// intune_details of each body.
	detailsAt, detailsStatus []any
	operation                any // intune_operation, boxed once
	pageMeta                 any // intune_page (0 for deletions and markers), boxed once
	run                      *syncRun
	acks                     *pageAcks
}

type managedDevicesInput struct {
	conf        inputConfig
	log         *service.Logger
	redact      redactor
	tenant      string // the tenant read; empty on an input with tenants
	client      *graph.Client
	checkpoints *checkpointStore // nil without checkpoint_cache
	state       *stateStore      // nil without state_cache
	metrics     *inputMetrics

	// With details: the journal of what was fetched since the state was
	// saved (nil without state_cache), the clock their ages are measured
	// by, and how many devices got their first details (see refreshAfter),
	// counted on from those the first sync's state knew.
	detailsJournal    *detailsJournal
	detailsClock      func() time.Time
	detailsSpread     atomic.Uint64
	detailsSpreadOnce sync.Once

	// With tenants: one input per tenant, each with its own client,
	// throttle, state and checkpoint, made when the tenant is first read;
	// a tenant's input holds its lease while it syncs (see whileLeased).
	tenants *tenantInputs[*managedDevicesInput]
	tenantHold

	bg background[pageItem]
}

func newInput(conf *service.ParsedConfig, mgr *service.Resources) (*managedDevicesInput, error) {
	c, err := parseInputConfig(conf)
	if err != nil {
		return nil, err
	}
	if c.details.enabled && len(c.details.properties) == 0 {
		mgr.Logger().Warnf("details: select names none of the properties Graph's list leaves at a default, so there are no details to fetch; name them in select or in details.properties")
		c.details.enabled = false
	}
	if !c.tenants.enabled() {
		return newTenantInput(c, mgr, c.tenantID)
	}
	in := &managedDevicesInput{
		conf:    c,
		log:     mgr.Logger(),
		redact:  newRedactor(c.cred.secrets()...),
		metrics: newInputMetrics(mgr.Metrics(), ""),
	}
	in.tenants = newTenantInputs(func(tenant tenantEntry) (*managedDevicesInput, error) {
		tc := c
		var err error
		if tc.graphAccess, err = c.graphAccess.forTenant(tenant); err != nil {
			return nil, err
		}
		return newTenantInput(tc, mgr, tenant.id)
	})
	return in, nil
}

// newTenantInput is the input reading one tenant: c's tenant_id, or one of
// its tenants.
func newTenantInput(c inputConfig, mgr *service.Resources, tenant string) (*managedDevicesInput, error) {
	in := &managedDevicesInput{
		conf:    c,
		log:     mgr.Logger(),
		redact:  newRedactor(c.cred.secrets()...),
		tenant:  tenant,
		metrics: newInputMetrics(mgr.Metrics(), tenant),
	}
	if c.tenants.enabled() {
		// Tenants sync side by side: each line says whose it is.
		in.log = in.log.With(contract.TenantID, tenant)
	}
	var err error
	if in.client, err = c.newClient(in.metrics, retryLogger(in.log, in.redact, in.metrics)); err != nil {
		return nil, err
	}
	// The listing and the details share one budget. A second's worth may
	// go at once, no more: Intune counts 2,000 requests per 20 s, and a
	// window's worth at once followed by the full rate would be twice that
	// in the first window.
	in.client.Throttle = c.pacing.throttle()
	if in.detailsClock, err = detailsClock(in.log); err != nil {
		return nil, err
	}
	ignore := map[string]bool{}
	for _, p := range c.ignoreProperties {
		ignore[p] = true
	}
	keys := managedDevicesEntity.storeKeys(c.keyScope(), graph.CollectionURL(c.graphURL, managedDevicesEntity.path, c.query))
	if in.state, err = newStateStore(mgr, c.stateCache, keys.state, fingerprinter{ignore: ignore}); err != nil {
		return nil, err
	}
	if in.checkpoints, err = newCheckpointStore(mgr, c.checkpointCache, keys.checkpoint); err != nil {
		return nil, err
	}
	if in.state != nil && in.conf.details.enabled {
		in.detailsJournal = newDetailsJournal(in.state)
	}
	in.lease = leaseOf(mgr, c.tenants, c.stateCache, keys.state, c.checkpointCache, keys.checkpoint)
	in.leaseWarn = func(err error) { in.log.Warnf("%v", err) }
	return in, nil
}

// Connect starts the background sync (see background.start).
func (in *managedDevicesInput) Connect(context.Context) error {
	in.bg.start(in.run)
	return nil
}

// Read hands out the devices of the current page one by one, waiting for the
// next page when it is drained.
func (in *managedDevicesInput) Read(ctx context.Context) (*service.Message, service.AckFunc, error) {
	return in.bg.read(ctx, func(cur pageItem, i int) (*service.Message, service.AckFunc) {
		msg := service.NewMessage(cur.bodies[i])
		// The values are boxed once per page, not once per device.
		msg.MetaSetMut(contract.TenantID, cur.run.tenantMeta)
		msg.MetaSetMut(contract.SyncID, cur.run.idMeta)
		msg.MetaSetMut(contract.SyncStartedAt, cur.run.startedAtMeta)
		msg.MetaSetMut(contract.Page, cur.pageMeta)
		msg.MetaSetMut(contract.APIVersion, cur.run.apiVersionMeta)
		msg.MetaSetMut(contract.Operation, cur.operation)
		if cur.ids != nil && cur.ids[i] != nil {
			msg.MetaSetMut(contract.DeviceID, cur.ids[i])
		}
		if cur.detailsStatus != nil {
			msg.MetaSetMut(contract.Details, cur.detailsStatus[i])
			if cur.detailsAt[i] != nil {
				msg.MetaSetMut(contract.DetailsFetchedAt, cur.detailsAt[i])
			}
		}
		return msg, cur.acks.ack
	})
}

// Close stops the background sync and waits for it, within ctx.
func (in *managedDevicesInput) Close(ctx context.Context) error { return in.bg.stop(ctx) }
