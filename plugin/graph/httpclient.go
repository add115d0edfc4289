package graph

import (
	"crypto/tls"
	"net/http"
	"time"
)

// DefaultRequestTimeout bounds one request, token or page, body included. A
// page of 1000 devices is a few MB: a minute is generous even on a slow link,
// and a stalled connection is retried rather than waited on.
const DefaultRequestTimeout = time.Minute

// NewHTTPClient returns a client for Graph and Entra ID requests: proxies
// from the environment (HTTPS_PROXY, NO_PROXY), certificate verification on
// (tlsConf, when not nil, adds e.g. a private CA for a TLS-inspecting proxy),
// a timeout per request, and no redirects. Neither service redirects these
// requests, and following a redirect could carry a token or a secret to a
// host nobody configured; a 3xx is reported as an error instead.
func NewHTTPClient(timeout time.Duration, tlsConf *tls.Config) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = http.ProxyFromEnvironment
	if tlsConf != nil {
		transport.TLSClientConfig = tlsConf.Clone()
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
