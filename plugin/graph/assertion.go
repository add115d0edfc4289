package graph

import (
	"context"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// JWTBearerAssertionType is the client_assertion_type of a client
// authenticated by a JWT (RFC 7523), as Entra ID takes it for certificate
// credentials and for workload identity federation.
const JWTBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionTokens is the client-credentials grant authenticated by a client
// assertion instead of a secret. The assertion is made anew for every token
// request: a signed one is short-lived, and a federated one is rotated by
// whoever writes it.
type assertionTokens struct {
	clientID string
	tokenURL string
	scope    string
	client   *http.Client
	// assertion returns the client_assertion of the next request. Its
	// errors are configuration problems (a file that cannot be read, a key
	// that cannot sign): they are returned as they are, not retried.
	assertion func() (string, error)
	cache     tokenCache
}

func newAssertionTokens(clientID, tokenURL, scope string, client *http.Client, assertion func() (string, error)) *assertionTokens {
	t := &assertionTokens{
		clientID:  clientID,
		tokenURL:  tokenURL,
		scope:     scope,
		client:    orDefaultClient(client),
		assertion: assertion,
	}
	t.cache.fetch = t.fetch
	return t
}

func (t *assertionTokens) fetch(ctx context.Context) (*oauth2.Token, error) {
	assertion, err := t.assertion()
	if err != nil {
		return nil, err
	}
	// The request is the one ClientSecretTokens sends, with the assertion
	// in place of the secret: client_id (which Entra ID requires), scope,
	// grant_type=client_credentials, client_assertion_type and
	// client_assertion, all in the form.
	conf := clientcredentials.Config{
		ClientID:  t.clientID,
		TokenURL:  t.tokenURL,
		Scopes:    []string{t.scope},
		AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{
			"client_assertion_type": {JWTBearerAssertionType},
			"client_assertion":      {assertion},
		},
	}
	return exchange(ctx, t.client, &conf)
}
