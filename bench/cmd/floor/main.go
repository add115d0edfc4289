// Command floor reads every managed device the way a user could write it
// themselves in an afternoon: x/oauth2 client credentials for the token,
// encoding/json to split each page's "value" into raw devices, following
// @odata.nextLink, one device per line into a buffered file.
//
// It is the baseline ("floor") of the benchmark in bench/: straightforward and
// idiomatic, neither slowed down nor tuned.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"

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
		log.Fatalf("floor: %v", err)
	}
	fmt.Fprintf(os.Stderr, "floor: %d devices\n", n)
}

type page struct {
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"@odata.nextLink"`
}

func run(ctx context.Context, loginURL, graphURL, tenant, clientID, secret, out string) (int, error) {
	cc := graphauth.Config(loginURL, tenant, clientID, secret)
	client := cc.Client(ctx)

	f, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriter(f)

	n := 0
	next := graphURL + "/v1.0/deviceManagement/managedDevices"
	for next != "" {
		p, err := getPage(ctx, client, next)
		if err != nil {
			return n, err
		}
		for _, d := range p.Value {
			w.Write(d)
			w.WriteByte('\n')
		}
		n += len(p.Value)
		next = p.NextLink
	}
	if err := w.Flush(); err != nil {
		return n, err
	}
	return n, f.Close()
}

func getPage(ctx context.Context, client *http.Client, url string) (*page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	var p page
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return &p, nil
}
