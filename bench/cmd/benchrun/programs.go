package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// graphsim's default tenant, client and secret.
const (
	tenantID     = "00000000-0000-0000-0000-0000000000aa"
	clientID     = "11111111-1111-1111-1111-111111111111"
	clientSecret = "graphsim-secret"
	graphScope   = "https://graph.microsoft.com/.default"
	pageSize     = 1000 // graphsim's default page size, which the runs use
)

// program is one contender: how to start it against a graphsim at url,
// writing its devices (if it writes any) to out.
type program struct {
	name    string
	what    string // one line for RESULTS.md
	writes  bool   // false: the drop output, nothing to count in a file
	command func(p *paths, url, out string) ([]string, error)

	// Destination programs (destinations.go): before empties the
	// destination and returns the run's environment, verify checks what it
	// holds afterwards, and floor names the program this one is compared to.
	before func(p *paths) ([]string, error)
	verify func(p *paths, want int) error
	floor  string
}

// paths are the binaries and the scratch directory of a run.
type paths struct {
	binary  string // bin/intune-benthos
	floor   string // bench/bin/floor
	msgraph string // bench/bin/msgraph
	tmp     string

	naiveApps string // bench/bin/naiveapps, the detected-apps scenario's

	// The destination scenario's.
	repo        string    // the repository, for config/
	url         string    // graphsim
	pgServer    string    // -pg
	sqliteFloor string    // bench/bin/sqlitefloor
	pgFloor     string    // bench/bin/pgfloor
	devicesFile string    // the devices the floors load
	expected    *expected // what every destination must hold
}

func programs() []program {
	return []program{
		{
			name:   "intune-file",
			what:   "`intune-benthos`, `intune_managed_devices` input, `file` output (codec `lines`)",
			writes: true,
			command: func(p *paths, url, out string) ([]string, error) {
				cfg, err := writeConfig(p.tmp, "intune-file.yaml", intuneInput(url)+fileOutput(out))
				return []string{p.binary, "-c", cfg}, err
			},
		},
		{
			name: "intune-drop",
			what: "`intune-benthos`, `intune_managed_devices` input, `drop` output",
			command: func(p *paths, url, out string) ([]string, error) {
				cfg, err := writeConfig(p.tmp, "intune-drop.yaml", intuneInput(url)+"output:\n  drop: {}\n")
				return []string{p.binary, "-c", cfg}, err
			},
		},
		{
			name:   "floor",
			what:   "the floor: x/oauth2 clientcredentials + encoding/json (`[]json.RawMessage`), nextLink loop, buffered file (`bench/cmd/floor`)",
			writes: true,
			command: func(p *paths, url, out string) ([]string, error) {
				return append([]string{p.floor}, peerFlags(url, out)...), nil
			},
		},
		{
			name:   "msgraph",
			what:   "msgraph-sdk-go v1.89.0: `ManagedDevices().Get` + `msgraphcore.NewPageIterator`, kiota `SerializeToJson` per device, buffered file (`bench/cmd/msgraph`). Its output is smaller: the models' `Serialize` writes only the properties Graph's metadata marks writable (10 of the 54 properties graphsim sends per device), so every read-only one (`deviceName`, `operatingSystem`, `osVersion`, `serialNumber`, ...) is parsed but not written back",
			writes: true,
			command: func(p *paths, url, out string) ([]string, error) {
				return append([]string{p.msgraph}, peerFlags(url, out)...), nil
			},
		},
		{
			name:   "http_client",
			what:   "`intune-benthos` with stock Benthos only: `read_until` + `http_client` (oauth2, url interpolated from the previous page's `@odata.nextLink`), `mapping: root = this.value` + `unarchive: json_array`, `file` output. Each device is decoded and re-encoded (keys sorted), not passed through byte for byte",
			writes: true,
			command: func(p *paths, url, out string) ([]string, error) {
				cfg, err := writeConfig(p.tmp, "http-client.yaml", httpClientConfig(url)+fileOutput(out))
				return []string{p.binary, "-c", cfg}, err
			},
		},
	}
}

func peerFlags(url, out string) []string {
	return append(graphFlags(url), "-out", out)
}

// graphFlags point a bench program (floor, msgraph, naiveapps) at graphsim.
func graphFlags(url string) []string {
	return []string{
		"-login-url", url, "-graph-url", url,
		"-tenant", tenantID, "-client-id", clientID, "-client-secret", clientSecret,
	}
}

// Every config of the binary binds its HTTP server (metrics, /ready) to a
// free loopback port instead of 0.0.0.0:4195, so that a run never collides
// with another process on that port.
const binaryCommon = `http: { address: 127.0.0.1:0 }
logger: { level: WARN }
`

func intuneInput(url string) string {
	return binaryCommon + fmt.Sprintf(`input:
  intune_managed_devices:
    tenant_id: %s
    client_id: %s
    client_secret: %s
    login_url: %s
    graph_url: %s
`, tenantID, clientID, clientSecret, url, url)
}

func fileOutput(out string) string {
	return fmt.Sprintf(`output:
  file:
    path: %q
    codec: lines
`, out)
}

// httpClientConfig is what a Benthos v4.27 user writes to page through Graph
// with stock components. http_client's url is interpolated against the
// previous response (the whole page), so it follows @odata.nextLink, and
// falls back to the first page's URL when there is no previous response.
// http_client alone never stops (after the last page it would start again at
// page 1), so read_until ends the input on the page that has no nextLink;
// that page is still delivered.
func httpClientConfig(url string) string {
	return binaryCommon + fmt.Sprintf(`input:
  read_until:
    check: '!this.keys().contains("@odata.nextLink")'
    input:
      http_client:
        url: '${! this."@odata.nextLink" | "%s/v1.0/deviceManagement/managedDevices" }'
        verb: GET
        oauth2:
          enabled: true
          client_key: %s
          client_secret: %s
          token_url: %s/%s/oauth2/v2.0/token
          scopes: [ %s ]
pipeline:
  processors:
    - mapping: root = this.value
    - unarchive:
        format: json_array
`, url, clientID, clientSecret, url, tenantID, graphScope)
}

func writeConfig(dir, name, body string) (string, error) {
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(body), 0o600)
}

// selectPrograms drops the skipped ones from a list, refusing names no
// list has.
func selectPrograms(all []program, skip string) ([]program, error) {
	known := map[string]bool{}
	every := append(append(programs(), destinationPrograms()...), appsPrograms()...)
	for _, p := range every {
		known[p.name] = true
	}
	skipped := map[string]bool{}
	for _, s := range strings.Split(skip, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !known[s] {
			return nil, fmt.Errorf("-skip %q: no such program (have %s)", s, programNames(every))
		}
		skipped[s] = true
	}
	var out []program
	for _, p := range all {
		if !skipped[p.name] {
			out = append(out, p)
		}
	}
	return out, nil
}

func programNames(ps []program) string {
	var names []string
	for _, p := range ps {
		names = append(names, p.name)
	}
	return strings.Join(names, ", ")
}
