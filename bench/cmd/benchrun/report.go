package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

func renderMarkdown(o *options, scenarios []*scenario) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# Benchmark results\n\n")
	w("Written by `bench/cmd/benchrun` (`make bench`); see `bench/README.md` for what each program is.\n")
	w("Every figure is the **median of %d run(s)**, the programs run interleaved (each once, then each again).\n", o.runs)
	w("CPU is user + system seconds of the program's own process (rusage; graphsim, a separate process, is not counted), ")
	w("wall is start to exit, peak RSS is rusage `ru_maxrss`. Ratios are to the floor (a plain `encoding/json` program, ")
	w("`bench/cmd/floor`): 2.0 means twice the floor's. Every program's output was checked: one line per device, ")
	w("as many lines as graphsim served devices.\n\n")

	w("## Machine and run\n\n")
	w("| | |\n|---|---|\n")
	w("| CPU | %s |\n", cpuModel())
	w("| cores | %d |\n", runtime.NumCPU())
	w("| RAM | %s |\n", memTotal())
	w("| kernel | %s |\n", kernel())
	w("| Go | %s (%s/%s) |\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	w("| date | %s |\n", o.started.UTC().Format("2006-01-02 15:04 MST"))
	w("| command | `%s` |\n", o.commandLine)
	w("| binaries | `bin/intune-benthos` and `bin/graphsim` from `make build`, %s |\n", o.buildNote)
	w("| runs | %d per program and scenario, median shown |\n", o.runs)
	w("| page size | %d (graphsim's default) |\n", pageSize)
	w("| load average | %s before, %s after |\n", o.loadBefore, o.loadAfter)
	w("| duration | %s for the whole run |\n\n", o.finished.Sub(o.started).Round(time.Second))

	w("## Programs\n\n")
	w("| program | what it is |\n|---|---|\n")
	for _, p := range programs() {
		if _, ok := scenarioProgram(scenarios, p.name); ok {
			w("| `%s` | %s |\n", p.name, p.what)
		}
	}
	w("\n")

	for _, sc := range scenarios {
		if sc.idle {
			continue
		}
		w("## %s\n\n", sc.title())
		renderTable(&b, sc)
	}

	for _, sc := range scenarios {
		if !sc.idle {
			continue
		}
		w("## Idle footprint\n\n")
		w("Peak RSS of a complete run against an empty tenant (graphsim with `-devices 0`): start, one token, ")
		w("one empty page, exit. This is what the program costs before it holds any device.\n\n")
		w("| program | peak RSS MB | CPU s | wall s |\n|---|---:|---:|---:|\n")
		for _, p := range sc.programs {
			s := summarize(sc.samples[p.name])
			w("| `%s` | %.1f | %.2f | %.2f |\n", p.name, s.rssMB, s.cpu, s.wall)
		}
		w("\n")
	}

	w("## Every run\n\n")
	w("CPU s / wall s / peak RSS MB of each run, in the order they ran.\n\n")
	for _, sc := range scenarios {
		w("- %s:\n", sc.title())
		for _, p := range sc.programs {
			var runs []string
			for _, s := range sc.samples[p.name] {
				runs = append(runs, fmt.Sprintf("%.2f / %.2f / %.1f", s.cpu, s.wall, float64(s.rssKB)/1024))
			}
			w("  - `%s`: %s\n", p.name, strings.Join(runs, "; "))
		}
	}
	w("\n![chart](results.svg)\n")
	return b.String()
}

func renderTable(b *strings.Builder, sc *scenario) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	floor, hasFloor := sc.samples["floor"]
	var f summary
	if hasFloor {
		f = summarize(floor)
	}
	ratio := func(x, base float64) string {
		if !hasFloor || base <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", x/base)
	}
	expected := float64(sc.pages()) * sc.latency.Seconds()
	if sc.latency > 0 {
		w("graphsim waits %s before each page: %d pages × %s = **%.1f s** is the least any sequential pager can take.\n\n",
			sc.latency, sc.pages(), sc.latency, expected)
	}
	w("| program | CPU s | wall s | peak RSS MB | CPU ratio to floor | wall ratio | RSS ratio | devices/s | output MB |")
	if sc.latency > 0 {
		w(" wall / (pages × %s) |", sc.latency)
	}
	w("\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	if sc.latency > 0 {
		w("---:|")
	}
	w("\n")
	for _, p := range sc.programs {
		s := summarize(sc.samples[p.name])
		out := "–"
		if p.writes {
			out = fmt.Sprintf("%.1f", s.outMB)
		}
		w("| `%s` | %.2f | %.2f | %.1f | %s | %s | %s | %s | %s |", p.name, s.cpu, s.wall, s.rssMB,
			ratio(s.cpu, f.cpu), ratio(s.wall, f.wall), ratio(s.rssMB, f.rssMB),
			thousands(int(float64(sc.devices)/s.wall)), out)
		if sc.latency > 0 {
			w(" %.2f |", s.wall/expected)
		}
		w("\n")
	}
	w("\n")
}

func scenarioProgram(scenarios []*scenario, name string) (program, bool) {
	for _, sc := range scenarios {
		for _, p := range sc.programs {
			if p.name == name {
				return p, true
			}
		}
	}
	return program{}, false
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return "Linux " + strings.TrimSpace(string(b))
}
