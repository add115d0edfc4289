// Command msgraph reads every managed device with Microsoft's Graph SDK for
// Go (msgraph-sdk-go): DeviceManagement().ManagedDevices().Get and the core
// library's PageIterator, each device serialized back to JSON with kiota's
// JSON writer, one per line into a buffered file.
//
// The token comes from the client credentials grant through x/oauth2, handed
// to kiota's BaseBearerTokenAuthenticationProvider (azidentity would do the
// same against the real Entra ID; this keeps the token endpoint pointable at
// graphsim).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"

	"github.com/microsoft/kiota-abstractions-go/authentication"
	"github.com/microsoft/kiota-abstractions-go/serialization"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"golang.org/x/oauth2"

	"github.com/intune-benthos/intune-benthos/bench/internal/graphauth"
)

func main() {
	var (
		loginURL = flag.String("login-url", "https://login.microsoftonline.com", "Entra ID login host")
		graphURL = flag.String("graph-url", "https://graph.microsoft.com", "Microsoft Graph host")
		tenant   = flag.String("tenant", "", "tenant id")
		clientID = flag.String("client-id", "", "application (client) id")
		secret   = flag.String("client-secret", "", "client secret")
		out      = flag.String("out", "devices.jsonl", "output file, one device per line")
	)
	flag.Parse()
	log.SetFlags(0)

	n, err := run(context.Background(), *loginURL, *graphURL, *tenant, *clientID, *secret, *out)
	if err != nil {
		log.Fatalf("msgraph: %v", err)
	}
	fmt.Fprintf(os.Stderr, "msgraph: %d devices\n", n)
}

// tokenProvider is kiota's AccessTokenProvider over an x/oauth2 token source
// (which caches the token and renews it before it expires).
type tokenProvider struct {
	ts    oauth2.TokenSource
	hosts *authentication.AllowedHostsValidator
}

func (p *tokenProvider) GetAuthorizationToken(ctx context.Context, _ *url.URL, _ map[string]interface{}) (string, error) {
	t, err := p.ts.Token()
	if err != nil {
		return "", err
	}
	return t.AccessToken, nil
}

func (p *tokenProvider) GetAllowedHostsValidator() *authentication.AllowedHostsValidator {
	return p.hosts
}

func run(ctx context.Context, loginURL, graphURL, tenant, clientID, secret, out string) (int, error) {
	cc := graphauth.Config(loginURL, tenant, clientID, secret)
	gu, err := url.Parse(graphURL)
	if err != nil {
		return 0, err
	}
	hosts, err := authentication.NewAllowedHostsValidatorErrorCheck([]string{gu.Host})
	if err != nil {
		return 0, err
	}
	auth := authentication.NewBaseBearerTokenAuthenticationProvider(&tokenProvider{ts: cc.TokenSource(ctx), hosts: hosts})
	adapter, err := msgraphsdk.NewGraphRequestAdapter(auth)
	if err != nil {
		return 0, err
	}
	// Before the client is made: it copies the base URL into its path parameters.
	adapter.SetBaseUrl(graphURL + "/v1.0")
	client := msgraphsdk.NewGraphServiceClient(adapter)

	f, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriter(f)

	first, err := client.DeviceManagement().ManagedDevices().Get(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("first page: %w", err)
	}
	it, err := msgraphcore.NewPageIterator[models.ManagedDeviceable](first, adapter, models.CreateManagedDeviceCollectionResponseFromDiscriminatorValue)
	if err != nil {
		return 0, err
	}
	n := 0
	var serr error
	err = it.Iterate(ctx, func(d models.ManagedDeviceable) bool {
		b, err := serialization.SerializeToJson(d)
		if err != nil {
			serr = err
			return false
		}
		w.Write(b)
		w.WriteByte('\n')
		n++
		return true
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return n, err
	}
	if err := w.Flush(); err != nil {
		return n, err
	}
	return n, f.Close()
}
