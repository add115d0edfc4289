package graph

import (
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy decides how failed requests are retried: what Graph documents
// as transient (429, 500, 502, 503, 504, transport errors, a body cut short)
// is retried after the server's Retry-After, or else after an exponential
// backoff with full jitter; anything else fails at once.
type RetryPolicy struct {
	InitialInterval time.Duration // first backoff ceiling
	MaxInterval     time.Duration // backoff ceiling never grows past this
	// MaxElapsedTime is how long one page may be retried before the sync
	// gives up; 0 retries forever.
	MaxElapsedTime time.Duration
	// rand returns a number in [0, n); nil means math/rand/v2.
	rand func(n int64) int64
}

// DefaultRetryPolicy follows Microsoft's guidance to wait a few seconds
// before retrying a 5xx, and gives a sync fifteen minutes per page.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{InitialInterval: 2 * time.Second, MaxInterval: time.Minute, MaxElapsedTime: 15 * time.Minute}
}

// next returns how long to wait before attempt+1, or false when err is not
// retryable or the time budget is spent.
func (p RetryPolicy) next(attempt int, err error, elapsed time.Duration) (time.Duration, bool) {
	if !isRetryable(err) {
		return 0, false
	}
	var wait time.Duration
	var gerr *Error
	if errors.As(err, &gerr) && gerr.HasRetryAfter {
		wait = gerr.RetryAfter
	} else {
		wait = p.backoff(attempt)
	}
	if p.MaxElapsedTime > 0 && elapsed+wait > p.MaxElapsedTime {
		return 0, false
	}
	return wait, true
}

// backoff is "full jitter": uniform in [0, min(max, initial*2^(attempt-1))].
func (p RetryPolicy) backoff(attempt int) time.Duration {
	ceiling := p.InitialInterval
	if ceiling <= 0 {
		ceiling = time.Second
	}
	for i := 1; i < attempt && (p.MaxInterval <= 0 || ceiling < p.MaxInterval); i++ {
		ceiling *= 2
	}
	if p.MaxInterval > 0 && ceiling > p.MaxInterval {
		ceiling = p.MaxInterval
	}
	random := p.rand
	if random == nil {
		random = rand.Int64N
	}
	return time.Duration(random(int64(ceiling) + 1))
}

// isRetryable reports whether err is worth another attempt.
func isRetryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) && !isTransport(err) {
		return false
	}
	var gerr *Error
	if errors.As(err, &gerr) {
		return transientStatus(gerr.StatusCode)
	}
	var serr *StorageError
	if errors.As(err, &serr) {
		return transientStatus(serr.StatusCode)
	}
	// A certificate that does not verify will not verify on the next try:
	// it is a configuration problem (tls.root_cas) or an attack.
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return false
	}
	var berr *BodyError
	return isTransport(err) || errors.As(err, &berr)
}

// transientStatus tells the statuses Graph (and the storage serving its
// exports) document as worth retrying: throttling and the 5xx of an
// overloaded or restarting service.
func transientStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func isTransport(err error) bool {
	var terr *TransportError
	return errors.As(err, &terr)
}

// parseRetryAfter reads Retry-After in either of its forms: seconds
// (Graph sends fractions such as "2.128") or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || secs > 24*3600 {
			return 0, false
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if at, err := http.ParseTime(v); err == nil {
		d := at.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}
