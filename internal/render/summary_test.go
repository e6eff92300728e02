package render

import (
	"bytes"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

func TestSummaryGolden(t *testing.T) {
	allOK := results(hosts("web", 1, 20), "x\n")
	mixed := append(results(hosts("web", 1, 16), "x\n"),
		proto.HostResult{Host: "web17", Status: proto.StatusFailed, ExitCode: 2},
		proto.HostResult{Host: "web18", Status: proto.StatusFailed, ExitCode: 1},
		proto.HostResult{Host: "web19", Status: proto.StatusFailed, ExitCode: 1},
		proto.HostResult{Host: "web20", Status: proto.StatusFailed, Signal: "SEGV"},
		proto.HostResult{Host: "db1", Status: proto.StatusTimeout},
		proto.HostResult{Host: "db2", Status: proto.StatusCancelled},
		proto.HostResult{Host: "db3", Status: proto.StatusUnreachable},
		proto.HostResult{Host: "db4", Status: proto.StatusUnreachable},
		proto.HostResult{Host: "db5", Status: proto.StatusRefused},
		proto.HostResult{Host: "db6", Status: proto.StatusError},
		proto.HostResult{Host: "db7", Status: "weird"},
	)
	tests := []struct {
		name    string
		results []proto.HostResult
		wall    time.Duration
		opt     Options
	}{
		{"summary_all_ok", allOK, 1234 * time.Millisecond, Options{}},
		{"summary_one_host", results([]string{"h"}, ""), 312 * time.Millisecond, Options{}},
		{"summary_mixed", mixed, 83 * time.Second, Options{}},
		{"summary_mixed_color", mixed, 83 * time.Second, Options{Color: true}},
		{"summary_none", nil, 0, Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			s := Summarize(tt.results, tt.wall)
			if err := WriteSummary(&b, s, tt.opt); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, b.Bytes())
		})
	}
	if !Summarize(allOK, 0).OK() || Summarize(mixed, 0).OK() {
		t.Errorf("OK() wrong")
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.00ms"},
		{450 * time.Microsecond, "0.45ms"},
		{312 * time.Millisecond, "312ms"},
		{1234 * time.Millisecond, "1.23s"},
		{83 * time.Second, "1m23s"},
		{3723 * time.Second, "1h02m"},
		{-2 * time.Second, "-2.00s"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q; want %q", tt.d, got, tt.want)
		}
	}
}
