package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// hostLine is one host's line of `run --json`.
type hostLine struct {
	Host     string `json:"host"`
	Status   string `json:"status"`
	ExitCode *int   `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	Error    string `json:"error"`
}

// runJSON runs `shoal run --json` with args and returns each host's line by host name.
func runJSON(t *testing.T, dir, stdin string, args ...string) (map[string]hostLine, string, int) {
	t.Helper()
	out, errOut, code := shoal(t, dir, stdin, args...)
	got := map[string]hostLine{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r hostLine
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v\nstderr:\n%s", sc.Text(), err, errOut)
		}
		if r.Host != "" {
			got[r.Host] = r
		}
	}
	return got, errOut, code
}

// TestFleetEnvironment checks --env, --env-file, [run] env, the SHOAL_ variables and --subst
// over real SSH, and that the values of --env-file are masked in the audit log.
func TestFleetEnvironment(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 3})
	dir := t.TempDir()
	cfg := fleetConfig(t, dir, f)
	conf, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf = []byte(strings.Replace(string(conf), "[ssh]", "[run]\nenv = { FROM_CONFIG = \"cfg\", B = \"config loses\" }\n\n[ssh]", 1))
	if err := os.WriteFile(cfg, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	secret := "s3cr3t-" + strings.Repeat("x", 8)
	envFile := filepath.Join(dir, "secrets.env")
	if err := os.WriteFile(envFile, []byte("# secrets\n\nexport TOKEN='"+secret+"'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--config", cfg, "--no-daemon", "run", "--json", "@fleet"}
	got, errOut, code := runJSON(t, dir, "", append(base, "--env", "A=1", "--env", "B=two words", "--env-file", envFile, "--",
		`echo "$A|$B|$FROM_CONFIG|$TOKEN|$SHOAL_HOST|$SHOAL_INDEX|$SHOAL_COUNT|${SHOAL_RUN_ID:+id}"`)...)
	if code != 0 {
		t.Fatalf("status %d\nstderr:\n%s", code, errOut)
	}
	for i, h := range f.Names() {
		want := "1|two words|cfg|" + secret + "|" + h + "|" + string(rune('0'+i)) + "|3|id\n"
		if got[h].Stdout != want {
			t.Errorf("%s: stdout %q; want %q", h, got[h].Stdout, want)
		}
	}
	audit, err := os.ReadFile(filepath.Join(dir, "state", "shoal", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(audit), secret) || !strings.Contains(string(audit), `"TOKEN=***"`) || !strings.Contains(string(audit), `"A=1"`) {
		t.Errorf("audit log shows the secret, or not the variables masked:\n%s", audit)
	}

	// --subst: %h and %i in the command text, %% a percent sign.
	got, errOut, code = runJSON(t, dir, "", append(base, "--subst", "--", "echo %h-%i-100%%")...)
	if code != 0 {
		t.Fatalf("--subst: status %d\nstderr:\n%s", code, errOut)
	}
	for i, h := range f.Names() {
		if want := h + "-" + string(rune('0'+i)) + "-100%\n"; got[h].Stdout != want {
			t.Errorf("--subst %s: stdout %q; want %q", h, got[h].Stdout, want)
		}
	}
	// Without --subst the text is left alone.
	got, _, _ = runJSON(t, dir, "", append(base, "--", "echo %h")...)
	if got["h001"].Stdout != "%h\n" {
		t.Errorf("without --subst: stdout %q; want %%h", got["h001"].Stdout)
	}

	// A bad --env is refused before anything runs.
	if _, errOut, code := shoal(t, dir, "", append(base, "--env", "1A=x", "--", "true")...); code == 0 || !strings.Contains(errOut, "not a variable name") {
		t.Errorf("--env 1A=x: status %d, stderr %q; want a refusal", code, errOut)
	}
}

// TestFleetStdinEOF checks that a command reading its standard input without -i gets end of
// file at once instead of waiting for input that never comes.
func TestFleetStdinEOF(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 2})
	dir := t.TempDir()
	cfg := fleetConfig(t, dir, f)
	start := time.Now()
	// The test's own stdin stays open (a pipe nobody writes to would hang cat if it leaked).
	got, errOut, code := runJSON(t, dir, "", "--config", cfg, "--no-daemon", "run", "--json", "--timeout", "60s", "@fleet", "--", "cat; echo eof")
	if code != 0 {
		t.Fatalf("status %d\nstderr:\n%s", code, errOut)
	}
	for _, h := range f.Names() {
		if got[h].Stdout != "eof\n" {
			t.Errorf("%s: stdout %q; want eof", h, got[h].Stdout)
		}
	}
	if d := time.Since(start); d > 50*time.Second {
		t.Errorf("cat took %s: it waited for input", d)
	}
	// With -i the command gets shoal's standard input.
	got, errOut, code = runJSON(t, dir, "given\n", "--config", cfg, "--no-daemon", "run", "--json", "-i", "@fleet", "--", "cat")
	if code != 0 || got["h001"].Stdout != "given\n" {
		t.Errorf("-i: status %d, stdout %q\nstderr:\n%s", code, got["h001"].Stdout, errOut)
	}
}

// TestFleetScriptAndLogin sends a local script to every host and runs it with its arguments
// (by its #! line, or with the shell), checks it is gone afterwards and its hash is in the
// audit log; and --login reads the profile where the default does not.
func TestFleetScriptAndLogin(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 2})
	dir := t.TempDir()
	cfg := fleetConfig(t, dir, f)
	script := filepath.Join(dir, "fix.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$SHOAL_HOST $# [$1] [$2] $(pwd)\"\nls \"$0\" >/dev/null && echo there\n"), 0o644)
	base := []string{"--config", cfg, "--no-daemon", "run", "--json"}
	got, errOut, code := runJSON(t, dir, "", append(base, "@fleet", "--script", script, "--", "a b", "c")...)
	if code != 0 {
		t.Fatalf("--script: status %d\nstderr:\n%s", code, errOut)
	}
	for _, h := range f.Hosts {
		if want := h.Name + " 2 [a b] [c] " + h.Home + "\nthere\n"; got[h.Name].Stdout != want {
			t.Errorf("--script %s: stdout %q; want %q", h.Name, got[h.Name].Stdout, want)
		}
	}
	// No #! line: bash (or sh) runs it. And the script file is gone once it ended.
	noShebang := filepath.Join(dir, "plain")
	os.WriteFile(noShebang, []byte("echo \"plain $1\"; echo \"$0\"\n"), 0o600)
	got, errOut, code = runJSON(t, dir, "", append(base, "--script", noShebang, "h001", "--", "x")...)
	out := strings.SplitN(got["h001"].Stdout, "\n", 2)
	if code != 0 || out[0] != "plain x" {
		t.Fatalf("--script without #!: status %d, %+v\nstderr:\n%s", code, got["h001"], errOut)
	}
	if path := strings.TrimSpace(out[1]); path == "" {
		t.Errorf("no script path printed")
	} else if _, err := os.Stat(path); err == nil {
		t.Errorf("the script %s is still on the host", path)
	}
	audit, _ := os.ReadFile(filepath.Join(dir, "state", "shoal", "audit.log"))
	if !strings.Contains(string(audit), `"script":"fix.sh","script_sha256":"`) {
		t.Errorf("the audit log does not name the script and its hash:\n%s", audit)
	}

	// --login: the login profile runs first; without it, it does not.
	home := f.Hosts[0].Home
	profile := filepath.Join(home, ".profile")
	old, hadProfile := os.ReadFile(profile)
	t.Cleanup(func() {
		if hadProfile == nil {
			os.WriteFile(profile, old, 0o644)
		} else {
			os.Remove(profile)
		}
	})
	os.WriteFile(profile, []byte("export FROM_PROFILE=yes\nPATH=\"$PATH:/opt/shoal-test-bin\"\n"), 0o644)
	got, _, _ = runJSON(t, dir, "", append(base, "--login", "h001", "--", `echo "$FROM_PROFILE:$PATH"`)...)
	if s := got["h001"].Stdout; !strings.HasPrefix(s, "yes:") || !strings.Contains(s, "/opt/shoal-test-bin") {
		t.Errorf("--login: stdout %q; want the profile's variables", s)
	}
	got, _, _ = runJSON(t, dir, "", append(base, "h001", "--", `echo "$FROM_PROFILE:$PATH"`)...)
	if s := got["h001"].Stdout; strings.HasPrefix(s, "yes:") {
		t.Errorf("without --login: stdout %q; the profile ran", s)
	}
}

