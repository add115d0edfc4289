package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// tcpProxy stands between the binary and the shared PostgreSQL server, so
// that a test can take "the database" away (every connection cut, new ones
// refused) without stopping the server other tests use.
type tcpProxy struct {
	addr, target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *tcpProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

// down cuts every connection and refuses new ones, as a stopped server does.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// up listens again on the same address.
func (p *tcpProxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Errorf("listening again on %s: %v", p.addr, err)
		return
	}
	p.serve(ln)
}

// throughProxy rewrites a PostgreSQL DSN to connect through p.
func throughProxy(t *testing.T, dsn string, p *tcpProxy) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.addr
	return u.String()
}

func pgHost(t *testing.T, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// logsUntil waits for the binary's output to contain s.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func countRows(db *sql.DB) (rows, ids int) {
	_ = db.QueryRow(`SELECT count(*), count(DISTINCT id) FROM managed_devices`).Scan(&rows, &ids)
	return
}

// PostgreSQL goes away five seconds into a sync of 30,000 devices (300 ms
// per page) and comes back ten seconds later: the sync rides through, every
// device lands once, and the one-shot run exits 0 soon after the restart.
// With one device PostgreSQL refuses (a NUL character), the same outage
// leaves 29,999 rows, that device in managed_devices_rejected, and exit 3.
func TestPostgresConfigRidesThroughADatabaseOutage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		refused  []int
		wantExit int
	}{{"clean", nil, 0}, {"with a device PostgreSQL refuses", []int{17000}, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 30000
			dsn, db := freshDatabase(t)
			proxy := startProxy(t, pgHost(t, dsn))
			cfg := graphsim.Config{Devices: n, Seed: 59, Latency: 300 * time.Millisecond}
			if tc.refused != nil {
				cfg.ExtraProperties = []graphsim.ExtraProperty{{Name: "deviceCategoryDisplayName", Value: `"bad\u0000byte"`, Devices: tc.refused}}
			}
			_, env := simEnv(t, cfg)
			env = append(env, "INTUNE_PG_DSN="+throughProxy(t, dsn, proxy))

			done := make(chan result, 1)
			go func() { done <- runBinaryTimeout(t, 3*time.Minute, env, "-c", config("postgres.yaml")) }()
			time.Sleep(5 * time.Second)
			rowsAtCut, _ := countRows(db)
			proxy.down()
			time.Sleep(10 * time.Second)
			proxy.up(t)
			restarted := time.Now()

			res := <-done
			if res.exitCode != tc.wantExit {
				t.Fatalf("exit %d after the outage, want %d\n%s", res.exitCode, tc.wantExit, res.logs())
			}
			if took := time.Since(restarted); took > time.Minute {
				t.Errorf("the run ended %s after the database came back, want within a minute", took)
			}
			want := n - len(tc.refused)
			if rows, ids := countRows(db); rows != want || ids != want {
				t.Fatalf("%d rows, %d distinct ids; want %d", rows, ids, want)
			}
			var rejected int
			if err := db.QueryRow(`SELECT count(*) FROM managed_devices_rejected`).Scan(&rejected); err != nil || rejected != len(tc.refused) {
				t.Fatalf("%d rejected rows (%v), want %d", rejected, err, len(tc.refused))
			}
			if rowsAtCut == 0 || rowsAtCut >= n {
				t.Errorf("the outage began with %d rows written: it was not mid-sync", rowsAtCut)
			}
			if !strings.Contains(res.logs(), "The outputs refused a device") {
				t.Errorf("the outage left no line in the log:\n%s", res.logs())
			}
		})
	}
}

// Another process holds SQLite's write lock for longer than the busy
// timeout (1 s here) mid-sync: writes fail with SQLITE_BUSY while it does,
// and once it lets go every device lands and the run exits 0.
func TestSQLiteConfigRidesThroughALockHeldByAnotherWriter(t *testing.T) {
	const n = 8000
	path := filepath.Join(t.TempDir(), "intune.db")
	dsn := "file:" + path + "?_pragma=busy_timeout(1000)&_pragma=journal_mode(WAL)"
	_, env := simEnv(t, graphsim.Config{Devices: n, Seed: 61, Latency: 200 * time.Millisecond, PageSize: 500})
	env = append(env, "INTUNE_SQLITE_DSN="+dsn)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	done := make(chan result, 1)
	go func() { done <- runBinaryTimeout(t, 3*time.Minute, env, "-c", config("sqlite.yaml")) }()
	waitFor(t, "the first rows", time.Minute, func() bool { rows, _ := countRows(db); return rows > 0 })
	// The other writer: an exclusive transaction held for four seconds.
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	res := <-done
	if res.exitCode != 0 {
		t.Fatalf("exit %d after the lock\n%s", res.exitCode, res.logs())
	}
	if rows, ids := countRows(db); rows != n || ids != n {
		t.Fatalf("%d rows, %d distinct ids; want %d", rows, ids, n)
	}
	if !strings.Contains(res.logs(), "database is locked") {
		t.Errorf("the lock never refused a write, so the test proved nothing:\n%s", res.logs())
	}
}

// The Kafka broker (kfake) is closed mid-sync and started again on the same
// address five seconds later: the run completes and exits 0, and every
// device is on one broker or the other.
func TestKafkaConfigRidesThroughABrokerRestart(t *testing.T) {
	const n, topic = 8000, "intune.managed_devices"
	first, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	addr := first.ListenAddrs()[0]
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 67, Latency: 200 * time.Millisecond, PageSize: 500})
	env = append(env, "INTUNE_KAFKA_BROKERS="+addr)

	// What reaches the first broker, read back before it closes.
	keys := map[string]bool{}
	var keysMu sync.Mutex
	consume := func(cluster *kfake.Cluster, until func() bool) {
		client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Error(err)
			return
		}
		defer client.Close()
		for !until() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			client.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				keysMu.Lock()
				keys[strings.TrimPrefix(string(r.Key), sim.Config().TenantID+"/")] = true
				keysMu.Unlock()
			})
			cancel()
		}
	}
	count := func() int { keysMu.Lock(); defer keysMu.Unlock(); return len(keys) }

	cmd := exec.Command(binary, "-c", config("kafka.yaml"))
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	consume(first, func() bool { return count() >= 2000 })
	// Freeze the producer, read everything the first broker acknowledged
	// (it dies with its records), then close it and let the producer go on.
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	last, stable := count(), time.Now()
	consume(first, func() bool {
		if c := count(); c != last {
			last, stable = c, time.Now()
		}
		return time.Since(stable) > time.Second
	})
	first.Close()
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	// The producer connects the moment the port listens, and kfake seeds
	// its topics after it starts serving (a data race in kfake): create the
	// topic through the broker instead, once it is up.
	second, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Fatalf("starting the broker again on %s: %v", addr, err)
	}
	defer second.Close()
	createTopic(t, addr, topic)

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("%v after the broker restart\n%s", err, out.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("the run did not end after the broker restart\n%s", out.String())
	}
	finished := time.Now().Add(2 * time.Second)
	consume(second, func() bool { return count() >= n || time.Now().After(finished) })
	for i := 0; i < n; i++ {
		if !keys[sim.DeviceID(i)] {
			t.Fatalf("device %d reached neither broker (%d of %d did)", i, count(), n)
		}
	}
}

// createTopic creates a topic of one partition through the broker at addr.
func createTopic(t *testing.T, addr, topic string) {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := req.RequestWith(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if code := res.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("creating %s: error code %d", topic, code)
	}
}
