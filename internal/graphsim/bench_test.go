package graphsim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// discard is a ResponseWriter that counts bytes, so the benchmark measures
// generation rather than a recorder's buffer.
type discard struct {
	h http.Header
	n int64
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(b []byte) (int, error) { d.n += int64(len(b)); return len(b), nil }

// BenchmarkPage serves one 1000-device page, the default page size.
func BenchmarkPage(b *testing.B) {
	s := New(Config{Devices: 1_000_000, Seed: 1})
	token := s.issueToken()
	req := httptest.NewRequest(http.MethodGet, "/v1.0/deviceManagement/managedDevices", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	b.ReportAllocs()
	var bytes int64
	for b.Loop() {
		w := &discard{h: http.Header{}}
		s.ServeHTTP(w, req)
		bytes = w.n
	}
	b.SetBytes(bytes)
}

// BenchmarkFilteredPage serves a 1000-device page of Windows devices
// from the middle of a million-device tenant.
func BenchmarkFilteredPage(b *testing.B) {
	s := New(Config{Devices: 1_000_000, Seed: 1})
	token := s.issueToken()
	tok := appendSkipToken(nil, "x", []byte(s.DeviceID(500_000)))
	req := httptest.NewRequest(http.MethodGet, "/v1.0/deviceManagement/managedDevices?$filter=operatingSystem%20eq%20'Windows'&$skiptoken="+string(tok), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	s.osCounts() // built once per server, not per page
	b.ReportAllocs()
	for b.Loop() {
		w := &discard{h: http.Header{}}
		s.ServeHTTP(w, req)
		if w.n < 1000 {
			b.Fatal("empty page")
		}
	}
}

func BenchmarkDevice(b *testing.B) {
	s := New(Config{Devices: 1000, Seed: 1})
	var d device
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.generate(i%1000, &d)
		buf = appendDevice(buf[:0], &d, v1Properties)
		i++
	}
}

// BenchmarkAppIndex builds the inventory of 10,000 devices holding 150
// apps each on Windows (fewer elsewhere), among 20,000 apps, and reports
// the heap it keeps.
func BenchmarkAppIndex(b *testing.B) {
	cfg := Config{Devices: 10_000, DetectedApps: 20_000, AppsPerDevice: 150, Seed: 1}
	var pairs int
	var heap uint64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		x := buildAppIndex(cfg, New(cfg).osOf)
		runtime.GC()
		runtime.ReadMemStats(&after)
		pairs, heap = len(x.appDev), after.HeapAlloc-before.HeapAlloc
		runtime.KeepAlive(x)
	}
	b.ReportMetric(float64(pairs), "pairs")
	b.ReportMetric(float64(heap)/1e6, "MB")
}

// BenchmarkAppDevicesPage serves a 1000-device page of the devices of the
// most widespread app, with $select=id,deviceName.
func BenchmarkAppDevicesPage(b *testing.B) {
	s := New(Config{Devices: 10_000, DetectedApps: 20_000, Seed: 1})
	token := s.issueToken()
	top := s.DetectedApps()[0]
	for _, a := range s.DetectedApps() {
		if a.DeviceCount > top.DeviceCount {
			top = a
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/v1.0/deviceManagement/detectedApps/"+top.ID+"/managedDevices?$select=id,deviceName", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	b.ReportAllocs()
	for b.Loop() {
		w := &discard{h: http.Header{}}
		s.ServeHTTP(w, req)
		if w.n < 1000 {
			b.Fatal("empty page")
		}
	}
}

// BenchmarkDetailBatch answers a $batch of 20 single-device GETs selecting
// every beta list-default property, from a 100,000-device tenant: what a
// client fetching details does 5,000 times for the whole tenant.
func BenchmarkDetailBatch(b *testing.B) {
	s := New(Config{Devices: 100_000, Seed: 1})
	token := s.issueToken()
	var body strings.Builder
	body.WriteString(`{"requests":[`)
	for k := 0; k < 20; k++ {
		if k > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"id":"%d","method":"GET","url":"/deviceManagement/managedDevices/%s?$select=id,activationLockBypassCode,iccid,udid,notes,ethernetMacAddress,physicalMemoryInBytes,hardwareInformation,roleScopeTagIds"}`,
			k+1, s.DeviceID(50_000+k*37))
	}
	body.WriteString(`]}`)
	b.ReportAllocs()
	var n int64
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/beta/$batch", strings.NewReader(body.String()))
		req.Header.Set("Authorization", "Bearer "+token)
		w := &discard{h: http.Header{}}
		s.ServeHTTP(w, req)
		n = w.n
	}
	if n < 20*1000 {
		b.Fatalf("a batch of %d bytes", n)
	}
	b.SetBytes(n)
}
