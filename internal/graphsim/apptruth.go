package graphsim

// Ground truth for tests and benchmarks of app inventory clients: what the
// tenant holds now, and how many requests each way of reading it takes.

// DetectedApp is one app as the tenant holds it now.
type DetectedApp struct {
	ID, DisplayName, Version, Publisher string
	Platform                            string // detectedAppPlatformType: windows, ios, androidWorkProfile, macOS
	SizeInByte                          int64
	DeviceCount                         int
}

// DetectedApps returns every app in the tenant now, in listing order (that
// of GET detectedApps).
func (s *Server) DetectedApps() []DetectedApp {
	v := s.appView(s.state())
	out := make([]DetectedApp, 0, len(v.listed))
	for _, a := range v.listed {
		e := v.entry(int(a))
		out = append(out, DetectedApp{
			ID:          s.AppID(int(a)),
			DisplayName: e.name,
			Version:     e.version,
			Publisher:   e.publisher,
			Platform:    detectedAppPlatforms[e.os],
			SizeInByte:  e.size,
			DeviceCount: int(v.counts[a]),
		})
	}
	return out
}

// AppPair is one app on one device.
type AppPair struct {
	DeviceID, DeviceName, AppID string
}

// DeviceAppPairs returns every (device, app) pair of the tenant now,
// device by device in the listing order of managedDevices, each device's
// apps in the listing order of detectedApps: the rows of an AppInvRawData
// export, and what a walk of either relationship finds. DeviceName is the
// device's current name.
func (s *Server) DeviceAppPairs() []AppPair {
	st := s.state()
	v := s.appView(st)
	var out []AppPair
	_ = s.eachHolder(st, v, func(i int, d *device, apps []int32) error {
		id := s.DeviceID(i)
		for _, a := range apps {
			out = append(out, AppPair{DeviceID: id, DeviceName: d.name, AppID: s.AppID(int(a))})
		}
		return nil
	})
	return out
}

// PageCounts are the requests a complete walk of each collection takes
// now, for one page size.
type PageCounts struct {
	ManagedDevices int // pages of managedDevices (at least 1)
	DetectedApps   int // pages of detectedApps (at least 1)
	// AppDevices sums, over every listed app, the pages of its
	// managedDevices: a per-app client makes DetectedApps + AppDevices
	// requests.
	AppDevices int
	// DeviceApps sums, over every listed device, the pages of its beta
	// detectedApps (a device without apps still takes one request): a
	// per-device client makes ManagedDevices + DeviceApps requests.
	DeviceApps int
}

// Total is every request of the three walks together.
func (p PageCounts) Total() int {
	return p.ManagedDevices + p.DetectedApps + p.AppDevices + p.DeviceApps
}

// PageCounts returns the requests complete walks take with pageSize items
// a page ($top); 0 takes each collection's default (Config.PageSize for
// managedDevices, Config.AppPageSize for the others). With a throttle,
// Config.Throttle.Floor of a client's total is the least time it needs.
func (s *Server) PageCounts(pageSize int) PageCounts {
	st := s.state()
	v := s.appView(st)
	devSize, appSize := pageSize, pageSize
	if pageSize <= 0 {
		devSize, appSize = s.cfg.PageSize, s.cfg.AppPageSize
	}
	pages := func(n, size int) int { return max(1, (n+size-1)/size) }
	p := PageCounts{
		ManagedDevices: pages(st.devices-len(st.removed), devSize),
		DetectedApps:   pages(len(v.listed), appSize),
	}
	for _, a := range v.listed {
		p.AppDevices += pages(int(v.counts[a]), appSize)
	}
	for i := 0; i < st.devices; i++ {
		if st.listed(i) {
			p.DeviceApps += pages(len(v.deviceApps(st, i)), appSize)
		}
	}
	return p
}
