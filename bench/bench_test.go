package main

import (
	"encoding/xml"
	"math"
	"strings"
	"testing"
)

func TestCountMarkers(t *testing.T) {
	out := []byte("h001: Wed Nov 25\nh001: BENCHOK-h001\n{\"out\":\"BENCHOK-h003\\n\"}\nBENCHOK-h002\nBENCHOK-h002\n")
	got, missing := countMarkers(out, 4)
	if got != 3 || len(missing) != 1 || missing[0] != "h004" {
		t.Errorf("countMarkers = %d, %v; want 3, [h004]", got, missing)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v; want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Errorf("median(nil) is not NaN")
	}
}

func TestStatsFailureIsNotAFigure(t *testing.T) {
	c := &cell{Samples: []sample{{Wall: 1, OK: true}, {Wall: 2, Err: "9 of 10 hosts answered"}}}
	st := c.stats()
	if st.good() || st.ok != 1 || st.total != 2 || st.err == "" {
		t.Errorf("stats = %+v; want one failure out of two, not good", st)
	}
}

func TestHostNames(t *testing.T) {
	if got := hostRange(50); got != "h[001-050]" {
		t.Errorf("hostRange(50) = %q", got)
	}
	if got := hostAddr(201); got != "127.77.1.1" {
		t.Errorf("hostAddr(201) = %q", got)
	}
	if !strings.HasPrefix(hostAddr(500), "127.") {
		t.Errorf("hostAddr(500) = %q is not loopback", hostAddr(500))
	}
}

func TestPlotAndDocsRender(t *testing.T) {
	r := &results{Ns: []int{10, 200}, Runs: 1, PushN: 50, PushMB: 50}
	for _, n := range []int{10, 200} {
		r.cell(1, "pdsh", n).Samples = []sample{{Wall: float64(n) / 50, CPU: 0.01 * float64(n), OK: true}}
		r.cell(6, "floor-local", n).Samples = []sample{{Wall: float64(n) / 1000, OK: true}}
		r.cell(3, "shoal-warm", n).Samples = []sample{{Wall: float64(n) / 800, OK: true}}
	}
	svg := plotSVG(r)
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("plot is not well-formed XML: %v", err)
	}
	if !strings.Contains(svg, "pdsh") || !strings.Contains(svg, "shoal warm") {
		t.Errorf("plot lacks series names")
	}
	md := renderMarkdown(r, "")
	for _, want := range []string{"| warm `date`, 200 hosts |", "**met**", "not yet available"} {
		if !strings.Contains(md, want) {
			t.Errorf("BENCHMARKS.md lacks %q", want)
		}
	}
}
