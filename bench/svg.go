package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// series is one line of the plot.
type series struct {
	name   string
	color  string
	dashed bool
	pts    [][2]float64 // (hosts, seconds)
}

// plotSeries collects, for each tool of the date scenarios, its median time at each N.
func plotSeries(r *results) []series {
	defs := []struct {
		sc     int
		tool   string
		label  string
		color  string
		dashed bool
	}{
		{6, "floor-local", "floor: N local bash -c", "#888888", true},
		{1, "pdsh", "pdsh", "#1f77b4", false},
		{1, "clush", "clush", "#ff7f0e", false},
		{1, "pssh", "pssh", "#2ca02c", false},
		{1, "ssh-loop", "ssh loop", "#8c564b", false},
		{1, "ansible", "ansible", "#d62728", false},
		{3, "ansible-cp", "ansible ControlPersist (warm)", "#d62728", true},
		{2, "shoal-first", "shoal first contact", "#9467bd", true},
		{1, "shoal-cold", "shoal cold (no daemon)", "#9467bd", false},
		{3, "shoal-warm", "shoal warm (daemon)", "#000000", false},
	}
	var out []series
	for _, d := range defs {
		s := series{name: d.label, color: d.color, dashed: d.dashed}
		for _, c := range r.Cells {
			if c.Scenario != d.sc || c.Tool != d.tool || c.N < 2 {
				continue
			}
			if st := c.stats(); st.good() {
				s.pts = append(s.pts, [2]float64{float64(c.N), st.med})
			}
		}
		sort.Slice(s.pts, func(i, j int) bool { return s.pts[i][0] < s.pts[j][0] })
		if len(s.pts) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// plotSVG draws median time against hosts, both on log scales.
func plotSVG(r *results) string {
	ss := plotSeries(r)
	const W, H = 760, 480
	const left, right, top, bottom = 70, 250, 40, 50
	pw, ph := float64(W-left-right), float64(H-top-bottom)
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, p := range s.pts {
			xmin, xmax = math.Min(xmin, p[0]), math.Max(xmax, p[0])
			ymin, ymax = math.Min(ymin, p[1]), math.Max(ymax, p[1])
		}
	}
	if len(ss) == 0 {
		xmin, xmax, ymin, ymax = 10, 200, 0.1, 10
	}
	lx0, lx1 := math.Floor(math.Log10(xmin)), math.Ceil(math.Log10(xmax))
	if lx1 == lx0 {
		lx1++
	}
	ly0, ly1 := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if ly1 == ly0 {
		ly1++
	}
	X := func(v float64) float64 { return left + (math.Log10(v)-lx0)/(lx1-lx0)*pw }
	Y := func(v float64) float64 { return top + ph - (math.Log10(v)-ly0)/(ly1-ly0)*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">Run a command on N hosts: median wall time (log–log)</text>`+"\n", left)
	// Grid and ticks: decades, plus 2 and 5 within each.
	for e := lx0; e <= lx1; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) > lx1+1e-9 {
				continue
			}
			x := X(v)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", x, top, x, top+ph)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%g</text>`+"\n", x, top+ph+16, v)
		}
	}
	for e := ly0; e <= ly1; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) > ly1+1e-9 {
				continue
			}
			y := Y(v)
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left, y, left+pw, y)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g s</text>`+"\n", left-6, y+4, v)
		}
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">hosts (N)</text>`+"\n", left+pw/2, H-12)
	for i, s := range ss {
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6,4"`
		}
		var pts []string
		for _, p := range s.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", X(p[0]), Y(p[1])))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.color, dash)
		for _, p := range s.pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %g hosts, %.3f s</title></circle>`+"\n", X(p[0]), Y(p[1]), s.color, s.name, p[0], p[1])
		}
		ly := float64(top + 10 + 20*i)
		lx := float64(W - right + 20)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly, lx+28, ly, s.color, dash)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", lx+34, ly+4, xmlEscape(s.name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
