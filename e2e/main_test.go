// Package e2e runs the intune-benthos binary, built once per `go test` run,
// against graphsim and checks what a user would: rows in SQLite, lines on
// stdout, exit codes and log lines. It lives apart from cmd/intune-benthos so
// that `go test -race ./...` does not rebuild every Benthos component with
// the race detector for these tests; the binary under test is a normal build.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the intune-benthos executable under test.
var binary string

// repoRoot is the repository, for config/.
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	// `make test` builds the binary first and passes it in; otherwise build
	// it here with the Makefile's flags, so both share Go's build cache.
	if bin := os.Getenv("INTUNE_BENTHOS_BIN"); bin != "" {
		binary = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "intune-benthos-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "intune-benthos")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", binary, "./cmd/intune-benthos")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building intune-benthos: %v\n", err)
		return 1
	}
	return m.Run()
}
