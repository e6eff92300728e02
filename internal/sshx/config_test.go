package sshx

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testConfig = `
Host web*
  User deploy
  Port 2222
  IdentityFile ~/.ssh/web_%r_%h
  IdentityFile %d/.ssh/second
Host web1
  HostName %h.example.com
  ProxyJump jump1,admin@jump2:2200
  ConnectTimeout 7
  ServerAliveInterval 15
  StrictHostKeyChecking accept-new
  UserKnownHostsFile ~/kh1 /tmp/kh2
  IdentitiesOnly yes
Host strict
  StrictHostKeyChecking yes
  HostName 10.1.2.3
  ProxyJump none
Host *.lan
  Port 2200
  User lan
Host *
  User fallback
  ServerAliveCountMax 5
  HashKnownHosts yes
`

// sshG runs `ssh -G` and returns its settings, keys lowercased, repeated keys joined by "\n".
func sshG(t *testing.T, file, alias string) map[string]string {
	t.Helper()
	out, err := exec.Command("ssh", "-G", "-F", file, alias).Output()
	if err != nil {
		t.Fatalf("ssh -G %s: %v", alias, err)
	}
	m := map[string]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		k = strings.ToLower(k)
		if old, ok := m[k]; ok {
			v = old + "\n" + v
		}
		m[k] = v
	}
	return m
}

// TestResolveMatchesSSHG checks our ssh_config resolution against OpenSSH's own.
func TestResolveMatchesSSHG(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh binary to compare with")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(file, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Dialer{ConfigFile: file, Home: u.HomeDir, User: u.Username}
	for _, alias := range []string{"web1", "web2", "strict", "box.lan", "other"} {
		t.Run(alias, func(t *testing.T) {
			g := sshG(t, file, alias)
			h, err := d.Resolve(alias, Override{})
			if err != nil {
				t.Fatal(err)
			}
			check := func(key, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s: got %q; want %q (ssh -G)", key, got, want)
				}
			}
			check("hostname", h.HostName, g["hostname"])
			check("user", h.User, g["user"])
			check("port", strconv.Itoa(h.Port), g["port"])
			var ids []string
			for id := range strings.SplitSeq(g["identityfile"], "\n") {
				id = strings.ReplaceAll(id, "%d", u.HomeDir)
				id = strings.ReplaceAll(id, "%r", g["user"])
				id = strings.ReplaceAll(id, "%h", g["hostname"])
				if strings.HasPrefix(id, "~/") {
					id = filepath.Join(u.HomeDir, id[2:])
				}
				ids = append(ids, id)
			}
			check("identityfile", strings.Join(h.IdentityFiles, "\n"), strings.Join(ids, "\n"))
			check("identitiesonly", map[bool]string{true: "yes", false: "no"}[h.IdentitiesOnly], g["identitiesonly"])
			pj := strings.Join(h.ProxyJump, ",")
			if pj == "" {
				pj = g["proxyjump"] // absent from ssh -G output when none
			}
			check("proxyjump", pj, g["proxyjump"])
			ct := "none"
			if h.ConnectTimeout > 0 {
				ct = strconv.Itoa(int(h.ConnectTimeout / time.Second))
			}
			check("connecttimeout", ct, g["connecttimeout"])
			check("userknownhostsfile", strings.Join(h.UserKnownHostsFiles, " "), g["userknownhostsfile"])
			check("stricthostkeychecking", h.StrictHostKeyChecking, map[string]string{"true": "yes", "false": "accept-new"}[g["stricthostkeychecking"]]+
				map[bool]string{true: g["stricthostkeychecking"]}[!slices.Contains([]string{"true", "false"}, g["stricthostkeychecking"])])
			check("serveraliveinterval", strconv.Itoa(int(h.ServerAliveInterval/time.Second)), g["serveraliveinterval"])
			check("serveralivecountmax", strconv.Itoa(h.ServerAliveCountMax), g["serveralivecountmax"])
			check("hashknownhosts", map[bool]string{true: "yes", false: "no"}[h.HashKnownHosts], g["hashknownhosts"])
		})
	}
}

