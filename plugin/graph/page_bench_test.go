package graph

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// benchPage is a realistic page of n v1.0 devices as Graph lays it out,
// with the nextLink after "value".
func benchPage(n int) []byte {
	sim := graphsim.New(graphsim.Config{Devices: n, Seed: 1})
	var b bytes.Buffer
	b.WriteString(`{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices","@odata.count":100000,"value":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(sim.Device(i))
	}
	b.WriteString(`],"@odata.nextLink":"https://graph.microsoft.com/v1.0/deviceManagement/managedDevices?$skiptoken=LastDeviceName%3d%27LAPTOP-0%27%2cLastDeviceId%3d%27x%27"}`)
	return b.Bytes()
}

// BenchmarkParsePage splits a 1000-device page (about 3 MB) into its
// devices: one pass over the body, no value built, the devices slice reused.
func BenchmarkParsePage(b *testing.B) {
	body := benchPage(1000)
	devices := make([][]byte, 0, 1000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		page, err := ParsePage(body, devices)
		if err != nil || len(page.Devices) != 1000 || page.NextLink == "" {
			b.Fatalf("devices %d, nextLink %q, err %v", len(page.Devices), page.NextLink, err)
		}
		devices = page.Devices
	}
}

// The fast scanner agrees with encoding/json on realistic pages (escaped
// and non-ASCII strings, big integers): same devices, byte for byte.
func TestParsePageAgreesWithEncodingJSON(t *testing.T) {
	body := benchPage(3000)
	page, err := ParsePage(body, nil)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Value []json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Value) != len(page.Devices) {
		t.Fatalf("%d devices, encoding/json finds %d", len(page.Devices), len(doc.Value))
	}
	for i := range doc.Value {
		if !bytes.Equal(doc.Value[i], page.Devices[i]) {
			t.Fatalf("device %d differs:\n%s\n%s", i, page.Devices[i], doc.Value[i])
		}
	}
}
