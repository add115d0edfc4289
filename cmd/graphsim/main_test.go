package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

func TestParseFlags(t *testing.T) {
	var out bytes.Buffer
	o, err := parseFlags([]string{
		"-devices", "10",
		"-fault", "page=2,attempt=1,kind=429,retry_after=1.5",
		"-fault", "kind=slow,delay=250ms",
		"-fault", "page=3,kind=503,retry_after=Wed, 21 Oct 2026 07:28:00 GMT",
		"-token-outage", "2",
		"-token-outage-status", "429",
		"-token-enforced-lifetime", "5s",
		"-fault", "resource=deviceComplianceDeviceStatuses,page=2,kind=500",
		"-intune-page-size", "25",
	}, &out)
	if err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	want := []graphsim.Fault{
		{Page: 2, Attempt: 1, Kind: graphsim.Fault429, RetryAfter: "1.5"},
		{Kind: graphsim.FaultSlow, Delay: 250 * time.Millisecond},
		{Page: 3, Kind: graphsim.Fault503, RetryAfter: "Wed, 21 Oct 2026 07:28:00 GMT"},
		{Resource: graphsim.KindComplianceDeviceStatuses, Page: 2, Kind: graphsim.Fault500},
	}
	c := o.cfg
	if !reflect.DeepEqual(c.Faults, want) || c.Devices != 10 || c.TokenOutage != 2 || c.TokenOutageStatus != 429 || c.TokenEnforcedLifetime != 5*time.Second ||
		c.IntunePageSize != 25 {
		t.Errorf("config %+v", c)
	}

	o, err = parseFlags(nil, &out)
	if err != nil || o.cfg.Faults != nil || o.cfg.TokenOutage != 0 || o.cfg.TokenOutageStatus != 503 || o.cfg.TokenEnforcedLifetime != 0 || o.addr != "127.0.0.1:8080" ||
		o.cfg.IntunePageSize != graphsim.DefaultIntunePageSize {
		t.Errorf("defaults %+v, %v", o, err)
	}
}

func TestParseFlagsApps(t *testing.T) {
	var out bytes.Buffer
	o, err := parseFlags([]string{
		"-apps", "20000", "-apps-per-device", "120", "-app-page-size", "50",
		"-throttle", "2000/20s", "-read-write", "-export-delay", "2s", "-export-polls", "3",
		"-storage-addr", "127.0.0.1:9999",
	}, &out)
	if err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	c := o.cfg
	if c.DetectedApps != 20000 || c.AppsPerDevice != 120 || c.AppPageSize != 50 || c.Throttle != graphsim.IntuneThrottle ||
		!c.ReadWrite || c.ExportDelay != 2*time.Second || c.ExportPolls != 3 || o.storageAddr != "127.0.0.1:9999" {
		t.Errorf("config %+v, storage %q", c, o.storageAddr)
	}
	o, err = parseFlags(nil, &out)
	c = o.cfg
	if err != nil || c.DetectedApps != 0 || c.Throttle != (graphsim.Throttle{}) || c.ReadWrite || c.AppPageSize != graphsim.DefaultAppPageSize || o.storageAddr != "127.0.0.1:0" {
		t.Errorf("defaults %+v, %v", o, err)
	}
	if o, err := parseFlags([]string{"-throttle", "intune"}, &out); err != nil || o.cfg.Throttle != graphsim.IntuneThrottle {
		t.Errorf("-throttle intune: %+v, %v", o.cfg.Throttle, err)
	}
}