// TestFleetPTY gives the command a terminal over real SSH: tty names /dev/pts/N, the size and
// TERM are passed, stderr arrives with stdout, and a command reading the terminal gets
// end-of-file instead of waiting.
func TestFleetPTY(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 2})
	dir := t.TempDir()
	cfg := fleetConfig(t, dir, f)
	base := []string{"--config", cfg, "--no-daemon", "run", "--json", "--timeout", "60s"}
	got, errOut, code := shoalWith(t, dir, []string{"TERM=vt220"}, append(base, "--pty", "@fleet", "--",
		`tty; echo "$TERM"; stty size; echo oops >&2; cat; echo eof`)...)
	if code != 0 {
		t.Fatalf("--pty: status %d\nstderr:\n%s", code, errOut)
	}
	for _, h := range f.Names() {
		lines := strings.Split(strings.ReplaceAll(got[h].Stdout, "\r\n", "\n"), "\n")
		if len(lines) < 5 || !strings.HasPrefix(lines[0], "/dev/pts/") || lines[1] != "vt220" || lines[2] != "24 80" ||
			lines[3] != "oops" || !strings.Contains(got[h].Stdout, "eof") || got[h].Stderr != "" {
			t.Errorf("--pty %s: %+v; want /dev/pts/N, vt220, 24 80, oops, eof on stdout alone", h, got[h])
		}
	}
	// In a terminal, the size is the terminal's (tmux's pane: 120×40).
	tm := newTerm(t, dir, "TERM=vt100 "+shoaltest.Binary(t)+" --config "+cfg+" --no-daemon run --pty -o stream h001 -- 'stty size; echo $TERM'")
	tm.waitCount("EXITED 0", 1)
	if s := tm.screen(); !strings.Contains(s, "40 120") || !strings.Contains(s, "| vt100") {
		t.Errorf("--pty in a 120×40 terminal:\n%s", s)
	}
	// Without --pty there is no terminal.
	got, _, _ = runJSON(t, dir, "", append(base, "h001", "--", "tty")...)
	if !strings.Contains(got["h001"].Stdout, "not a tty") {
		t.Errorf("without --pty: tty says %q", got["h001"].Stdout)
	}
}
