// Command graphsim serves a simulated Entra ID token endpoint and Microsoft
// Graph Intune managedDevices collection, for demos and manual tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "graphsim:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg graphsim.Config
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (127.0.0.1:0 picks a free port)")
	flag.IntVar(&cfg.Devices, "devices", 2500, "number of devices in the tenant")
	flag.Int64Var(&cfg.Seed, "seed", 1, "seed of the deterministic device data")
	flag.IntVar(&cfg.PageSize, "page-size", graphsim.DefaultPageSize, "page size when a request has no $top")
	flag.DurationVar(&cfg.Latency, "latency", 0, "delay before each managedDevices page")
	flag.StringVar(&cfg.TenantID, "tenant", graphsim.DefaultTenantID, "tenant id")
	flag.StringVar(&cfg.ClientID, "client-id", graphsim.DefaultClientID, "client (application) id")
	// The secret's default is not shown in -help output on purpose: it
	// may come from the environment.
	flag.StringVar(&cfg.ClientSecret, "client-secret", "", "client secret (default $GRAPHSIM_CLIENT_SECRET, else "+graphsim.DefaultClientSecret+")")
	flag.StringVar(&cfg.ScopeHost, "scope-host", graphsim.DefaultScopeHost, "Graph host the token scope must name")
	flag.DurationVar(&cfg.TokenLifetime, "token-lifetime", time.Hour, "lifetime of issued tokens")
	flag.BoolVar(&cfg.Forbidden, "forbidden", false, "answer Intune's 403 as if the app lacked DeviceManagementManagedDevices.Read.All")
	verbose := flag.Bool("v", false, "log one line per request to stderr")
	flag.Parse()
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = os.Getenv("GRAPHSIM_CLIENT_SECRET")
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var h http.Handler = graphsim.New(cfg)
	if *verbose {
		h = logRequests(h, log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds))
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}

	fmt.Fprintf(os.Stdout, "graphsim listening on http://%s\n", ln.Addr())
	_ = os.Stdout.Sync() // a pipe cannot sync; the line is already written unbuffered

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
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

func (s *statusRecorder) Write(b []byte) (int, error) {
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}
