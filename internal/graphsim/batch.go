package graphsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
)

// JSON batching, as Microsoft's "Combine multiple requests in one HTTP
// call using JSON batching" describes it:
//
//	POST /{v1.0|beta}/$batch
//	{"requests":[{"id":"1","method":"GET","url":"/deviceManagement/managedDevices/{id}?$select=notes","headers":{}}, ...]}
//
//	200 {"responses":[{"id":"1","status":200,"headers":{"Content-Type":"application/json;..."},"body":{...}}, ...]}
//
// Each request's url is relative to the batch's version (the leading
// slash optional) and is routed exactly as the same request sent on its
// own would be, by the same handlers, with the batch's bearer token. Each
// answer keeps its own status, headers (Retry-After on a 429) and body,
// embedded as JSON (Int64 values stay as written) or, when it is not
// JSON, as a base64 string. The answers come in an order of their own,
// shuffled by the batch's ids, so that a client cannot rely on it.
//
// The batch as a whole needs the bearer token (401), holds at most 20
// requests with unique ids (compared case-insensitively, as Graph does),
// and anything else is Graph's 400 for the whole batch. The throttle
// charges every request inside, not the batch itself (Graph evaluates
// each); one over the budget gets its 429 inside the batch, which is
// still 200. Config.Latency is waited once per batch: Graph runs the
// requests in parallel (graphsim one after another, which a client cannot
// tell; a stalled GET holds the whole batch either way). The request log holds one KindBatch record for
// the POST; Stats counts the requests inside (BatchItems).

const (
	maxBatchRequests = 20
	maxBatchBody     = 4 << 20 // 20 requests with bodies of their own fit easily
)

// batchRequest is one request of a batch.
type batchRequest struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
	// DependsOn is accepted and not enforced: the requests run one after
	// another in the order given.
	DependsOn []string `json:"dependsOn"`
}

