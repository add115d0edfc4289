// Package naiveapps is what bench/cmd/naiveapps tells benchrun: the one JSON
// line it writes to stdout.
package naiveapps

// Summary is bench/cmd/naiveapps' stdout.
type Summary struct {
	AppsListed     int     `json:"apps_listed"`
	AppsWalked     int     `json:"apps_walked"`
	DeviceCountSum int     `json:"device_count_sum"` // of the walked apps, from the listing
	Pairs          int     `json:"pairs"`            // (device, app) pairs read
	ListRequests   int     `json:"list_requests"`    // Graph requests of the listing, 429s included
	LoopRequests   int     `json:"loop_requests"`    // Graph requests of the per-app loop, 429s included
	Throttled      int     `json:"throttled"`        // 429s, both phases
	ListSeconds    float64 `json:"list_seconds"`     // token and listing
	LoopSeconds    float64 `json:"loop_seconds"`     // the per-app loop
}
