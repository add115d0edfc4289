package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// JSON batching (Microsoft Graph docs, "Combine multiple requests in one
// HTTP call using JSON batching"): up to BatchLimit requests go in one
//
//	POST {graph}/{version}/$batch  {"requests":[{"id":"1","method":"GET","url":"/deviceManagement/..."}, ...]}
//
// and come back, in any order, each with its own status, headers and body:
//
//	{"responses":[{"id":"1","status":200,"headers":{...},"body":{...}}, ...]}
//
// Graph evaluates throttling per request inside the batch: an item may be
// answered 429, with its own Retry-After, while the batch is answered 200.

// BatchLimit is the most requests Graph accepts in one batch.
const BatchLimit = 20

// BatchAnswer is Graph's answer to one request of a batch.
type BatchAnswer struct {
	Status int
	// Body is the item's JSON body exactly as Graph wrote it: an Int64
	// above 2^53 or an escaped string arrives unchanged.
	Body []byte
	// Err is Graph's error for a status outside 2xx, with the batch's
	// request ids and the item's own Retry-After.
	Err *Error
}

// OK tells a 2xx answer.
func (a BatchAnswer) OK() bool { return a.Status >= 200 && a.Status <= 299 }

// IsNotFound tells an answer saying the resource does not exist (any more).
func (a BatchAnswer) IsNotFound() bool { return a.Status == http.StatusNotFound }

// Batch GETs paths (relative to version, such as
// "/deviceManagement/managedDevices/{id}?$select=notes") in one JSON batch
// and returns the answer to each, in the order of paths. The batch takes
// len(paths) of the throttle's budget as a share (Throttle.AcquireShare)
// and is retried as a whole like any request when Graph refuses it (429,
// 5xx, a body cut short); what each item's own status means is the
// caller's to decide, except that an item answered 429 or 503 pauses the
// throttle, as the answer to a request of its own would.
func (c *Client) Batch(ctx context.Context, version string, paths []string) ([]BatchAnswer, error) {
	if len(paths) == 0 || len(paths) > BatchLimit {
		return nil, fmt.Errorf("a batch holds 1 to %d requests, not %d", BatchLimit, len(paths))
	}
	payload, err := batchPayload(paths)
	if err != nil {
		return nil, err
	}
	target := strings.TrimRight(c.Base.String(), "/") + "/" + version + "/$batch"
	describe := func(err error) error { return fmt.Errorf("batch of %d requests: %w", len(paths), err) }
	answers, err := retrying(ctx, c, 0, len(paths), describe, func() ([]BatchAnswer, string, error) {
		return c.batchOnce(ctx, target, payload, len(paths))
	})
	if err != nil {
		return nil, describe(err)
	}
	if pause, throttled := c.itemsThrottled(answers); throttled && c.Throttle != nil {
		c.Throttle.Throttled(pause)
	}
	return answers, nil
}

// itemsThrottled tells whether Graph answered an item 429 or 503, and for
// how long the app should then pause: the longest Retry-After of those
// items, or the backoff of a first retry when none carries one.
func (c *Client) itemsThrottled(answers []BatchAnswer) (time.Duration, bool) {
	var pause time.Duration
	throttled := false
	for _, a := range answers {
		if !ThrottledStatus(a.Status) {
			continue
		}
		wait := c.Retry.backoff(1)
		if a.Err != nil && a.Err.HasRetryAfter {
			wait = a.Err.RetryAfter
		}
		pause, throttled = max(pause, wait), true
	}
	return pause, throttled
}

// ThrottledStatus tells the statuses with which Graph says the app has
// spent its budget: 429, and 503 which Graph sends with Retry-After too.
func ThrottledStatus(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// batchPayload is the batch's body: item i has id i+1.
func batchPayload(paths []string) ([]byte, error) {
	type request struct {
		ID     string `json:"id"`
		Method string `json:"method"`
		URL    string `json:"url"`
	}
	reqs := make([]request, len(paths))
	for i, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("batch request %q must be a path relative to the version, starting with /", p)
		}
		reqs[i] = request{ID: strconv.Itoa(i + 1), Method: http.MethodGet, URL: p}
	}
	return json.Marshal(map[string]any{"requests": reqs})
}

// batchOnce sends one attempt of a batch of n items. It returns the token
// it used so that a refused one can be invalidated.
func (c *Client) batchOnce(ctx context.Context, target string, payload []byte, n int) ([]BatchAnswer, string, error) {
	res, token, clientRequestID, err := c.roundTrip(ctx, http.MethodPost, target, payload)
	if err != nil {
		return nil, token, err
	}
	defer res.Body.Close()
	limit := c.MaxPageBytes
	if limit <= 0 {
		limit = DefaultMaxPageBytes
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, token, &TransportError{Err: fmt.Errorf("reading body: %w", timedOut(err)),
			RequestID: res.Header.Get("request-id"), ClientRequestID: clientRequestID}
	}
	if res.StatusCode != http.StatusOK {
		return nil, token, graphError(res, body, clientRequestID)
	}
	if int64(len(body)) > limit {
		return nil, token, fmt.Errorf("%w (%d bytes)", ErrPageTooLarge, limit)
	}
	answers, err := parseBatch(body, n, res.Header, clientRequestID)
	if err != nil {
		return nil, token, &BodyError{Err: err, RequestID: res.Header.Get("request-id"), ClientRequestID: clientRequestID}
	}
	return answers, token, nil
}

// parseBatch reads the answers of a batch of n items, placing each by its
// id. An answer that does not hold every item once is malformed: the batch
// is sent again rather than an item taken for answered.
func parseBatch(body []byte, n int, header http.Header, clientRequestID string) ([]BatchAnswer, error) {
	var doc struct {
		Responses []struct {
			ID      string            `json:"id"`
			Status  int               `json:"status"`
			Headers map[string]string `json:"headers"`
			Body    json.RawMessage   `json:"body"`
		} `json:"responses"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("batch answer is not JSON: %w", err)
	}
	answers := make([]BatchAnswer, n)
	seen := make([]bool, n)
	for _, r := range doc.Responses {
		i, err := strconv.Atoi(r.ID)
		if err != nil || i < 1 || i > n || seen[i-1] {
			return nil, fmt.Errorf("batch answer has an unknown or repeated id %q", r.ID)
		}
		seen[i-1] = true
		a := BatchAnswer{Status: r.Status, Body: r.Body}
		if len(a.Body) == 0 || string(a.Body) == "null" {
			a.Body = nil
		}
		if !a.OK() {
			a.Err = itemError(r.Status, r.Headers, a.Body, header, clientRequestID)
		}
		answers[i-1] = a
	}
	for i, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("batch answer lacks request %d of %d", i+1, n)
		}
	}
	return answers, nil
}

// itemError is Graph's error answer to one item: its own status, body and
// Retry-After, and the ids of the batch when the item's body names none.
func itemError(status int, itemHeaders map[string]string, body []byte, batch http.Header, clientRequestID string) *Error {
	h := http.Header{}
	for k, v := range itemHeaders {
		h.Set(k, v)
	}
	gerr := ParseGraphError(status, h, body)
	if gerr.RequestID == "" {
		gerr.RequestID = batch.Get("request-id")
	}
	if gerr.ClientRequestID == "" {
		gerr.ClientRequestID = clientRequestID
	}
	gerr.RetryAfter, gerr.HasRetryAfter = parseRetryAfter(h.Get("Retry-After"), time.Now())
	return gerr
}