// serveBatch answers POST /{version}/$batch.
func (s *Server) serveBatch(w *exchange, r *http.Request, ids requestIDs, version string) {
	if !s.allowOnly(w, r, ids, http.MethodPost) || !s.authorize(w, r, ids) {
		return
	}
	reqs, msg := readBatch(w, r)
	if msg != "" {
		s.badRequest(w, ids, msg)
		return
	}
	if !s.latency(w, r) {
		return
	}
	items := make([]*itemWriter, len(reqs))
	for k := range reqs {
		items[k] = s.runItem(w, r, ids, version, &reqs[k])
		if r.Context().Err() != nil {
			return // the client gave up, on a stalled GET say: nothing counts
		}
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	*bp = appendBatchAnswer((*bp)[:0], reqs, items, batchOrder(s.cfg.Seed, reqs))
	s.countBatch(items, 1)
	if writeBody(w, http.StatusOK, graphContentType, *bp) != nil {
		s.countBatch(items, -1)
	}
}

// countBatch adds n (1, or -1 to take it back) to the counters of a batch
// and of the single-device GETs it answered (see deviceGet).
func (s *Server) countBatch(items []*itemWriter, n int) {
	s.batchRequests.Add(int64(n))
	for _, it := range items {
		if it.x.got != nil {
			s.countDeviceGet(it.x.got, n)
		}
	}
}

// readBatch decodes and checks a batch's body; a message means 400 for
// the whole batch.
func readBatch(w http.ResponseWriter, r *http.Request) ([]batchRequest, string) {
	const invalid = "Invalid batch payload format."
	var body struct {
		Requests []batchRequest `json:"requests"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBatchBody)).Decode(&body); err != nil || len(body.Requests) == 0 {
		return nil, invalid
	}
	if len(body.Requests) > maxBatchRequests {
		return nil, "Number of requests inside batch exceeds the limit."
	}
	seen := make(map[string]bool, len(body.Requests))
	for _, q := range body.Requests {
		switch id := strings.ToLower(q.ID); {
		case q.ID == "":
			return nil, "Request Id is required for every request in a batch."
		case seen[id]:
			return nil, "Request Id " + q.ID + " has to be unique in a batch."
		case q.Method == "" || q.URL == "":
			return nil, invalid
		default:
			seen[id] = true
		}
	}
	return body.Requests, ""
}

// itemWriter is the ResponseWriter of a request inside a batch: it keeps
// the answer for the batch's.
type itemWriter struct {
	h      http.Header
	status int
	body   []byte
	x      *exchange // the exchange that wraps it
}

func (it *itemWriter) Header() http.Header { return it.h }

func (it *itemWriter) WriteHeader(code int) {
	if it.status == 0 {
		it.status = code
	}
}

func (it *itemWriter) Write(b []byte) (int, error) {
	it.WriteHeader(http.StatusOK)
	if it.body == nil {
		it.body = make([]byte, 0, len(b)) // a single entity comes in one Write
	}
	it.body = append(it.body, b...)
	return len(b), nil
}

// isJSON reports whether the answer's body can be embedded as JSON. The
// handlers write valid JSON but under a page fault meant to break it, so
// only those answers are checked.
func (it *itemWriter) isJSON() bool {
	if !strings.HasPrefix(it.h.Get("Content-Type"), "application/json") {
		return false
	}
	return it.x.fault == "" || json.Valid(it.body)
}

// runItem answers one request of the batch outer as it would be answered
// alone: routed, charged by the throttle (at the batch's arrival), served
// by its handler.
func (s *Server) runItem(w *exchange, outer *http.Request, batchIDs requestIDs, version string, q *batchRequest) (it *itemWriter) {
	s.batchItems.Add(1)
	it = &itemWriter{h: http.Header{}}
	x := &exchange{ResponseWriter: it, at: w.at, batched: true}
	it.x = x
	ids := requestIDs{request: newUUID(), client: batchIDs.client}
	if id := q.header("client-request-id"); id != "" {
		ids.client = id
	}
	r, err := innerRequest(outer, version, q)
	if err != nil {
		s.badRequest(x, ids, "Invalid request URL '"+q.URL+"'. The URL of a request inside a batch is relative to the version, e.g. /deviceManagement/managedDevices.")
		return it
	}
	kind, serve := s.route(x, r, ids, strings.Split(strings.Trim(r.URL.Path, "/"), "/"))
	if kind == KindBatch {
		s.badRequest(x, ids, "Nested batch requests are not supported.")
		return it
	}
	x.kind = kind
	if !s.admit(x, r, ids) {
		return it
	}
	defer func() {
		// A page fault that drops the connection (FaultTruncate) cannot
		// drop the batch's: the gateway answers the request 502.
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			*it = itemWriter{h: http.Header{}, x: x}
			s.graphError(it, ids, http.StatusBadGateway, "BadGateway", "The upstream service closed the connection before its answer was complete.")
		}
	}()
	serve()
	return it
}

// header returns the value of the request's header name, whatever its case.
func (q *batchRequest) header(name string) string {
	for k, v := range q.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// innerRequest makes the http.Request of a request inside the batch
// outer: its path under the version, its headers and body, the batch's
// token, host and context.
func innerRequest(outer *http.Request, version string, q *batchRequest) (*http.Request, error) {
	if strings.Contains(q.URL, "://") {
		return nil, errAbsoluteURL
	}
	var body io.Reader
	if len(q.Body) > 0 {
		body = bytes.NewReader(q.Body)
	}
	r, err := http.NewRequestWithContext(outer.Context(), strings.ToUpper(q.Method), "/"+version+"/"+strings.TrimPrefix(q.URL, "/"), body)
	if err != nil {
		return nil, err
	}
	r.Host, r.TLS, r.RemoteAddr = outer.Host, outer.TLS, outer.RemoteAddr
	for k, v := range q.Headers {
		r.Header.Set(k, v)
	}
	r.Header.Set("Authorization", outer.Header.Get("Authorization"))
	return r, nil
}

var errAbsoluteURL = errors.New("graphsim: an absolute URL in a batch")

// batchOrder is the order the answers are written in: a shuffle seeded by
// the batch's ids (FNV-1a) and the tenant's seed, so the same batch is
// always answered in the same order and different batches differently.
func batchOrder(seed int64, reqs []batchRequest) []int {
	h := uint64(14695981039346656037)
	for _, q := range reqs {
		for k := 0; k < len(q.ID); k++ {
			h = (h ^ uint64(q.ID[k])) * 1099511628211
		}
		h = (h ^ 0xff) * 1099511628211 // "1","12" differs from "11","2"
	}
	r := rng{s: splitmix64(h ^ uint64(seed))}
	order := make([]int, len(reqs))
	for k := range order {
		order[k] = k
	}
	shuffle(&r, order)
	return order
}

// appendBatchAnswer writes the batch's answer: each request's id, status,
// headers and body, in the given order.
func appendBatchAnswer(b []byte, reqs []batchRequest, items []*itemWriter, order []int) []byte {
	size := 32
	for _, it := range items {
		size += len(it.body) + 256
	}
	b = slices.Grow(b, size)
	b = append(b, `{"responses":[`...)
	for n, k := range order {
		it := items[k]
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, reqs[k].ID)
		b = append(b, `,"status":`...)
		b = appendInt(b, int64(it.status))
		b = append(b, `,"headers":{`...)
		names := make([]string, 0, len(it.h))
		for name := range it.h {
			if name != "Content-Length" {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		for m, name := range names {
			if m > 0 {
				b = append(b, ',')
			}
			b = appendString(b, name)
			b = append(b, ':')
			b = appendString(b, it.h.Get(name))
		}
		b = append(b, '}')
		if len(it.body) > 0 {
			b = append(b, `,"body":`...)
			if it.isJSON() {
				b = append(b, it.body...)
			} else {
				b = appendString(b, base64.StdEncoding.EncodeToString(it.body))
			}
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
