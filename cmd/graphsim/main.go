// Command graphsim serves a simulated Entra ID token endpoint and Microsoft
// Graph's Intune collections (managedDevices, detectedApps and their
// relationships, report export jobs; device categories, compliance
// policies, configuration profiles and settings catalog policies with
// their assignments and device statuses, Windows Autopilot devices and
// mobile apps), with a second listener standing in for the storage host
// that serves exports, for demos and manual tests.
//
// With -tenants N it serves N tenants at once, as a managed service
// provider's multi-tenant app reads them (graphsim.Tenants): the same
// client id and secret get a token per tenant, and Graph serves the tenant
// the token names. -revoked-tenants R makes the last R tenants refuse the
// app at the token endpoint, -forbidden-tenants F the F before them answer
// every deviceManagement request with Intune's 403; stderr lists them, and
// -tenants-file writes every tenant id, one a line. The other flags
// describe each tenant (tenant i with seed -seed+i).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case err != nil:
		os.Exit(2) // the flag package has said what is wrong
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "graphsim:", err)
		os.Exit(1)
	}
}

// options is what the command line asks for.
type options struct {
	addr        string
	storageAddr string
	verbose     bool
	cfg         graphsim.Config // with tenants, each tenant's

	// Several tenants (graphsim.Tenants): tenants > 0 serves that many,
	// the last revoked of them revoked and the forbidden ones before those
	// forbidden; tenantsFile receives their ids.
	tenants, revoked, forbidden int
	revocation                  graphsim.Revocation
	tenantsFile                 string
}

