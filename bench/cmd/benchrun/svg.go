package main

import (
	"fmt"
	"html"
	"runtime"
	"strings"
)

// renderSVG draws the results as small multiples: one row of panels per
// scenario (CPU s, wall s, peak RSS MB), one horizontal bar per program,
// each panel on its own scale with the value written at the end of the bar.
func renderSVG(o *options, scenarios []*scenario) string {
	const (
		labelW  = 110.0
		panelW  = 330.0
		gapW    = 24.0
		barH    = 15.0
		barGap  = 5.0
		titleH  = 26.0
		headerH = 64.0
		valueW  = 64.0 // room for the value after the longest bar
	)
	metrics := []struct {
		name string
		get  func(summary) float64
		unit string
	}{
		{"CPU seconds (user+sys)", func(s summary) float64 { return s.cpu }, "s"},
		{"wall seconds", func(s summary) float64 { return s.wall }, "s"},
		{"peak RSS (MB)", func(s summary) float64 { return s.rssMB }, ""},
	}
	colors := map[string]string{
		"intune-file": "#1f77b4",
		"intune-drop": "#6baed6",
		"floor":       "#7f7f7f",
		"msgraph":     "#ff7f0e",
		"http_client": "#2ca02c",

		"intune-flatten": "#9ecae1",
		"sqlite.yaml":    "#1f77b4",
		"sqlite-floor":   "#7f7f7f",
		"postgres.yaml":  "#1f77b4",
		"pg-copy-floor":  "#7f7f7f",
	}

	width := labelW + float64(len(metrics))*(panelW+gapW)
	height := headerH
	for _, sc := range scenarios {
		height += titleH + float64(len(sc.programs))*(barH+barGap) + 10
	}

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	w(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	w(`<text x="10" y="22" font-size="16" font-weight="bold">intune-benthos benchmark against graphsim: median of %d run(s)</text>`+"\n", o.runs)
	w(`<text x="10" y="40" fill="#555">%s, %s; %s. Shorter is better.</text>`+"\n",
		esc(cpuModel()), esc(fmt.Sprintf("%d cores", runtime.NumCPU())), esc(o.started.UTC().Format("2006-01-02")))
	for i, m := range metrics {
		x := labelW + float64(i)*(panelW+gapW)
		w(`<text x="%.0f" y="%.0f" font-weight="bold">%s</text>`+"\n", x, headerH-8, esc(m.name))
	}

	y := headerH
	for _, sc := range scenarios {
		w(`<text x="10" y="%.0f" font-weight="bold" fill="#333">%s</text>`+"\n", y+17, esc(sc.title()))
		w(`<line x1="10" x2="%.0f" y1="%.0f" y2="%.0f" stroke="#ddd"/>`+"\n", width-10, y+titleH-3, y+titleH-3)
		y0 := y + titleH
		sums := map[string]summary{}
		for _, p := range sc.programs {
			sums[p.name] = summarize(sc.samples[p.name])
		}
		expected := float64(sc.pages()) * sc.latency.Seconds()
		for i, m := range metrics {
			x0 := labelW + float64(i)*(panelW+gapW)
			maxV := 0.0
			for _, p := range sc.programs {
				maxV = max(maxV, m.get(sums[p.name]))
			}
			if i == 1 && sc.latency > 0 {
				maxV = max(maxV, expected)
			}
			if maxV <= 0 {
				maxV = 1
			}
			scale := (panelW - valueW) / maxV
			for j, p := range sc.programs {
				v := m.get(sums[p.name])
				by := y0 + float64(j)*(barH+barGap)
				w(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"/>`+"\n", x0, by, max(v*scale, 1), barH, colors[p.name])
				w(`<text x="%.1f" y="%.1f">%s%s</text>`+"\n", x0+v*scale+4, by+barH-3, fmtValue(v), m.unit)
			}
			if i == 1 && sc.latency > 0 {
				lx := x0 + expected*scale
				h := float64(len(sc.programs)) * (barH + barGap)
				w(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#d62728" stroke-dasharray="4 3"/>`+"\n", lx, lx, y0-4, y0+h-barGap)
				w(`<text x="%.1f" y="%.1f" fill="#d62728" font-size="10" text-anchor="end">%d pages × %s = %ss</text>`+"\n",
					lx-3, y0-5, sc.pages(), sc.latency, fmtValue(expected))
			}
		}
		for j, p := range sc.programs {
			by := y0 + float64(j)*(barH+barGap)
			w(`<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", labelW-8, by+barH-3, esc(p.name))
		}
		y = y0 + float64(len(sc.programs))*(barH+barGap) + 10
	}
	w("</svg>\n")
	return b.String()
}

func fmtValue(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func esc(s string) string { return html.EscapeString(s) }
