package intune

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// inputMetrics are the input's own metrics, exported through whatever
// metrics target the config chooses (Prometheus at /metrics by default).
// Each carries the label tenant, first: one inputMetrics is one tenant's
// (empty for what an input with tenants counts for all of them).
type inputMetrics struct {
	requests      tenantCounter // intune_graph_requests{status}: every Graph response ("error" when none came)
	tokenRequests tenantCounter // intune_token_requests{status}: every token-endpoint response
	throttled     tenantCounter // intune_graph_throttled: 429 answers
	throttleWait  tenantCounter // intune_graph_throttle_wait_ms: time waited on 429s' Retry-After or backoff
	retries       tenantCounter // intune_graph_retries: failed attempts that were retried (token renewals too)
	renewals      tenantCounter // intune_token_renewals: tokens issued to the input
	pages         tenantCounter // intune_pages: pages read
	emitted       tenantCounter // intune_devices_emitted{operation}: upserts and deletions handed to the pipeline
	syncDuration  tenantTimer   // intune_sync_duration: complete syncs, start to last acknowledgement
	lastSuccess   tenantGauge   // intune_last_success_timestamp: Unix time of the last complete sync
	replayed      tenantCounter // intune_messages_replayed: messages sent again after the outputs refused them
	// intune_details{outcome}: devices whose details were fetched, kept
	// from an earlier sync, failed, or found gone by the GET.
	details tenantCounter
	// intune_details_missing: devices of the last delivered sync whose
	// due details could not be fetched.
	detailsMissing tenantGauge
}

// metricTenant is the label every metric of the inputs carries first.
const metricTenant = "tenant"

func newInputMetrics(m *service.Metrics, tenant string) *inputMetrics {
	counter := func(name string, labels ...string) tenantCounter {
		return tenantCounter{m.NewCounter(name, append([]string{metricTenant}, labels...)...), tenant}
	}
	gauge := func(name string) tenantGauge { return tenantGauge{m.NewGauge(name, metricTenant), tenant} }
	return &inputMetrics{
		requests:      counter("intune_graph_requests", "status"),
		tokenRequests: counter("intune_token_requests", "status"),
		throttled:     counter("intune_graph_throttled"),
		throttleWait:  counter("intune_graph_throttle_wait_ms"),
		retries:       counter("intune_graph_retries"),
		renewals:      counter("intune_token_renewals"),
		pages:         counter("intune_pages"),
		emitted:       counter("intune_devices_emitted", "operation"),
		syncDuration:  tenantTimer{m.NewTimer("intune_sync_duration", metricTenant), tenant},
		lastSuccess:   gauge("intune_last_success_timestamp"),
		replayed:      counter("intune_messages_replayed"),

		details:        counter("intune_details", "outcome"),
		detailsMissing: gauge("intune_details_missing"),
	}
}

// tenantCounter, tenantGauge and tenantTimer are Benthos' metrics with
// their tenant label's value bound.
type tenantCounter struct {
	c      *service.MetricCounter
	tenant string
}

func (t tenantCounter) Incr(n int64, labels ...string) {
	t.c.Incr(n, append([]string{t.tenant}, labels...)...)
}

type tenantGauge struct {
	g      *service.MetricGauge
	tenant string
}

func (t tenantGauge) Set(v int64) { t.g.Set(v, t.tenant) }

type tenantTimer struct {
	t      *service.MetricTimer
	tenant string
}

func (t tenantTimer) Timing(ns int64) { t.t.Timing(ns, t.tenant) }

// syncDelivered records a sync whose every message was acknowledged.
func (m *inputMetrics) syncDelivered(elapsed time.Duration) {
	m.syncDuration.Timing(elapsed.Nanoseconds())
	m.lastSuccess.Set(time.Now().Unix())
}

// retried counts a failed attempt that will be retried: one request, or
// the requests of a batch the event stands for.
func (m *inputMetrics) retried(ev graph.RetryEvent) {
	if ev.Items > 0 {
		m.retries.Incr(int64(ev.Items))
		if ev.ThrottledItems > 0 {
			m.throttled.Incr(int64(ev.ThrottledItems))
			m.throttleWait.Incr(ev.Wait.Milliseconds())
		}
		return
	}
	m.retries.Incr(1)
	var gerr *graph.Error
	if errors.As(ev.Err, &gerr) && gerr.Source == graph.SourceGraph && gerr.StatusCode == http.StatusTooManyRequests {
		m.throttled.Incr(1)
		m.throttleWait.Incr(ev.Wait.Milliseconds())
	}
}

// countingTransport counts responses by status, telling Entra ID's token
// endpoint (a POST to .../oauth2/v2.0/token) from Graph. The metadata
// service of a managed identity has a client of its own, marked tokensOnly.
type countingTransport struct {
	next       http.RoundTripper
	metrics    *inputMetrics
	tokensOnly bool
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(req)
	token := t.tokensOnly || req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/oauth2/v2.0/token")
	status := "error"
	if err == nil {
		status = strconv.Itoa(res.StatusCode)
	}
	if token {
		t.metrics.tokenRequests.Incr(1, status)
		if err == nil && res.StatusCode == http.StatusOK {
			t.metrics.renewals.Incr(1)
		}
	} else {
		t.metrics.requests.Incr(1, status)
	}
	return res, err
}
