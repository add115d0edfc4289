// Command naiveapps joins Intune's detected apps to their devices the way a
// user writes it first: x/oauth2 client credentials for the token, list
// deviceManagement/detectedApps (following @odata.nextLink), then for each
// app, one request at a time, GET its managedDevices?$select=id,deviceName
// (every page), waiting Retry-After whenever Graph answers 429.
//
// It is the sequential peer of the detected-apps scenario of bench/: plain
// and correct, neither slowed down nor tuned. Its wall time is requests ×
// latency by construction, so -apps walks only the first N apps; benchrun
// extrapolates the loop to every app.
//
// It writes nothing but one JSON summary line (naiveapps.Summary) to stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/intune-benthos/intune-benthos/bench/internal/graphauth"
	"github.com/intune-benthos/intune-benthos/bench/internal/naiveapps"
)

func main() {
	var (
		loginURL = flag.String("login-url", "https://login.microsoftonline.com", "Entra ID login host")
		graphURL = flag.String("graph-url", "https://graph.microsoft.com", "Microsoft Graph host")
		tenant   = flag.String("tenant", "", "tenant id")
		clientID = flag.String("client-id", "", "application (client) id")
		secret   = flag.String("client-secret", "", "client secret")
		apps     = flag.Int("apps", 0, "walk the devices of the first N apps listed (0: every app)")
	)
	flag.Parse()
	log.SetFlags(0)

	s, err := run(context.Background(), *loginURL, *graphURL, *tenant, *clientID, *secret, *apps)
	if err != nil {
		log.Fatalf("naiveapps: %v", err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
		log.Fatalf("naiveapps: %v", err)
	}
}

type app struct {
	ID          string `json:"id"`
	DeviceCount int    `json:"deviceCount"`
}

type device struct {
	ID         string `json:"id"`
	DeviceName string `json:"deviceName"`
}

func run(ctx context.Context, loginURL, graphURL, tenant, clientID, secret string, limit int) (naiveapps.Summary, error) {
	var s naiveapps.Summary
	start := time.Now()
	cc := graphauth.Config(loginURL, tenant, clientID, secret)
	client := cc.Client(ctx)

	var apps []app
	n, t, err := getAll(ctx, client, graphURL+"/v1.0/deviceManagement/detectedApps", func(page []app) {
		apps = append(apps, page...)
	})
	s.ListRequests += n
	s.Throttled += t
	if err != nil {
		return s, err
	}
	s.AppsListed = len(apps)
	s.ListSeconds = time.Since(start).Seconds()

	if limit > 0 && limit < len(apps) {
		apps = apps[:limit]
	}
	loop := time.Now()
	for _, a := range apps {
		u := graphURL + "/v1.0/deviceManagement/detectedApps/" + url.PathEscape(a.ID) + "/managedDevices?$select=id,deviceName"
		n, t, err := getAll(ctx, client, u, func(page []device) {
			s.Pairs += len(page)
		})
		s.LoopRequests += n
		s.Throttled += t
		if err != nil {
			return s, fmt.Errorf("app %s: %w", a.ID, err)
		}
		s.AppsWalked++
		s.DeviceCountSum += a.DeviceCount
	}
	s.LoopSeconds = time.Since(loop).Seconds()
	return s, nil
}

// getAll reads every page from first on, following @odata.nextLink, and
// hands each page's values to fn. It returns what get does, summed.
func getAll[T any](ctx context.Context, client *http.Client, first string, fn func([]T)) (requests, throttled int, err error) {
	for next := first; next != ""; {
		var p struct {
			Value    []T    `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		n, t, err := get(ctx, client, next, &p)
		requests += n
		throttled += t
		if err != nil {
			return requests, throttled, err
		}
		fn(p.Value)
		next = p.NextLink
	}
	return requests, throttled, nil
}

// get decodes one page into v, waiting Retry-After (1 s when absent) and
// trying again as long as Graph answers 429. It returns the requests sent
// and how many of them were answered 429.
func get(ctx context.Context, client *http.Client, u string, v any) (requests, throttled int, err error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return requests, throttled, err
		}
		resp, err := client.Do(req)
		requests++
		if err != nil {
			return requests, throttled, err
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			throttled++
			wait := time.Second
			if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
				wait = time.Duration(secs) * time.Second
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return requests, throttled, ctx.Err()
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return requests, throttled, fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
		}
		err = json.NewDecoder(resp.Body).Decode(v)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return requests, throttled, err
	}
}
