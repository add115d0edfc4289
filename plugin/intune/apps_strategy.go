package intune

import (
	"context"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// chooseStrategy settles run's strategy and lists the devices when it
// needs them. auto counts the requests of both ways from the app listing,
// which carries each app's deviceCount, and the device listing:
//
//   - per_app sends one request per page of each app's devices;
//   - per_device one per page of each device's apps: at least one per
//     device, and at least the pairs (the sum of the deviceCounts) over
//     the page size.
//
// The device listing itself costs one request per 1,000 devices, which
// auto spends to choose right.
func (in *detectedAppsInput) chooseStrategy(ctx context.Context, run *appsRun, apps []appRef) ([]deviceRef, error) {
	if run.strategy == "" { // a resumed sync keeps its own
		run.strategy = in.conf.strategy
	}
	perApp := perAppRequests(apps)
	if run.strategy == strategyPerApp {
		run.planned = perApp
		in.log.Infof("Sync %s: %d apps, joined per app in about %d requests", run.id, len(apps), perApp)
		return nil, nil
	}
	devices, err := in.listDevices(ctx)
	if err != nil {
		return nil, err
	}
	perDevice := perDeviceRequests(apps, len(devices))
	if run.strategy == strategyAuto {
		run.strategy = strategyPerDevice
		if perApp <= perDevice {
			run.strategy = strategyPerApp
		}
		in.log.Infof("Sync %s: %d apps on %d devices; per_app needs about %d requests, per_device about %d: joining %s",
			run.id, len(apps), len(devices), perApp, perDevice, run.strategy)
	}
	if run.strategy == strategyPerApp {
		run.planned = perApp
		return nil, nil
	}
	run.planned = perDevice
	return devices, nil
}

// pagesOf is how many requests list n elements, one page at least.
func pagesOf(n, pageSize int) int {
	return max(1, (n+pageSize-1)/pageSize)
}

// perAppRequests counts the requests of the per_app strategy.
func perAppRequests(apps []appRef) int {
	n := 0
	for _, a := range apps {
		n += pagesOf(a.deviceCount, graph.RelationshipPageSize)
	}
	return n
}

// perDeviceRequests estimates the requests of the per_device strategy: how
// the pairs spread over devices is known only once they are read.
func perDeviceRequests(apps []appRef, devices int) int {
	pairs := 0
	for _, a := range apps {
		pairs += a.deviceCount
	}
	if devices == 0 {
		return 0
	}
	return max(devices, (pairs+graph.RelationshipPageSize-1)/graph.RelationshipPageSize)
}
