// Package graphauth is the x/oauth2 client credentials grant the bench
// programs (floor, msgraph, naiveapps) get their Graph token with.
package graphauth

import (
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Config is Entra ID's client credentials grant for Microsoft Graph at
// loginURL (Entra ID's host, or graphsim's).
func Config(loginURL, tenant, clientID, secret string) clientcredentials.Config {
	return clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		TokenURL:     loginURL + "/" + tenant + "/oauth2/v2.0/token",
		Scopes:       []string{"https://graph.microsoft.com/.default"},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
}
