package intune

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// TestACacheThatCannotBeWrittenStopsTheSyncBeforeItStarts runs each input
// with a file cache whose directory does not exist, as state_cache and as
// checkpoint_cache: the sync fails at once, naming the field, the cache and
// the key, before a single Graph request.
func TestACacheThatCannotBeWrittenStopsTheSyncBeforeItStarts(t *testing.T) {
	for _, input := range []string{"intune_managed_devices", "intune_detected_apps"} {
		for _, field := range []string{fieldStateCache, fieldCheckpointCache} {
			t.Run(input+"/"+field, func(t *testing.T) {
				sim, url := startSim(t, graphsim.Config{Devices: 30, DetectedApps: 20, Seed: 3})
				conf := strings.Replace(inputYAML(sim, url, "", "  "+field+": missing"), "intune_managed_devices:", input+":", 1)
				res := streamTest{input: conf, caches: []string{fileCache("missing", filepath.Join(t.TempDir(), "no", "such", "dir"))}}.run(t)
				if len(res.got) != 0 {
					t.Errorf("%d messages delivered", len(res.got))
				}
				if res.failure == nil {
					t.Fatal("the sync did not fail")
				}
				for _, want := range []string{"no sync started", field + `: cache "missing" cannot be written`, "directory does not exist", "_probe"} {
					if !strings.Contains(res.failure.Error(), want) {
						t.Errorf("the failure %q does not say %q", res.failure, want)
					}
				}
				if n := len(sim.Requests()); n != 0 {
					t.Errorf("%d Graph requests before the failure", n)
				}
			})
		}
	}
}
