package shoaltest

import (
	"os/exec"
	"strings"
	"testing"
)

func TestFleetSSH(t *testing.T) {
	f := StartFleet(t, FleetOptions{N: 3})
	for _, h := range f.Hosts {
		out, err := exec.Command("ssh", "-F", f.SSHConfig, h.Name, "echo $HOME; id -un").CombinedOutput()
		if err != nil {
			t.Fatalf("ssh %s: %v: %s", h.Name, err, out)
		}
		want := h.Home + "\n" + h.User + "\n"
		if string(out) != want {
			t.Errorf("ssh %s: got %q; want %q", h.Name, out, want)
		}
	}
	h := f.Hosts[0]
	h.Stop()
	out, err := exec.Command("ssh", "-F", f.SSHConfig, h.Name, "true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refused") {
		t.Errorf("ssh to stopped host: got %v %s; want connection refused", err, out)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh", "-F", f.SSHConfig, h.Name, "true").CombinedOutput(); err != nil {
		t.Errorf("ssh after restart: %v: %s", err, out)
	}
}

func TestFleetSharedHome(t *testing.T) {
	f := StartFleet(t, FleetOptions{N: 2, SharedHome: true})
	if f.Hosts[0].Home != f.Hosts[1].Home || f.Hosts[0].User != f.Hosts[1].User {
		t.Fatalf("shared home fleet: %+v %+v", f.Hosts[0], f.Hosts[1])
	}
	out, err := exec.Command("ssh", "-F", f.SSHConfig, "h002", "echo $HOME").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != f.Hosts[0].Home {
		t.Fatalf("ssh h002: %v %q", err, out)
	}
}
