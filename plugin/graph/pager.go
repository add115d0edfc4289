package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Query selects what a listing of a collection returns.
type Query struct {
	APIVersion string   // "v1.0" or "beta"
	Select     []string // $select; empty means every property
	Filter     string   // $filter, passed through unchanged
	Top        int      // $top; 0 leaves the page size to Graph (1000)
}

// ManagedDevicesPath is the managed devices' collection, relative to
// {graph}/{api_version}.
const ManagedDevicesPath = "/deviceManagement/managedDevices"

// ManagedDevicesURL is the first page's URL of the managed devices under base.
func ManagedDevicesURL(base *url.URL, q Query) string {
	return CollectionURL(base, ManagedDevicesPath, q)
}

// CollectionURL is the first page's URL of the collection at path
// (relative to {graph}/{api_version}, e.g. ManagedDevicesPath) under base.
func CollectionURL(base *url.URL, path string, q Query) string {
	var opts []string
	if len(q.Select) > 0 {
		opts = append(opts, "$select="+escapeQueryValue(strings.Join(q.Select, ",")))
	}
	if q.Filter != "" {
		opts = append(opts, "$filter="+escapeQueryValue(q.Filter))
	}
	if q.Top > 0 {
		opts = append(opts, "$top="+strconv.Itoa(q.Top))
	}
	u := strings.TrimRight(base.String(), "/") + "/" + q.APIVersion + path
	if len(opts) > 0 {
		u += "?" + strings.Join(opts, "&")
	}
	return u
}

// escapeQueryValue escapes an OData option value. Spaces become %20 rather
// than '+', which OData parsers do not all read as a space; ',' stays
// literal as in Microsoft's own examples.
func escapeQueryValue(v string) string {
	return strings.NewReplacer("+", "%20", "%2C", ",").Replace(url.QueryEscape(v))
}

// Page is one response of the collection.
type Page struct {
	PageBody
	Number          int    // 1-based position in this listing
	URL             string // the URL it was fetched from
	RequestID       string // Graph's request-id
	ClientRequestID string // the client-request-id we sent
}

// ErrForeignNextLink reports an @odata.nextLink that points outside the
// Graph base URL. The link is not followed: the bearer token must never be
// sent to another host.
var ErrForeignNextLink = errors.New("@odata.nextLink points to another scheme or host than the Graph URL; refusing to send the token there")

// ErrNextLinkLoop reports a page whose @odata.nextLink is its own URL.
var ErrNextLinkLoop = errors.New("@odata.nextLink points to the page it came from; the listing would never end")

// Pager walks a collection by @odata.nextLink. It is not safe for concurrent
// use.
type Pager struct {
	client *Client
	next   string
	number int
}

// Pages starts a listing at firstURL, or resumes one at a saved nextLink.
// firstPage is the number the first fetched page gets (1 for a new listing).
func (c *Client) Pages(firstURL string, firstPage int) *Pager {
	return &Pager{client: c, next: firstURL, number: firstPage - 1}
}

// NextURL is the URL of the page the next call to Next fetches; empty when
// the listing is complete.
func (p *Pager) NextURL() string { return p.next }

// Next fetches the next page. It returns io.EOF once the last page (the one
// without @odata.nextLink) has been returned. A nextLink is followed verbatim:
// it already carries our query options, and OData refuses a repeated one.
func (p *Pager) Next(ctx context.Context) (*Page, error) {
	if p.next == "" {
		return nil, io.EOF
	}
	number := p.number + 1
	target, err := url.Parse(p.next)
	if err != nil {
		return nil, fmt.Errorf("page %d: parsing URL: %w", number, err)
	}
	if !sameOrigin(p.client.Base, target) {
		return nil, fmt.Errorf("page %d: %w (link host %q, graph host %q)", number, ErrForeignNextLink, target.Host, p.client.Base.Host)
	}
	resp, err := p.client.fetch(ctx, number, p.next)
	if err != nil {
		return nil, fmt.Errorf("page %d: %w", number, err)
	}
	page := &Page{
		PageBody:        resp.body,
		Number:          number,
		URL:             p.next,
		RequestID:       resp.requestID,
		ClientRequestID: resp.clientRequestID,
	}
	next, err := resolveNextLink(target, page.NextLink)
	if err != nil {
		return nil, fmt.Errorf("page %d: @odata.nextLink %w", number, err)
	}
	if next != "" && next == p.next {
		// Following it would read the same page forever.
		return nil, fmt.Errorf("page %d: %w (%s)", number, ErrNextLinkLoop, next)
	}
	p.number = number
	p.next = next
	return page, nil
}

// resolveNextLink makes a nextLink absolute. Graph always sends an absolute
// one, but OData allows a link relative to the request URL (SAP CAP and
// other OData servers send "managedDevices?$skiptoken=..."); resolving it
// here lets the origin check and checkpoints see the real target. An
// absolute link is returned byte for byte.
func resolveNextLink(current *url.URL, link string) (string, error) {
	if link == "" {
		return "", nil
	}
	ref, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("is not a URL: %w", err)
	}
	if ref.IsAbs() {
		return link, nil
	}
	return current.ResolveReference(ref).String(), nil
}

// sameOrigin compares scheme and host:port, reading an omitted port as the
// scheme's default. The loopback names (localhost, 127.0.0.0/8, ::1) count
// as one host: a local stand-in that writes its links with "localhost" while
// it is addressed as 127.0.0.1 is still this machine, same port.
func sameOrigin(base, u *url.URL) bool {
	if !strings.EqualFold(base.Scheme, u.Scheme) || u.User != nil {
		return false
	}
	if defaultedPort(base) != defaultedPort(u) {
		return false
	}
	if IsLoopbackHost(base.Hostname()) && IsLoopbackHost(u.Hostname()) {
		return true
	}
	return strings.EqualFold(base.Hostname(), u.Hostname())
}

func defaultedPort(u *url.URL) string {
	if port := u.Port(); port != "" {
		return port
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// IsLoopbackHost tells whether host names this machine's loopback interface.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
