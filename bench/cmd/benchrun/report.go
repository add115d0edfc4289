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
	listed := map[string]bool{}
	for _, p := range append(programs(), destinationPrograms()...) {
		if _, ok := scenarioProgram(scenarios, p.name); ok && !listed[p.name] {
			listed[p.name] = true
			w("| `%s` | %s |\n", p.name, p.what)
		}
	}
	w("\n")

	for _, sc := range scenarios {
		if sc.idle {
			continue
		}
		w("## %s\n\n", sc.title())
		if sc.dest {
			renderDestinations(&b, sc)
			continue
		}
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

// renderDestinations is the destination scenario's table: each shipped
// config beside its floor, and the flattening's CPU beside the input's.
func renderDestinations(b *strings.Builder, sc *scenario) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("Each shipped config runs unchanged from start to exit against graphsim, into an empty destination: ")
	w("token, every page, every row written and the process gone. Its floor loads the same devices, already ")
	w("in a file (no Graph, no token, no paging), the fastest way that database has, into the same table. ")
	w("After every run the table was checked: one row per device, the whole device in `_raw` in each, ")
	w("Graph's never-dates NULL, 64-bit sizes exact.\n\n")
	w("| program | CPU s | wall s | peak RSS MB | devices/s | floor | wall ratio to floor |\n|---|---:|---:|---:|---:|---|---:|\n")
	for _, p := range sc.programs {
		s := summarize(sc.samples[p.name])
		floor, ratio := "–", "–"
		if fs, ok := sc.samples[p.floor]; ok && p.floor != "" {
			f := summarize(fs)
			floor, ratio = "`"+p.floor+"`", fmt.Sprintf("**%.2f**", s.wall/f.wall)
		}
		w("| `%s` | %.2f | %.2f | %.1f | %s | %s | %s |\n", p.name, s.cpu, s.wall, s.rssMB,
			thousands(int(float64(sc.devices)/s.wall)), floor, ratio)
	}
	in, inOK := sc.samples["intune-drop"]
	fl, flOK := sc.samples["intune-flatten"]
	if inOK && flOK {
		i, f := summarize(in), summarize(fl)
		w("\nFlattening (`intune_flatten`, what the ClickHouse, BigQuery and Snowflake configs run) adds **%.2f CPU s** ", f.cpu-i.cpu)
		w("to the input's own %.2f CPU s (input alone, `drop` output): **%.2f×** the input's CPU. ", i.cpu, (f.cpu-i.cpu)/i.cpu)
		w("SQLite and PostgreSQL flatten nothing in the pipeline: the database computes each column from `_raw`.\n")
	}
	w("\n")
}
