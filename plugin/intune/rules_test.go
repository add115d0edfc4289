package intune

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benthosdev/benthos/v4/public/service"
)

// badValues holds, for every rule of the input, a config it refuses. The
// base config around it is valid.
var badValues = map[*rule]string{
	inputRule:            "client_secret: s\nmanaged_identity:\n  enabled: true",
	certificatePartsRule: "client_secret: s\nclient_certificate:\n  private_key: /etc/app.key",
	algorithmRule:        "client_certificate:\n  certificate: /etc/app.pem\n  algorithm: HS256",
	cloudRule:            "client_secret: s\ncloud: mars",
	apiVersionRule:       "client_secret: s\napi_version: v1.1",
	selectRule:           "client_secret: s\nselect: [ id, 'deviceName,model' ]",
	pageSizeRule:         "client_secret: s\npage_size: 12000",
	intervalRule:         "client_secret: s\ninterval: soon",
	backoffRule:          "client_secret: s\nbackoff:\n  max_interval: -1s",
	requestTimeoutRule:   "client_secret: s\nrequest_timeout: 0s",
	maxPageBytesRule:     "client_secret: s\nmax_page_bytes: -1",
	emitRule:             "client_secret: s\nemit: everything",

	strategyRule:          "client_secret: s\nstrategy: export_everything",
	maxConcurrencyRule:    "client_secret: s\nmax_concurrency: 0",
	requestsPerSecondRule: "client_secret: s\nmax_requests_per_second: -5",

	detailsPropertiesRule: "client_secret: s\ndetails:\n  properties: [ notes, deviceName ]",
	detailsMaxAgeRule:     "client_secret: s\ndetails:\n  max_age: 0s",

	tenantsMaxConcurrentRule: "client_secret: s\ntenants:\n  max_concurrent: 129",
	tenantsShardCountRule:    "client_secret: s\ntenants:\n  shard_count: 0",
}

// inputsUnderTest are the inputs whose rules are checked: the name they
// are registered under, their rules and their start-up parsing.
var inputsUnderTest = []struct {
	name  string
	rules func() []*rule
	parse func(*service.ParsedConfig) error
	spec  func() *service.ConfigSpec
}{
	{"intune_managed_devices", inputRules, func(c *service.ParsedConfig) error { _, err := parseInputConfig(c); return err }, inputSpec},
	{"intune_detected_apps", appsInputRules, func(c *service.ParsedConfig) error { _, err := parseAppsConfig(c); return err }, appsInputSpec},
}

// TestLintAndStartUpSayTheSameForEveryRule runs each bad value through
// Benthos' linter and through the input's constructor: both must refuse it
// with the very same message.
func TestLintAndStartUpSayTheSameForEveryRule(t *testing.T) {
	for _, input := range inputsUnderTest {
		for _, r := range input.rules() {
			name := input.name + " " + strings.Join(r.path, ".")
			bad, ok := badValues[r]
			if !ok {
				t.Errorf("rule of %s has no bad value in badValues: every rule must be tested", name)
				continue
			}
			conf := "tenant_id: t\nclient_id: c\n" + bad

			lintErr := service.NewStreamBuilder().AddInputYAML(input.name + ":\n  " + strings.ReplaceAll(conf, "\n", "\n  "))
			var lints service.LintError
			if !errors.As(lintErr, &lints) || len(lints) != 1 {
				t.Errorf("%s: lint = %v, want one lint", name, lintErr)
				continue
			}
			parsed, err := input.spec().ParseYAML(conf, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			startErr := input.parse(parsed)
			if startErr == nil {
				t.Errorf("%s: the input starts with a value lint refuses (%q)", name, lints[0].What)
				continue
			}
			if startErr.Error() != lints[0].What {
				t.Errorf("%s:\nlint     %q\nstart-up %q", name, lints[0].What, startErr.Error())
			}
			if !strings.HasPrefix(lints[0].What, strings.Join(r.path, ".")) {
				t.Errorf("%s: %q does not start with the field it is about", name, lints[0].What)
			}
			checkWrittenOnce(t, lints[0].What)
		}
	}
}

// checkWrittenOnce fails when the fixed words of a rule's message (up to
// ", got" or the first quoted or formatted part) appear in more than one
// place of the package's source: a second copy would drift from the first.
func checkWrittenOnce(t *testing.T, message string) {
	t.Helper()
	fixed := message
	for _, stop := range []string{", got", ", not", "\""} {
		if i := strings.Index(fixed, stop); i > 0 {
			fixed = fixed[:i]
		}
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		count += strings.Count(string(src), fixed)
	}
	if count > 1 {
		t.Errorf("%q is written %d times in the source", fixed, count)
	}
}

// TestRulesAcceptTheDefaultsAndAValidConfig: a rule that refused a good
// value would stop every pipeline.
func TestRulesAcceptTheDefaultsAndAValidConfig(t *testing.T) {
	for _, conf := range []string{
		"tenant_id: t\nclient_id: c\nclient_secret: s",
		"tenant_id: t\nclient_id: c\nclient_secret: s\napi_version: beta\ninterval: 1h\ncloud: usgov\nselect: [ id, deviceName ]\npage_size: 999\nbackoff:\n  initial_interval: 1s\n  max_elapsed_time: 0s\nrequest_timeout: 30s\nmax_page_bytes: 1000000\nemit: changes\nstate_cache: s",
	} {
		if err := service.NewStreamBuilder().AddInputYAML(inputConfigYAML(conf)); err != nil {
			t.Errorf("lint refuses a valid config: %v\n%s", err, conf)
		}
		if err := inputConfigError(t, conf); err != nil {
			t.Errorf("the input refuses a valid config: %v\n%s", err, conf)
		}
	}
}

// inputConfigYAML is conf as the intune_managed_devices input of a stream.
func inputConfigYAML(conf string) string {
	return "intune_managed_devices:\n  " + strings.ReplaceAll(conf, "\n", "\n  ")
}