// parseFlags reads the command line; errors and usage go to out.
func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	cfg := &o.cfg
	fs := flag.NewFlagSet("graphsim", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address (127.0.0.1:0 picks a free port)")
	fs.IntVar(&cfg.Devices, "devices", 2500, "number of devices in the tenant")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the deterministic device data")
	fs.IntVar(&cfg.PageSize, "page-size", graphsim.DefaultPageSize, "page size when a request has no $top")
	fs.DurationVar(&cfg.Latency, "latency", 0, "delay before each page of a collection, each single-device GET and, once, each $batch")
	fs.StringVar(&cfg.TenantID, "tenant", graphsim.DefaultTenantID, "tenant id")
	fs.StringVar(&cfg.ClientID, "client-id", graphsim.DefaultClientID, "client (application) id")
	// The secret's default is not shown in -help output on purpose: it
	// may come from the environment.
	fs.StringVar(&cfg.ClientSecret, "client-secret", "", "client secret (default $GRAPHSIM_CLIENT_SECRET, else "+graphsim.DefaultClientSecret+")")
	fs.StringVar(&cfg.ScopeHost, "scope-host", graphsim.DefaultScopeHost, "Graph host the token scope must name")
	fs.DurationVar(&cfg.TokenLifetime, "token-lifetime", time.Hour, "lifetime of issued tokens")
	fs.BoolVar(&cfg.Forbidden, "forbidden", false, "answer Intune's 403 as if the app lacked DeviceManagementManagedDevices.Read.All")
	fs.Func("fault", "inject a fault into managedDevices pages, repeatable, first match applies: "+
		"page=N,attempt=N,kind=K[,retry_after=V][,delay=D][,resource=R] (page and attempt 1-based, omitted = every; "+
		"kind: "+kindNames()+"; resource, for another listing's pages: "+strings.Join(graphsim.IntuneResources, ", ")+")", func(v string) error {
		f, err := graphsim.ParseFault(v)
		if err != nil {
			return err
		}
		cfg.Faults = append(cfg.Faults, f)
		return nil
	})
	fs.Func("gone-on-get", "devices (comma-separated indexes, repeatable) that listings show but a single-device GET answers 404, as if deleted between the list and the GET", func(v string) error {
		for _, f := range strings.Split(v, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || i < 0 {
				return fmt.Errorf("%q is not a device index", f)
			}
			cfg.GoneOnGet = append(cfg.GoneOnGet, i)
		}
		return nil
	})
	fs.IntVar(&cfg.GoneOnGetEvery, "gone-on-get-every", 0, "every Nth device (indexes N-1, 2N-1, ...) is listed but answers a single-device GET 404 (0: none)")
	fs.IntVar(&cfg.StallDetailsAfter, "stall-details-after", 0, "answer N single-device GETs (direct or in a $batch), then make every later one hang until the client gives up or POST /_graphsim/details clears it (0: off)")
	fs.IntVar(&cfg.TokenOutage, "token-outage", 0, "fail the first N token requests")
	fs.IntVar(&cfg.TokenOutageStatus, "token-outage-status", 503, "status of a token outage: 503, or 429 (with Retry-After: 1)")
	fs.DurationVar(&cfg.TokenEnforcedLifetime, "token-enforced-lifetime", 0, "refuse tokens older than this while expires_in still announces -token-lifetime (0: off)")
	fs.Func("client-cert", "PEM file of a certificate registered on the app: client assertions signed by its key are accepted", func(path string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		cert, err := graphsim.ParseCertificatePEM(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		cfg.ClientCertificate = cert
		return nil
	})
	// Like the secret, the federated token's value is not shown in -help.
	fs.StringVar(&cfg.FederatedToken, "federated-token", "", "a client assertion equal to this is accepted as a federated credential (default $GRAPHSIM_FEDERATED_TOKEN)")
	fs.StringVar(&cfg.ManagedIdentityClientID, "managed-identity-client-id", "", "client id of the managed identity served at "+graphsim.ManagedIdentityPath+" (empty: any)")
	fs.Func("extra-property", "add a top-level property to every device, repeatable: name=<JSON value>, {index} in it replaced by the device's index (a property Microsoft may add tomorrow)", func(v string) error {
		p, err := graphsim.ParseExtraProperty(v)
		if err != nil {
			return err
		}
		cfg.ExtraProperties = append(cfg.ExtraProperties, p)
		return nil
	})
	fs.IntVar(&cfg.DetectedApps, "apps", 0, "number of detected apps ((name, version) pairs) in the tenant's software inventory")
	fs.IntVar(&cfg.AppsPerDevice, "apps-per-device", 0, "mean apps on a Windows device, macOS 45% of it, iOS a fifth, Android a sixth (0: "+fmt.Sprint(graphsim.DefaultAppsPerDevice)+" with -apps)")
	fs.IntVar(&cfg.AppPageSize, "app-page-size", graphsim.DefaultAppPageSize, "page size of detectedApps and its relationships when a request has no $top")
	fs.IntVar(&cfg.IntunePageSize, "intune-page-size", graphsim.DefaultIntunePageSize, "page size of deviceCategories, deviceCompliancePolicies, deviceConfigurations, configurationPolicies, windowsAutopilotDeviceIdentities, mobileApps, their assignments and deviceStatuses when a request has no $top")
	fs.Func("throttle", "Graph's request budget per app, requests/window, e.g. 2000/20s (\"intune\": Intune's documented 2000/20s; default off)", func(v string) error {
		t, err := graphsim.ParseThrottle(v)
		cfg.Throttle = t
		return err
	})
	fs.BoolVar(&cfg.ReadWrite, "read-write", false, "the app holds DeviceManagementManagedDevices.ReadWrite.All, which creating report export jobs needs")
	fs.DurationVar(&cfg.ExportDelay, "export-delay", 0, "an export job completes no sooner than this after its creation")
	fs.IntVar(&cfg.ExportPolls, "export-polls", 0, "an export job answers inProgress to this many polls before it completes")
	fs.StringVar(&o.storageAddr, "storage-addr", "127.0.0.1:0", "listen address of the storage host serving completed exports")
	fs.IntVar(&o.tenants, "tenants", 0, "serve this many tenants, as one multi-tenant app of an MSP sees them: each with the devices, apps, throttle and faults the other flags describe, tenant i with seed -seed+i; a token is requested per tenant and Graph serves the tenant the token names (0: one tenant, -tenant)")
	fs.IntVar(&o.revoked, "revoked-tenants", 0, "with -tenants: the last N tenants removed the app, their token requests fail (see -revocation)")
	fs.IntVar(&o.forbidden, "forbidden-tenants", 0, "with -tenants: the N tenants before the revoked ones issue tokens without permissions, Graph answers Intune's 403 to every deviceManagement request")
	fs.Func("revocation", "with -revoked-tenants, how the app was removed: deleted (the enterprise app, AADSTS700016; the default) or disabled (AADSTS7000112)", func(v string) error {
		r, err := graphsim.ParseRevocation(v)
		o.revocation = r
		return err
	})
	fs.StringVar(&o.tenantsFile, "tenants-file", "", "with -tenants: write the tenant ids to this file, one a line, in index order")
	fs.BoolVar(&o.verbose, "v", false, "log one line per request to stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fail := func(err error) (options, error) {
		fmt.Fprintln(out, err)
		fs.Usage()
		return o, err
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case o.tenants < 0:
		return fail(fmt.Errorf("-tenants %d is negative", o.tenants))
	case o.tenants > 0 && set["tenant"]:
		return fail(errors.New("-tenant names the one tenant; with -tenants the tenant ids are graphsim's (see -tenants-file)"))
	case o.tenants == 0:
		for _, name := range []string{"revoked-tenants", "forbidden-tenants", "revocation", "tenants-file"} {
			if set[name] {
				return fail(fmt.Errorf("-%s needs -tenants", name))
			}
		}
	case o.revoked < 0 || o.forbidden < 0:
		return fail(errors.New("-revoked-tenants and -forbidden-tenants cannot be negative"))
	case o.revoked+o.forbidden > o.tenants:
		return fail(fmt.Errorf("%d revoked and %d forbidden tenants, but only %d tenants", o.revoked, o.forbidden, o.tenants))
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = os.Getenv("GRAPHSIM_CLIENT_SECRET")
	}
	if cfg.FederatedToken == "" {
		cfg.FederatedToken = os.Getenv("GRAPHSIM_FEDERATED_TOKEN")
	}
	return o, nil
}

func kindNames() string {
	names := make([]string, len(graphsim.FaultKinds))
	for k, kind := range graphsim.FaultKinds {
		names[k] = string(kind)
	}
	return strings.Join(names, ", ")
}

// tenantsConfig is the graphsim.TenantsConfig of o.tenants: the revoked
// tenants are the last ones, the forbidden ones come just before them.
func tenantsConfig(o options) graphsim.TenantsConfig {
	tc := graphsim.TenantsConfig{Count: o.tenants, Base: o.cfg, Revocation: o.revocation}
	for i := o.tenants - o.revoked; i < o.tenants; i++ {
		tc.Revoked = append(tc.Revoked, i)
	}
	for i := o.tenants - o.revoked - o.forbidden; i < o.tenants-o.revoked; i++ {
		tc.Forbidden = append(tc.Forbidden, i)
	}
	return tc
}

// newTenants makes the tenants of o, writes their ids to o.tenantsFile
// and tells stderr (w) which are revoked or forbidden.
func newTenants(o options, w io.Writer) (*graphsim.Tenants, error) {
	ts, err := graphsim.NewTenants(tenantsConfig(o))
	if err != nil {
		return nil, err
	}
	ids := ts.TenantIDs()
	where := ""
	if o.tenantsFile != "" {
		if err := os.WriteFile(o.tenantsFile, []byte(strings.Join(ids, "\n")+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("tenants file: %w", err)
		}
		where = ", their ids in " + o.tenantsFile
	}
	fmt.Fprintf(w, "graphsim: %d tenants (%s .. %s)%s\n", len(ids), ids[0], ids[len(ids)-1], where)
	for i, id := range ids {
		switch {
		case ts.Forbidden(i):
			fmt.Fprintf(w, "graphsim: tenant %d %s is forbidden: its tokens carry no permission, Graph answers Intune's 403\n", i, id)
		case ts.Revoked(i) && ts.Revocation() == graphsim.RevocationDisabled:
			fmt.Fprintf(w, "graphsim: tenant %d %s is revoked (enterprise app disabled): its token requests fail with AADSTS7000112\n", i, id)
		case ts.Revoked(i):
			fmt.Fprintf(w, "graphsim: tenant %d %s is revoked (enterprise app deleted): its token requests fail with AADSTS700016\n", i, id)
		}
	}
	return ts, nil
}

func run(o options) error {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	storageLn, err := net.Listen("tcp", o.storageAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("storage host: %w", err)
	}
	o.cfg.StorageURL = "http://" + storageLn.Addr().String()
	var h, storage http.Handler
	if o.tenants > 0 {
		ts, err := newTenants(o, os.Stderr)
		if err != nil {
			ln.Close()
			storageLn.Close()
			return err
		}
		h, storage = ts, ts.StorageHandler()
	} else {
		sim := graphsim.New(o.cfg)
		h, storage = sim, sim.StorageHandler()
	}
	if o.verbose {
		l := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
		h, storage = logRequests(h, l), logRequests(storage, l)
	}
	servers := []*http.Server{
		{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		{Handler: storage, ReadHeaderTimeout: 10 * time.Second},
	}

	// The first line is what scripts wait for; keep it first and as it is.
	fmt.Fprintf(os.Stdout, "graphsim listening on http://%s\n", ln.Addr())
	fmt.Fprintf(os.Stdout, "graphsim storage host on %s\n", o.cfg.StorageURL)
	_ = os.Stdout.Sync() // a pipe cannot sync; the lines are already written unbuffered

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, len(servers))
	for k, l := range []net.Listener{ln, storageLn} {
		go func() { errc <- servers[k].Serve(l) }()
	}
	var first error
	select {
	case first = <-errc:
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil && first == nil {
			first = err
		}
	}
	if first != nil && !errors.Is(first, http.ErrServerClosed) {
		return first
	}
	return nil
}

// logRequests logs method, path, status, bytes and duration: the path
// without its query, and never headers or bodies, which carry tokens and
// secrets.
func logRequests(next http.Handler, l *log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		defer func() {
			// A truncated page ends in panic(http.ErrAbortHandler),
			// which net/http turns into a dropped connection.
			if v := recover(); v != nil {
				l.Printf("%s %s %d %dB %s aborted", r.Method, r.URL.Path, rec.status, rec.bytes, time.Since(start).Round(time.Microsecond))
				panic(v)
			}
		}()
		next.ServeHTTP(rec, r)
		l.Printf("%s %s %d %dB %s", r.Method, r.URL.Path, rec.status, rec.bytes, time.Since(start).Round(time.Microsecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController flush through the recorder.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Write(b []byte) (int, error) {
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}