func TestParseFlagsDetails(t *testing.T) {
	var out bytes.Buffer
	o, err := parseFlags([]string{"-gone-on-get", "3, 17", "-gone-on-get", "42", "-gone-on-get-every", "50", "-stall-details-after", "500"}, &out)
	if err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	c := o.cfg
	if !reflect.DeepEqual(c.GoneOnGet, []int{3, 17, 42}) || c.GoneOnGetEvery != 50 || c.StallDetailsAfter != 500 {
		t.Errorf("config %+v", c)
	}
	o, err = parseFlags(nil, &out)
	if err != nil || o.cfg.GoneOnGet != nil || o.cfg.GoneOnGetEvery != 0 || o.cfg.StallDetailsAfter != 0 {
		t.Errorf("defaults %+v, %v", o.cfg, err)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for args, msg := range map[string]string{
		"-fault kind=418":                                    `unknown fault kind "418"`,
		"-fault page=x,kind=429":                             `bad page "x"`,
		"-fault kind=slow,delay=forever":                     `bad delay "forever"`,
		"-token-enforced-lifetime 5":                         "invalid value",
		"-devices 10 extra":                                  `unexpected argument "extra"`,
		"-fault kind=429,retry=2":                            `unknown key "retry"`,
		"-fault kind=500,resource=users":                     `fault resource "users"`,
		"-throttle 2000":                                     "want requests/window",
		"-throttle 0/20s":                                    `"0" is not a positive number of requests`,
		"-export-delay soon":                                 "invalid value",
		"-gone-on-get 3,x":                                   `"x" is not a device index`,
		"-gone-on-get -1":                                    `"-1" is not a device index`,
		"-tenants -1":                                        "-tenants -1 is negative",
		"-tenants 3 -tenant x":                               "-tenant names the one tenant",
		"-revoked-tenants 1":                                 "-revoked-tenants needs -tenants",
		"-tenants-file t.txt":                                "-tenants-file needs -tenants",
		"-tenants 3 -revocation gone":                        `revocation "gone": want deleted or disabled`,
		"-tenants 3 -forbidden-tenants -1":                   "cannot be negative",
		"-tenants 3 -revoked-tenants 2 -forbidden-tenants 2": "2 revoked and 2 forbidden tenants, but only 3 tenants",
	} {
		var out bytes.Buffer
		if _, err := parseFlags(strings.Fields(args), &out); err == nil || !strings.Contains(out.String(), msg) {
			t.Errorf("%s: %v\n%s", args, err, out.String())
		}
	}
}

func TestParseFlagsCredentials(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := graphsim.NewCertificate("graphsim flag test", key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile := filepath.Join(dir, "app.crt")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o, err := parseFlags([]string{
		"-client-cert", certFile,
		"-federated-token", "eyJfederated",
		"-managed-identity-client-id", "33333333-0000-0000-0000-000000000001",
	}, &out)
	if err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	c := o.cfg
	if c.ClientCertificate == nil || !c.ClientCertificate.Equal(cert) || c.FederatedToken != "eyJfederated" || c.ManagedIdentityClientID != "33333333-0000-0000-0000-000000000001" {
		t.Errorf("config %+v", c)
	}

	t.Setenv("GRAPHSIM_FEDERATED_TOKEN", "from-env")
	if o, err := parseFlags(nil, &out); err != nil || o.cfg.FederatedToken != "from-env" || o.cfg.ClientCertificate != nil {
		t.Errorf("from the environment: %+v, %v", o.cfg, err)
	}
	if strings.Contains(out.String(), "eyJfederated") || strings.Contains(out.String(), "from-env") {
		t.Errorf("a federated token was printed: %s", out.String())
	}

	notPEM := filepath.Join(dir, "app.der")
	if err := os.WriteFile(notPEM, cert.Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for args, msg := range map[string]string{
		"-client-cert " + filepath.Join(dir, "absent.crt"): "no such file or directory",
		"-client-cert " + notPEM:                           `app.der: no PEM "CERTIFICATE" block found`,
	} {
		out.Reset()
		if _, err := parseFlags(strings.Fields(args), &out); err == nil || !strings.Contains(out.String(), msg) {
			t.Errorf("%s: %v\n%s", args, err, out.String())
		}
	}
}

func TestParseFlagsTenants(t *testing.T) {
	var out bytes.Buffer
	dir := t.TempDir()
	file := filepath.Join(dir, "tenants.txt")
	o, err := parseFlags([]string{
		"-tenants", "6", "-revoked-tenants", "2", "-forbidden-tenants", "1", "-revocation", "disabled",
		"-tenants-file", file, "-devices", "7", "-seed", "3", "-throttle", "intune",
	}, &out)
	if err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if o.tenants != 6 || o.revoked != 2 || o.forbidden != 1 || o.revocation != graphsim.RevocationDisabled || o.tenantsFile != file {
		t.Fatalf("options %+v", o)
	}
	tc := tenantsConfig(o)
	if tc.Count != 6 || !reflect.DeepEqual(tc.Revoked, []int{4, 5}) || !reflect.DeepEqual(tc.Forbidden, []int{3}) ||
		tc.Base.Devices != 7 || tc.Base.Seed != 3 || tc.Base.Throttle != graphsim.IntuneThrottle || tc.Revocation != graphsim.RevocationDisabled {
		t.Errorf("tenants config %+v", tc)
	}

	var stderr bytes.Buffer
	ts, err := newTenants(o, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ids := ts.TenantIDs()
	if string(data) != strings.Join(ids, "\n")+"\n" || len(ids) != 6 {
		t.Errorf("tenants file %q, ids %v", data, ids)
	}
	for _, want := range []string{
		"graphsim: 6 tenants (" + ids[0] + " .. " + ids[5] + "), their ids in " + file + "\n",
		"tenant 3 " + ids[3] + " is forbidden",
		"tenant 4 " + ids[4] + " is revoked (enterprise app disabled): its token requests fail with AADSTS7000112",
		"tenant 5 " + ids[5] + " is revoked",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "tenant 2 ") || ts.Tenant(2).Config().Devices != 7 || ts.Tenant(2).Config().Seed != 5 {
		t.Errorf("tenant 2: %s %+v", stderr.String(), ts.Tenant(2).Config())
	}

	// Without -tenants: one tenant, as before.
	o, err = parseFlags(nil, &out)
	if err != nil || o.tenants != 0 || o.revoked != 0 || o.forbidden != 0 || o.tenantsFile != "" {
		t.Errorf("defaults %+v, %v", o, err)
	}
	// Zero revoked or forbidden tenants are none.
	o, err = parseFlags([]string{"-tenants", "2"}, &out)
	if tc := tenantsConfig(o); err != nil || tc.Revoked != nil || tc.Forbidden != nil || tc.Count != 2 {
		t.Errorf("-tenants 2: %+v, %v", tc, err)
	}
}
