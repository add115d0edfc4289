package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped manifests pass.
func TestShippedManifests(t *testing.T) {
	problems, summary := validateAll("..", filepath.Join("..", "..", "..", "config", "postgres.yaml"), overlayDirs(".."))
	for _, p := range problems {
		t.Error(p)
	}
	if len(summary) != len(overlays) {
		t.Errorf("rendered %v, want one line per overlay %v", summary, overlays)
	}
}

// copyTree copies deploy/kubernetes's kustomizations and config/postgres.yaml
// into a temporary repository of the same layout, edits one file (none when
// file is empty), and returns the copy's deploy/kubernetes and config.
func copyTree(t *testing.T, file, old, new string) (root, config string) {
	t.Helper()
	tmp := t.TempDir()
	root = filepath.Join(tmp, "deploy", "kubernetes")
	for _, dir := range append([]string{"base"}, overlays...) {
		entries, err := os.ReadDir(filepath.Join("..", dir))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join("..", dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, dir, e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	config = filepath.Join(tmp, "config", "postgres.yaml")
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "postgres.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(config), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, data, 0o644); err != nil {
		t.Fatal(err)
	}

	if file == "" {
		return root, config
	}
	target := filepath.Join(tmp, filepath.FromSlash(file))
	text, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	edited := strings.Replace(string(text), old, new, 1)
	if err := os.WriteFile(target, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, config
}

// Each broken manifest is refused, with a problem that says what is wrong.
func TestBrokenManifests(t *testing.T) {
	const cronjob = "deploy/kubernetes/cronjob/cronjob.yaml"
	const sts = "deploy/kubernetes/statefulset/statefulset.yaml"
	const stsKustomization = "deploy/kubernetes/statefulset/kustomization.yaml"
	for _, tc := range []struct {
		name, file, old, new, want string
	}{
		{"misspelled field", cronjob, "  concurrencyPolicy: Forbid", "  concurencyPolicy: Forbid",
			`unknown field "spec.concurencyPolicy"`},
		{"field of the wrong case", sts, "serviceAccountName: intune-benthos", "ServiceAccountName: intune-benthos",
			`unknown field "spec.template.spec.ServiceAccountName"`},
		{"duplicate field", sts, "      serviceAccountName: intune-benthos\n", "      serviceAccountName: intune-benthos\n      serviceAccountName: intune-benthos\n",
			"already defined"},
		{"wrong type", sts, "timeoutSeconds: 5", `timeoutSeconds: "5"`,
			"cannot unmarshal string"},
		{"bad quantity", cronjob, "memory: 768Mi", "memory: 768MB",
			"quantities must match"},
		{"misspelled kustomization field", stsKustomization, "resources:", "resource:",
			"kustomize build"},
		{"file outside the kustomization", "deploy/kubernetes/base/kustomization.yaml", "      - postgres.yaml", "      - ../../../config/postgres.yaml",
			"kustomize build"},
		{"no memory limit", cronjob, "                  memory: 768Mi\n", "",
			"no memory limit"},
		{"request above limit", sts, "memory: 256Mi", "memory: 1Gi",
			"memory request 1Gi is above its limit 768Mi"},
		{"GOMEMLIMIT above the limit", sts, "value: 640MiB", "value: 800MiB",
			"GOMEMLIMIT 800MiB is not below the memory limit"},
		{"readiness on the wrong path", sts, "path: /ready", "path: /readyz",
			`readinessProbe path "/readyz", want /ready`},
		{"liveness on the wrong port", cronjob, "path: /ping\n                  port: http", "path: /ping\n                  port: 8080",
			"livenessProbe port 8080"},
		{"no scrape annotation", sts, `prometheus.io/scrape: "true"`, `prometheus.io/scrape: "false"`,
			"prometheus.io/scrape"},
		{"writable root filesystem", cronjob, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false",
			"readOnlyRootFilesystem is not true"},
		{"capabilities kept", sts, `drop: ["ALL"]`, `drop: ["NET_RAW"]`,
			"capabilities.drop does not hold ALL"},
		{"no seccomp", sts, "type: RuntimeDefault", "type: Unconfined",
			"seccompProfile is not RuntimeDefault"},
		{"root", cronjob, "runAsUser: 65532", "runAsUser: 0",
			"runAsUser is 0"},
		{"interval in a CronJob", cronjob, "              env:\n", "              env:\n                - name: INTUNE_INTERVAL\n                  value: 1h\n",
			"must be one-shot"},
		{"concurrent CronJob", cronjob, "concurrencyPolicy: Forbid", "concurrencyPolicy: Allow",
			"want Forbid"},
		{"no interval in the StatefulSet", sts, "value: 1h", `value: ""`,
			"INTUNE_INTERVAL is not set"},
		{"shard index not the pod's ordinal", sts, "metadata.labels['apps.kubernetes.io/pod-index']", "metadata.name",
			"INTUNE_SHARD_INDEX must come from the downward API"},
		{"tenants file not mounted", "deploy/kubernetes/base/kustomization.yaml", "INTUNE_TENANTS_FILE=/etc/intune-benthos/tenants/tenants.txt", "INTUNE_TENANTS_FILE=/etc/tenants.txt",
			"no volume is mounted there"},
		{"tenants file missing from its volume", sts, "path: tenants/tenants.txt", "path: tenants.txt",
			"volume config has no file tenants/tenants.txt"},
		{"no concurrency", "deploy/kubernetes/base/kustomization.yaml", "INTUNE_MAX_CONCURRENT_TENANTS=2", "INTUNE_MAX_CONCURRENT_TENANTS=0",
			"INTUNE_MAX_CONCURRENT_TENANTS is \"0\""},
		{"config copy out of date", "config/postgres.yaml", "input:", "# a change\ninput:",
			"run `make deploy-config`"},
		{"unknown Secret", cronjob, "secretKeyRef:\n                      name: intune-benthos", "secretKeyRef:\n                      name: intune-creds",
			`Secret "intune-creds" is not the documented one`},
		{"DSN key not documented", sts, "key: INTUNE_PG_DSN", "key: POSTGRES_DSN",
			`key "POSTGRES_DSN" of Secret intune-benthos is not in base/secret.example.yaml`},
		{"the example Secret applied", "deploy/kubernetes/base/kustomization.yaml", "  - serviceaccount.yaml", "  - serviceaccount.yaml\n  - secret.example.yaml",
			"a Secret is rendered"},
		{"no workload identity label", sts, `azure.workload.identity/use: "true"`, `azure.workload.identity/use: "false"`,
			"azure.workload.identity/use"},
		{"non-headless Service", sts, "clusterIP: None", "type: ClusterIP",
			"is not headless"},
		{"selector not matching", sts, "    matchLabels:\n      app.kubernetes.io/name: intune-benthos", "    matchLabels:\n      app.kubernetes.io/name: other",
			"does not select the template's labels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, config := copyTree(t, tc.file, tc.old, tc.new)
			problems, _ := validateAll(root, config, overlayDirs(root))
			if !containsProblem(problems, tc.want) {
				t.Errorf("no problem says %q; got %q", tc.want, problems)
			}
		})
	}
}

// Without the replacement, INTUNE_SHARD_COUNT keeps its placeholder and no
// longer equals replicas; with it, it follows replicas when they change.
func TestShardCountFollowsReplicas(t *testing.T) {
	const file = "deploy/kubernetes/statefulset/kustomization.yaml"
	text, err := os.ReadFile(filepath.Join("..", "statefulset", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(text), "\nreplacements:")
	if !ok {
		t.Fatal("no replacements in the StatefulSet's kustomization")
	}
	root, config := copyTree(t, file, "\nreplacements:"+block, "\n")
	problems, _ := validateAll(root, config, overlayDirs(root))
	if !containsProblem(problems, `INTUNE_SHARD_COUNT is "0" but replicas is 2`) {
		t.Errorf("without the replacement: %q", problems)
	}

	root, config = copyTree(t, file, "    count: 2", "    count: 5")
	problems, _ = validateAll(root, config, overlayDirs(root))
	if len(problems) > 0 {
		t.Errorf("replicas 5: %q", problems)
	}
	set, errs := render(filepath.Join(root, "statefulset"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, e := range set.statefulSets[0].Spec.Template.Spec.Containers[0].Env {
		if e.Name == envShardCount && e.Value != "5" {
			t.Errorf("%s = %q with 5 replicas", envShardCount, e.Value)
		}
	}
}

func containsProblem(problems []string, want string) bool {
	for _, p := range problems {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}

// overlayDirs are the shipped overlays under root.
func overlayDirs(root string) []string {
	var dirs []string
	for _, o := range overlays {
		dirs = append(dirs, filepath.Join(root, o))
	}
	return dirs
}

// An overlay of one's own that sets replicas must repeat the replacement:
// the statefulset overlay's ran before the outer replicas, and the
// validator, given the overlay, says so.
func TestOwnOverlayRepeatsTheReplacement(t *testing.T) {
	root, config := copyTree(t, "", "", "")
	text, err := os.ReadFile(filepath.Join(root, "statefulset", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(text), "\nreplacements:")
	mine := filepath.Join(filepath.Dir(filepath.Dir(root)), "mine")
	if err := os.MkdirAll(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	own := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../deploy/kubernetes/statefulset\nreplicas:\n  - name: intune-benthos\n    count: 4\n"
	write := func(text string) {
		if err := os.WriteFile(filepath.Join(mine, "kustomization.yaml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write(own)
	problems, _ := validateAll(root, config, []string{mine})
	if !containsProblem(problems, `INTUNE_SHARD_COUNT is "2" but replicas is 4`) {
		t.Errorf("replicas without the replacement: %q", problems)
	}

	write(own + "replacements:" + block)
	if problems, _ := validateAll(root, config, []string{mine}); len(problems) > 0 {
		t.Errorf("with the replacement: %q", problems)
	}
}

func TestUnreadVariables(t *testing.T) {
	reads := "tenants:\n  file: ${INTUNE_TENANTS_FILE:}\n  max_concurrent: ${INTUNE_MAX_CONCURRENT_TENANTS:8}\n" +
		"  shard_index: ${INTUNE_SHARD_INDEX:0}\n  shard_count: ${INTUNE_SHARD_COUNT:1}\ninterval: ${INTUNE_INTERVAL:}\n"
	if got := unreadVariables(reads); len(got) != 0 {
		t.Errorf("a config that reads them all: %q", got)
	}
	if got := unreadVariables("input: {}\n"); len(got) != 5 {
		t.Errorf("a config that reads none: %q", got)
	}
}
