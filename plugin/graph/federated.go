package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
)

// FederatedConfig is what workload identity federation needs: a token that
// another identity provider issued to this workload, in a file (Kubernetes'
// projected service account token, AZURE_FEDERATED_TOKEN_FILE under Azure
// Workload Identity), which Entra ID trusts through a federated credential
// on the app.
type FederatedConfig struct {
	ClientID string
	// TokenURL is {login}/{tenant}/oauth2/v2.0/token (see TokenURL).
	TokenURL string
	// Scope is the cloud's real Graph host + "/.default" (see Cloud.Scope).
	Scope string
	// HTTPClient sends the token requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// TokenFile holds the federated token. It is read for every token
	// request, because its writer replaces it before it expires (the
	// kubelet does so at 80% of its lifetime).
	TokenFile string
}

// maxFederatedTokenBytes bounds what is read from the token file: a JWT is a
// few kilobytes, and a larger file is the wrong file.
const maxFederatedTokenBytes = 64 << 10

// FederatedTokens fetches tokens with the client-credentials grant,
// authenticating with the federated token of a file as client assertion.
// Tokens are cached and renewed like ClientSecretTokens'.
type FederatedTokens struct {
	tokens *assertionTokens
}

// NewFederatedTokens builds a token provider for c. The file is not read
// yet: it may not exist until the workload runs.
func NewFederatedTokens(c FederatedConfig) (*FederatedTokens, error) {
	switch {
	case c.ClientID == "":
		return nil, errors.New("federated credential: no client id")
	case c.TokenURL == "":
		return nil, errors.New("federated credential: no token url")
	case c.TokenFile == "":
		return nil, errors.New("federated credential: no token file")
	}
	path := c.TokenFile
	return &FederatedTokens{
		tokens: newAssertionTokens(c.ClientID, c.TokenURL, c.Scope, c.HTTPClient, func() (string, error) {
			return readFederatedToken(path)
		}),
	}, nil
}

// Token implements TokenProvider.
func (t *FederatedTokens) Token(ctx context.Context) (string, error) {
	return t.tokens.cache.token(ctx)
}

// Invalidate implements TokenProvider.
func (t *FederatedTokens) Invalidate(token string) { t.tokens.cache.invalidate(token) }

// readFederatedToken returns the trimmed content of path. Its errors name
// the file and never quote what it holds.
func readFederatedToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("federated token file %q: %w", path, pathErrorReason(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFederatedTokenBytes+1))
	if err != nil {
		return "", fmt.Errorf("federated token file %q: %w", path, pathErrorReason(err))
	}
	if len(b) > maxFederatedTokenBytes {
		return "", fmt.Errorf("federated token file %q is larger than %d KiB: not a token", path, maxFederatedTokenBytes>>10)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("federated token file %q is empty", path)
	}
	return token, nil
}

// pathErrorReason drops the operation and path of a *fs.PathError, which
// the caller's message names already.
func pathErrorReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
