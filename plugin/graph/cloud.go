// Package graph is a small Microsoft Graph client for Intune's managedDevices
// collection: national clouds, client-credential tokens, paging by
// @odata.nextLink and Graph/Entra error parsing. It has no Benthos imports so
// that it can be tested, fuzzed and benchmarked on its own.
package graph

import (
	"fmt"
	"strings"
)

// Cloud names the hosts of one Microsoft cloud. Tokens are not interchangeable
// between clouds, so the login host, the Graph host and the token scope always
// come from the same row (see Microsoft's "National cloud deployments").
type Cloud struct {
	Name     string
	LoginURL string // Entra ID authority host
	GraphURL string // Microsoft Graph host; also the token scope's resource
}

// Scope is the client-credentials scope for this cloud's Graph. It stays the
// real Graph host even when requests go through a proxy or a simulator,
// because Entra ID issues tokens for the resource, not for the URL we dial.
func (c Cloud) Scope() string { return c.GraphURL + "/.default" }

// clouds are the supported clouds, in the order they are documented and
// listed: the commercial cloud first, then the national ones.
var clouds = []Cloud{
	{Name: "global", LoginURL: "https://login.microsoftonline.com", GraphURL: "https://graph.microsoft.com"},
	{Name: "usgov", LoginURL: "https://login.microsoftonline.us", GraphURL: "https://graph.microsoft.us"},
	{Name: "usgov_dod", LoginURL: "https://login.microsoftonline.us", GraphURL: "https://dod-graph.microsoft.us"},
	{Name: "china", LoginURL: "https://login.chinacloudapi.cn", GraphURL: "https://microsoftgraph.chinacloudapi.cn"},
}

// CloudNames lists the supported cloud names, in documentation order.
func CloudNames() []string {
	names := make([]string, len(clouds))
	for i, c := range clouds {
		names[i] = c.Name
	}
	return names
}

// LookupCloud returns the cloud called name.
func LookupCloud(name string) (Cloud, error) {
	for _, c := range clouds {
		if c.Name == name {
			return c, nil
		}
	}
	return Cloud{}, fmt.Errorf("unknown cloud %q: want one of %s", name, strings.Join(CloudNames(), ", "))
}
