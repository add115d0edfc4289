package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// DefaultMaxPageBytes bounds one response body. A page of 1000 devices is
// 3-6 MB, and under 10 MB in beta; anything near this limit is a misbehaving
// server, and reading it whole would risk the process' memory.
const DefaultMaxPageBytes = 64 << 20

// Client sends authenticated GET requests to Microsoft Graph.
type Client struct {
	HTTP   *http.Client
	Tokens TokenProvider
	// Base is the Graph host (optionally with a path prefix, for proxies).
	// Requests and nextLinks are confined to its scheme and host.
	Base         *url.URL
	UserAgent    string
	MaxPageBytes int64
	Retry        RetryPolicy
	// OnRetry, when set, is told about every failed attempt that will be
	// retried, before the wait.
	OnRetry func(RetryEvent)
	// Throttle, when set, paces every request and shares each 429's pause
	// with every other request of the client (see Throttle). Without it
	// each request only waits for its own retries.
	Throttle *Throttle

	// lastBody is the size of the previous page: Graph streams pages
	// (chunked, no Content-Length), and growing a buffer by doubling to 3 MB
	// would allocate twice the page on every page.
	lastBody atomic.Int64
}

// RetryEvent describes one failed attempt that is about to be retried.
type RetryEvent struct {
	Page    int
	Attempt int
	Wait    time.Duration
	Err     error
	// TokenRenewed: Graph refused the token (401) and the retry uses a new
	// one, at once.
	TokenRenewed bool
	// Items is how many requests of a JSON batch the event stands for,
	// each to be sent again (0 for a request of its own), ThrottledItems
	// how many of them Graph answered 429.
	Items, ThrottledItems int
}

type response struct {
	body            PageBody
	requestID       string
	clientRequestID string
}

// fetch GETs one page, retrying what Graph documents as transient and
// renewing a token Graph refused, once.
func (c *Client) fetch(ctx context.Context, page int, rawURL string) (*response, error) {
	return retrying(ctx, c, page, 0, nil, func() (*response, string, error) { return c.attempt(ctx, rawURL) })
}

// retrying runs one request until it succeeds: through the throttle, if
// any; again on what Graph documents as transient, after Retry-After or
// the backoff; and again once with a new token when Graph refuses the one
// it had. try returns the token it used. describe, when set, says in a
// retry's error what was being done (page is 0 for what is not a page).
// items is 0 for one request, which the throttle lets through first, and
// the number of items of a JSON batch, which takes a share of the budget
// (Throttle.AcquireShare).
func retrying[T any](ctx context.Context, c *Client, page, items int, describe func(error) error, try func() (T, string, error)) (T, error) {
	var zero T
	if describe == nil {
		describe = func(err error) error { return err }
	}
	started := time.Now()
	renewed := false
	for attempt := 1; ; attempt++ {
		if err := c.acquire(ctx, items); err != nil {
			return zero, err
		}
		resp, token, err := try()
		if err == nil {
			c.released(nil, 0)
			return resp, nil
		}
		if ctx.Err() != nil {
			c.released(nil, 0)
			return zero, ctx.Err()
		}
		var gerr *Error
		if errors.As(err, &gerr) && gerr.Source == SourceGraph && gerr.StatusCode == http.StatusUnauthorized && !renewed {
			// A token can be revoked or refused before its announced expiry:
			// fetch a new one and try again, once.
			c.Tokens.Invalidate(token)
			renewed = true
			c.released(nil, 0)
			if c.OnRetry != nil {
				c.OnRetry(RetryEvent{Page: page, Attempt: attempt, Err: describe(err), TokenRenewed: true})
			}
			continue
		}
		wait, ok := c.Retry.next(attempt, err, time.Since(started))
		c.released(err, wait)
		if !ok {
			if isRetryable(err) {
				return zero, fmt.Errorf("giving up after %d attempts in %s: %w", attempt, time.Since(started).Round(time.Millisecond), err)
			}
			return zero, err
		}
		if c.OnRetry != nil {
			c.OnRetry(RetryEvent{Page: page, Attempt: attempt, Wait: wait, Err: describe(err)})
		}
		if err := waitFor(ctx, wait); err != nil {
			return zero, err
		}
	}
}

// acquire waits for the throttle, if any, to let a request through: one
// (items 0) or a batch of items.
func (c *Client) acquire(ctx context.Context, items int) error {
	switch {
	case c.Throttle == nil:
		return nil
	case items > 0:
		return c.Throttle.AcquireShare(ctx, items)
	}
	return c.Throttle.Acquire(ctx)
}

// released tells the throttle, if any, how a request ended: a 429 or 503
// pauses every request for wait.
func (c *Client) released(err error, wait time.Duration) {
	if c.Throttle == nil {
		return
	}
	var gerr *Error
	throttled := errors.As(err, &gerr) && gerr.Source == SourceGraph && ThrottledStatus(gerr.StatusCode)
	c.Throttle.Release(throttled, wait)
}