func TestOverride(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config")
	os.WriteFile(file, []byte(testConfig), 0o600)
	d := &Dialer{ConfigFile: file, Home: "/home/x", User: "x"}
	h, err := d.Resolve("web1", Override{HostName: "10.0.0.9", Port: 99, User: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if h.HostName != "10.0.0.9" || h.Port != 99 || h.User != "root" || h.Addr() != "10.0.0.9:99" {
		t.Errorf("got %+v", h)
	}
}

func TestSystemConfigWarning(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Host a\n  Port 2\n"), 0o600)
	system := filepath.Join(t.TempDir(), "ssh_config")
	// Fedora ships "Match final all", which shoal reads as ssh does.
	os.WriteFile(system, []byte("Match final all\n  User fedora\n"), 0o600)
	var warnings []string
	d := &Dialer{Home: home, User: "u", SystemConfig: system, Warn: func(s string) { warnings = append(warnings, s) }}
	h, err := d.Resolve("a", Override{})
	if err != nil || h.Port != 2 || h.User != "fedora" || len(warnings) != 0 {
		t.Fatalf("got %+v, %v, warnings %q; want port 2 from the user's file and user fedora from the system's", h, err, warnings)
	}
	// A system file ssh would reject is skipped whole, with one warning naming it.
	os.WriteFile(system, []byte("Host *\n  User sys\n  NoSuchOption yes\n"), 0o600)
	for range 2 {
		h, err = d.Resolve("a", Override{})
		if err != nil {
			t.Fatalf("a broken system config must not fail: %v", err)
		}
	}
	if h.Port != 2 || h.User != "u" || len(warnings) != 1 || !strings.Contains(warnings[0], system) || !strings.Contains(warnings[0], "line 3") {
		t.Errorf("got port %d user %s, warnings %q; want the user file alone and one warning naming %s line 3", h.Port, h.User, warnings, system)
	}
	// The same line in the user's own file is an error.
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("NoSuchOption yes\n"), 0o600)
	if _, err := d.Resolve("a", Override{}); err == nil {
		t.Errorf("a broken user config was accepted")
	}
}

func TestParseHop(t *testing.T) {
	for _, tc := range []struct {
		in         string
		user, host string
		port       int
		bad        bool
	}{
		{in: "jump", host: "jump"},
		{in: "a@jump:2200", user: "a", host: "jump", port: 2200},
		{in: "ssh://a@jump:22", user: "a", host: "jump", port: 22},
		{in: "[::1]:2222", host: "::1", port: 2222},
		{in: "::1", host: "::1"},
		{in: "a@", bad: true},
		{in: "h:x", bad: true},
	} {
		u, h, p, err := parseHop(tc.in)
		if (err != nil) != tc.bad || u != tc.user || h != tc.host || p != tc.port {
			t.Errorf("parseHop(%q) = %q %q %d %v; want %q %q %d bad=%v", tc.in, u, h, p, err, tc.user, tc.host, tc.port, tc.bad)
		}
	}
}

func TestJumpHostsRecursive(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config")
	os.WriteFile(file, []byte(`
Host target
  ProxyJump a,b
Host a
  ProxyJump bastion
Host b
  ProxyJump ignored
Host loop
  ProxyJump loop
`), 0o600)
	d := &Dialer{ConfigFile: file, Home: "/h", User: "u"}
	h, _ := d.Resolve("target", Override{})
	hops, err := d.jumpHosts(h, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, hc := range hops {
		names = append(names, hc.Alias)
	}
	if got := strings.Join(names, ","); got != "bastion,a,b" {
		t.Errorf("hops %s; want bastion,a,b", got)
	}
	// ssh refuses a host that jumps through itself when resolving it ("jumphost loop").
	h, err = d.Resolve("loop", Override{})
	if err == nil {
		_, err = d.jumpHosts(h, 0)
	}
	if err == nil {
		t.Errorf("a ProxyJump loop was accepted")
	}
}
