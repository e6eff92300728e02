package daemon

import (
	"testing"

	"github.com/shoal-sh/shoal/internal/proto"
)

func TestPlacement(t *testing.T) {
	hosts := []string{"web10", "web2", "db1"}
	p := placeRun(&proto.RunRequest{Hosts: hosts}, hosts, 42)
	for h, want := range map[string]int{"db1": 0, "web2": 1, "web10": 2} {
		if got := p.index[h]; got != want {
			t.Errorf("index of %s: got %d; want %d", h, got, want)
		}
	}
	env := p.env(map[string]string{"A": "1", "SHOAL_HOST": "mine"}, "web2")
	for k, want := range map[string]string{"A": "1", envHost: "web2", envIndex: "1", envCount: "3", envRunID: "42"} {
		if env[k] != want {
			t.Errorf("%s: got %q; want %q", k, env[k], want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"echo %h %i", "echo web2 1"},
		{"100%% %x %", "100% %x %"},
		{"plain", "plain"},
	} {
		if got := p.substitute(tt.in, "web2"); got != tt.want {
			t.Errorf("substitute(%q): got %q; want %q", tt.in, got, tt.want)
		}
	}
	// A forwarded run keeps the places the first daemon gave.
	var fwd proto.RunRequest
	p.forward(&fwd, []string{"web10"})
	fwd.Hosts = []string{"web10"}
	q := placeRun(&fwd, fwd.Hosts, 7)
	if q.index["web10"] != 2 || q.count != 3 || q.runID != 42 {
		t.Errorf("forwarded placement: got %+v; want index 2, count 3, run 42", q)
	}
}

func TestEnvAttr(t *testing.T) {
	a := envAttr(map[string]string{"B": "2", "TOKEN": "secret"}, []string{"TOKEN"})
	if got, want := a.Value.String(), "[B=2 TOKEN=***]"; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
}