// attempt sends one request. It returns the token it used so that a refused
// one can be invalidated.
func (c *Client) attempt(ctx context.Context, rawURL string) (*response, string, error) {
	res, token, clientRequestID, err := c.roundTrip(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, token, err
	}
	defer res.Body.Close()

	body, err := c.readBody(res)
	if err != nil {
		var terr *TransportError
		if errors.As(err, &terr) {
			terr.ClientRequestID = clientRequestID
			terr.RequestID = res.Header.Get("request-id")
		}
		return nil, token, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, token, graphError(res, body, clientRequestID)
	}
	page, err := ParsePage(body, nil)
	if err != nil {
		return nil, token, &BodyError{
			Err:             err,
			RequestID:       res.Header.Get("request-id"),
			ClientRequestID: clientRequestID,
		}
	}
	return &response{
		body:            page,
		requestID:       res.Header.Get("request-id"),
		clientRequestID: clientRequestID,
	}, token, nil
}

// roundTrip sends one request to Graph with a token: it returns the
// response (to be closed), the token it used, so that a refused one can be
// invalidated, and the client-request-id it sent.
func (c *Client) roundTrip(ctx context.Context, method, rawURL string, body []byte) (*http.Response, string, string, error) {
	token, err := c.Tokens.Token(ctx)
	if err != nil {
		return nil, "", "", err
	}
	req, clientRequestID, err := c.newRequest(ctx, method, rawURL, body, token)
	if err != nil {
		return nil, token, "", err
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, token, clientRequestID, &TransportError{Err: timedOut(err), ClientRequestID: clientRequestID}
	}
	return res, token, clientRequestID, nil
}

// graphError is Graph's error answer res, with our client-request-id when
// Graph did not echo one, and its Retry-After.
func graphError(res *http.Response, body []byte, clientRequestID string) *Error {
	gerr := ParseGraphError(res.StatusCode, res.Header, body)
	if gerr.ClientRequestID == "" {
		gerr.ClientRequestID = clientRequestID
	}
	gerr.RetryAfter, gerr.HasRetryAfter = parseRetryAfter(res.Header.Get("Retry-After"), time.Now())
	return gerr
}

// newRequest is a Graph request with the token and the headers Graph's
// best practices ask for: a client-request-id of our own, which Graph
// echoes and support asks for, and our User-Agent.
func (c *Client) newRequest(ctx context.Context, method, rawURL string, body []byte, token string) (*http.Request, string, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, reader)
	if err != nil {
		return nil, "", fmt.Errorf("building request: %w", err)
	}
	clientRequestID := uuid.NewString()
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("client-request-id", clientRequestID)
	req.Header.Set("return-client-request-id", "true")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	return req, clientRequestID, nil
}

// ErrPageTooLarge reports a response body above Client.MaxPageBytes.
var ErrPageTooLarge = errors.New("response body is larger than max_page_bytes")

func (c *Client) readBody(res *http.Response) ([]byte, error) {
	limit := c.MaxPageBytes
	if limit <= 0 {
		limit = DefaultMaxPageBytes
	}
	var buf bytes.Buffer
	switch hint := c.lastBody.Load(); {
	case res.ContentLength > 0 && res.ContentLength <= limit:
		buf.Grow(int(res.ContentLength))
	case hint > 0:
		// Pages are much alike; the extra eighth saves a regrowth for a
		// slightly longer page. bytes.Buffer.ReadFrom wants MinRead spare.
		buf.Grow(int(min(hint+hint/8, limit)) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(res.Body, limit+1)); err != nil {
		return nil, &TransportError{Err: fmt.Errorf("reading body: %w", timedOut(err))}
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%w (%d bytes)", ErrPageTooLarge, limit)
	}
	c.lastBody.Store(int64(buf.Len()))
	return buf.Bytes(), nil
}

// timedOut says "request timed out" in front of a timeout, which Go words
// in several ways ("context deadline exceeded", "Client.Timeout exceeded
// while awaiting headers", "i/o timeout").
func timedOut(err error) error {
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("request timed out (request_timeout): %w", err)
	}
	return err
}

// TransportError is a failure to exchange a request with the server
// (connection refused or reset, timeout, body cut short). It is retried.
type TransportError struct {
	Err             error
	RequestID       string // when the response headers arrived before the failure
	ClientRequestID string // the client-request-id we sent, when a page request failed
}

func (e *TransportError) Error() string {
	var ids []string
	if e.RequestID != "" {
		ids = append(ids, "request-id "+e.RequestID)
	}
	if e.ClientRequestID != "" {
		ids = append(ids, "client-request-id "+e.ClientRequestID)
	}
	if len(ids) == 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("%v (%s)", e.Err, strings.Join(ids, ", "))
}
func (e *TransportError) Unwrap() error { return e.Err }

// BodyError is a 200 response whose body is not a complete page (truncated
// or malformed). It is retried: the page is fetched again, whole.
type BodyError struct {
	Err             error
	RequestID       string
	ClientRequestID string
}

func (e *BodyError) Error() string {
	return fmt.Sprintf("%v (request-id %s, client-request-id %s)", e.Err, e.RequestID, e.ClientRequestID)
}
func (e *BodyError) Unwrap() error { return e.Err }
