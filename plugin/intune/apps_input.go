package intune

import (
	"context"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

func init() {
	registerInput("intune_detected_apps", appsInputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Input, *inputMetrics, error) {
		in, err := newAppsInput(conf, mgr)
		if err != nil {
			return nil, nil, err
		}
		return in, in.metrics, nil
	})
}

// Boxed once: every message's metadata shares these values.
var (
	entityDetectedAppMeta any = contract.EntityDetectedApp
	entityDeviceAppMeta   any = contract.EntityDeviceApp
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
	kept      bool // change detection already saw it
}

type detectedAppsInput struct {
	conf        appsConfig
	log         *service.Logger
	redact      redactor
	tenant      string // the tenant read; empty on an input with tenants
	client      *graph.Client
	throttle    *graph.Throttle
	state       *appsStateStore  // nil without state_cache
	checkpoints *checkpointStore // nil without checkpoint_cache
	metrics     *inputMetrics

	// With tenants: one input per tenant (see managedDevicesInput).
	tenants *tenantInputs[*detectedAppsInput]
	tenantHold

	bg background[appsItem]
}

func newAppsInput(conf *service.ParsedConfig, mgr *service.Resources) (*detectedAppsInput, error) {
	c, err := parseAppsConfig(conf)
	if err != nil {
		return nil, err
	}
	if !c.tenants.enabled() {
		return newTenantAppsInput(c, mgr, c.tenantID)
	}
	in := &detectedAppsInput{
		conf:    c,
		log:     mgr.Logger(),
		redact:  newRedactor(c.cred.secrets()...),
		metrics: newInputMetrics(mgr.Metrics(), ""),
	}
	in.tenants = newTenantInputs(func(tenant tenantEntry) (*detectedAppsInput, error) {
		tc := c
		var err error
		if tc.graphAccess, err = c.graphAccess.forTenant(tenant); err != nil {
			return nil, err
		}
		return newTenantAppsInput(tc, mgr, tenant.id)
	})
	return in, nil
}

// newTenantAppsInput is the input reading one tenant.
func newTenantAppsInput(c appsConfig, mgr *service.Resources, tenant string) (*detectedAppsInput, error) {
	in := &detectedAppsInput{
		conf:     c,
		log:      mgr.Logger(),
		redact:   newRedactor(c.cred.secrets()...),
		tenant:   tenant,
		metrics:  newInputMetrics(mgr.Metrics(), tenant),
		throttle: c.pacing.throttle(),
	}
	if c.tenants.enabled() {
		in.log = in.log.With(contract.TenantID, tenant)
	}
	var err error
	if in.client, err = c.newClient(in.metrics, retryLogger(in.log, in.redact, in.metrics)); err != nil {
		return nil, err
	}
	in.client.Throttle = in.throttle
	keys := detectedAppsEntity.storeKeys(c.keyScope(), detectedAppsURL(c.graphURL))
	if in.state, err = newAppsStateStore(mgr, c.stateCache, keys.state); err != nil {
		return nil, err
	}
	if in.checkpoints, err = newCheckpointStore(mgr, c.checkpointCache, keys.checkpoint); err != nil {
		return nil, err
	}
	in.lease = leaseOf(mgr, c.tenants, c.stateCache, keys.state, c.checkpointCache, keys.checkpoint)
	in.leaseWarn = func(err error) { in.log.Warnf("%v", err) }
	return in, nil
}

// Connect starts the background sync (see background.start).
func (in *detectedAppsInput) Connect(context.Context) error {
	in.bg.start(in.run)
	return nil
}

// Read hands out the messages of the current item one by one.
func (in *detectedAppsInput) Read(ctx context.Context) (*service.Message, service.AckFunc, error) {
	return in.bg.read(ctx, func(cur appsItem, i int) (*service.Message, service.AckFunc) {
		msg := service.NewMessage(cur.bodies[i])
		msg.MetaSetMut(contract.Entity, cur.entity)
		msg.MetaSetMut(contract.AppID, cur.appIDs[i])
		if cur.deviceIDs != nil {
			msg.MetaSetMut(contract.DeviceID, cur.deviceIDs[i])
		}
		msg.MetaSetMut(contract.TenantID, cur.run.tenantMeta)
		msg.MetaSetMut(contract.SyncID, cur.run.idMeta)
		msg.MetaSetMut(contract.SyncStartedAt, cur.run.startedAtMeta)
		if cur.operation != nil {
			msg.MetaSetMut(contract.Operation, cur.operation)
		} else {
			msg.MetaSetMut(contract.Operation, opUpsertMeta)
		}
		return msg, cur.acks.ack
	})
}

// Close stops the background sync and waits for it, within ctx.
func (in *detectedAppsInput) Close(ctx context.Context) error { return in.bg.stop(ctx) }
