// Command validate checks the Kubernetes manifests of deploy/kubernetes
// without a cluster and without the network (`make validate-k8s`):
//
//  1. it renders each overlay with kustomize's Go API, as `kubectl apply -k`
//     does (load restrictor on: no file outside the kustomization's tree);
//  2. it decodes every rendered object into the typed structs of
//     k8s.io/api, the ones the API server's own schema is generated from,
//     refusing an unknown or misspelled field (case-sensitively), a
//     duplicate field and a value of the wrong type or format;
//  3. it checks what the project relies on: resources on every container,
//     probes on Benthos' /ping and /ready, the Prometheus annotations, the
//     security context, the environment the inputs read (the tenants file,
//     the shards), the files the command and the environment name being
//     mounted from the rendered ConfigMaps, and that the mounted pipeline is
//     config/postgres.yaml, byte for byte.
//
// It prints every problem and exits 1 when there is one.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// overlays are the directories under deploy/kubernetes that are applied.
var overlays = []string{"cronjob", "statefulset"}

const usage = `usage: go run . [-dir deploy/kubernetes] [-config config/postgres.yaml] [overlay dir ...]

Renders each overlay (by default the cronjob and statefulset overlays of
-dir; or the directories named, such as an overlay of your own that builds
on them) and checks every object. Prints the problems and exits 1 when
there is one.
`

func main() {
	root := flag.String("dir", "..", "the deploy/kubernetes directory")
	config := flag.String("config", filepath.Join("..", "..", "..", "config", "postgres.yaml"), "the shipped config the base's copy must equal")
	flag.Usage = func() { fmt.Fprint(flag.CommandLine.Output(), usage); flag.PrintDefaults() }
	flag.Parse()
	dirs := flag.Args()
	if len(dirs) == 0 {
		for _, o := range overlays {
			dirs = append(dirs, filepath.Join(*root, o))
		}
	}

	problems, summary := validateAll(*root, *config, dirs)
	for _, line := range summary {
		fmt.Println(line)
	}
	if shipped, err := os.ReadFile(*config); err == nil {
		for _, w := range unreadVariables(string(shipped)) {
			fmt.Println("validate-k8s: warning:", w)
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "validate-k8s:", p)
		}
		fmt.Fprintf(os.Stderr, "validate-k8s: %d problem(s)\n", len(problems))
		os.Exit(1)
	}
	fmt.Println("validate-k8s: ok")
}

// validateAll checks root's copy of the config and its example Secret, then
// renders and checks each overlay directory. It returns the problems found
// and a line per overlay saying what was rendered.
func validateAll(root, configPath string, dirs []string) (problems, summary []string) {
	shipped, err := os.ReadFile(configPath)
	if err != nil {
		return []string{err.Error()}, nil
	}
	copyPath := filepath.Join(root, "base", "postgres.yaml")
	deployed, err := os.ReadFile(copyPath)
	switch {
	case err != nil:
		problems = append(problems, err.Error())
	case string(deployed) != string(shipped):
		problems = append(problems, fmt.Sprintf("%s differs from %s: run `make deploy-config`", copyPath, configPath))
	}

	example, err := readSecretExample(filepath.Join(root, "base", "secret.example.yaml"))
	if err != nil {
		problems = append(problems, err.Error())
	}

	for _, dir := range dirs {
		overlay := filepath.Base(dir)
		set, errs := render(dir)
		for _, e := range errs {
			problems = append(problems, overlay+": "+e)
		}
		if set == nil || len(errs) > 0 {
			// Checks on objects that did not decode would only repeat it.
			continue
		}
		for _, p := range checkSet(set, example, string(shipped)) {
			problems = append(problems, overlay+": "+p)
		}
		summary = append(summary, fmt.Sprintf("%s: %s", overlay, set.describe()))
	}
	return problems, summary
}

// unreadVariables names the variables of the inputs' Kubernetes contract
// that the shipped config does not mention: the manifests set them, and
// until the config reads them they change nothing. A warning, not a
// problem, while the config catches up.
func unreadVariables(shipped string) []string {
	var out []string
	for _, name := range []string{envTenantsFile, envMaxConcurrent, envShardIndex, envShardCount, envInterval} {
		if !strings.Contains(shipped, name) {
			out = append(out, fmt.Sprintf("config/postgres.yaml does not read %s, which the manifests set", name))
		}
	}
	return out
}

// describe names the kinds of a rendered set and their counts.
func (s *renderedSet) describe() string {
	counts := map[string]int{}
	for _, o := range s.objects {
		counts[o.kind]++
	}
	var kinds []string
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	slices.Sort(kinds)
	return fmt.Sprintf("%d objects (%s)", len(s.objects), strings.Join(kinds, ", "))
}
