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
type inputMetrics struct {
	requests      *service.MetricCounter // intune_graph_requests{status}: every Graph response ("error" when none came)
	tokenRequests *service.MetricCounter // intune_token_requests{status}: every token-endpoint response
	throttled     *service.MetricCounter // intune_graph_throttled: 429 answers
	throttleWait  *service.MetricCounter // intune_graph_throttle_wait_ms: time waited on 429s' Retry-After or backoff
	retries       *service.MetricCounter // intune_graph_retries: failed attempts that were retried (token renewals too)
	renewals      *service.MetricCounter // intune_token_renewals: tokens issued to the input
	pages         *service.MetricCounter // intune_pages: pages read
	emitted       *service.MetricCounter // intune_devices_emitted{operation}: upserts and deletions handed to the pipeline
	syncDuration  *service.MetricTimer   // intune_sync_duration: complete syncs, start to last acknowledgement
	lastSuccess   *service.MetricGauge   // intune_last_success_timestamp: Unix time of the last complete sync
	replayed      *service.MetricCounter // intune_messages_replayed: messages sent again after the outputs refused them
	// intune_details{outcome}: devices whose details were fetched, kept
	// from an earlier sync, failed, or found gone by the GET.
	details *service.MetricCounter
	// intune_details_missing: devices of the last delivered sync whose
	// due details could not be fetched.
	detailsMissing *service.MetricGauge
}

func newInputMetrics(m *service.Metrics) *inputMetrics {
	return &inputMetrics{
		requests:      m.NewCounter("intune_graph_requests", "status"),
		tokenRequests: m.NewCounter("intune_token_requests", "status"),
		throttled:     m.NewCounter("intune_graph_throttled"),
		throttleWait:  m.NewCounter("intune_graph_throttle_wait_ms"),
		retries:       m.NewCounter("intune_graph_retries"),
		renewals:      m.NewCounter("intune_token_renewals"),
		pages:         m.NewCounter("intune_pages"),
		emitted:       m.NewCounter("intune_devices_emitted", "operation"),
		syncDuration:  m.NewTimer("intune_sync_duration"),
		lastSuccess:   m.NewGauge("intune_last_success_timestamp"),
		replayed:      m.NewCounter("intune_messages_replayed"),

		details:        m.NewCounter("intune_details", "outcome"),
		detailsMissing: m.NewGauge("intune_details_missing"),
	}
}

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
