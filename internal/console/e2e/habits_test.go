package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// TestFleetHomeDir checks over real SSH that commands start in the remote user's home, as with
// ssh, pdsh and clush; that the agent's bookkeeping is not there; that --dir chooses another
// directory; and that put, get and run agree on what a relative path means.
func TestFleetHomeDir(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 2})
	dir := t.TempDir()
	cfg := fleetConfig(t, dir, f)
	base := []string{"--config", cfg, "--no-daemon"}
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return shoal(t, dir, "", append(base, args...)...)
	}

	out, errOut, code := run("run", "h001", "--", "pwd; ls -A")
	if code != 0 || !strings.Contains(out, f.Hosts[0].Home+"\n") {
		t.Errorf("pwd: status %d; want the home %s\nstdout:\n%s\nstderr:\n%s", code, f.Hosts[0].Home, out, errOut)
	}
	for _, own := range []string{"request\n", "status\n", "out\n"} {
		if strings.Contains(out, own) {
			t.Errorf("ls in the starting directory shows shoal's %q:\n%s", own, out)
		}
	}

	conf := filepath.Join(dir, "app.conf")
	os.WriteFile(conf, []byte("setting=1\n"), 0o640)
	if out, errOut, code := run("put", "@fleet", conf, "app.conf"); code != 0 {
		t.Fatalf("put: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut, code = run("run", "@fleet", "--", "cat app.conf")
	if code != 0 || !strings.Contains(out, "h[001-002] (2)\n") || !strings.Contains(out, "setting=1") {
		t.Errorf("cat of the file put with a relative path: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// --dir: relative to home; put and get take relative paths from it too.
	if out, errOut, code := run("run", "@fleet", "--", "mkdir -p work/sub"); code != 0 {
		t.Fatalf("mkdir: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut, code = run("--dir", "work", "run", "h002", "--", "pwd")
	if code != 0 || !strings.Contains(out, filepath.Join(f.Hosts[1].Home, "work")+"\n") {
		t.Errorf("--dir work: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if out, errOut, code := run("--dir", "work", "put", "@fleet", conf, "sub/here.conf"); code != 0 {
		t.Fatalf("put --dir: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut, code = run("run", "@fleet", "--dir", "work/sub", "--", "cat here.conf")
	if code != 0 || !strings.Contains(out, "setting=1") {
		t.Errorf("cat in --dir of the file put there: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	gets := filepath.Join(dir, "gets")
	if out, errOut, code := run("--dir", "work/sub", "get", "h001", "here.conf", gets); code != 0 {
		t.Errorf("get --dir: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	} else if b, err := os.ReadFile(filepath.Join(gets, "h001", "here.conf")); err != nil || string(b) != "setting=1\n" {
		t.Errorf("got %q, %v; want the file put", b, err)
	}
	out, errOut, code = run("--dir", "/nonexistent", "run", "h001", "--", "true")
	if code != 255 || !strings.Contains(out, "working directory /nonexistent: no such file or directory") {
		t.Errorf("--dir /nonexistent: status %d; want 255 and the reason\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestDemoKeepsToItself checks that the demo's hosts each have a home of their own under the
// demo's directory (so :put with a relative path stays there), that a name outside the demo is
// refused rather than looked up, and that :cd changes where commands start.
func TestDemoKeepsToItself(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "f.txt")
	os.WriteFile(src, []byte("demo-file\n"), 0o600)
	in := ":put " + src + " f.txt\n" +
		`case $PWD in "$TMPDIR"/shoal-demo-*/homes/node*) echo home-ok;; *) echo "home $PWD";; esac` + "\n" +
		"cat f.txt\n" +
		"mkdir -p sub\n:cd sub\npwd\n:status\n:cd\npwd\n" +
		":get f.txt\n!cat $TMPDIR/shoal-demo-*/got/node1/f.txt\n" +
		":target nosuchhost\n"
	out, errOut, code := shoal(t, dir, in, "demo", "2")
	for _, want := range []string{
		"ok node[1-2] (2): put 10 B → f.txt\n",
		"home-ok\n",
		"demo-file\n",
		"dir: sub\n",
		"/homes/node1/sub\n",
		"dir: ~ (home)\n",
		"ok node[1-2] (2): get 10 B → ",
		"\ndemo-file\n",
		"nosuchhost: not a host of the demo, whose hosts are node[1-2]",
	} {
		if !strings.Contains(out+errOut, want) {
			t.Errorf("demo output lacks %q (status %d)\nstdout:\n%s\nstderr:\n%s", want, code, out, errOut)
		}
	}
	if n := strings.Count(out+errOut, "dir: sub\n"); n != 2 {
		t.Errorf("\"dir: sub\" %d times; want it from :cd and from :status", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "home", "f.txt")); err == nil {
		t.Errorf(":put f.txt in the demo wrote the real home's f.txt")
	}
	if _, err := os.Stat("node1"); err == nil {
		os.RemoveAll("node1")
		os.RemoveAll("node2")
		t.Errorf(":get in the demo wrote into the directory it was started from")
	}
	noDemoDirs(t, dir)
}

// TestDemoNoControllingTerminal runs the demo in a terminal: its hosts' commands have no
// controlling terminal, as over SSH, so they cannot paint over the console; the prompt shows
// the directory :cd chose.
func TestDemoNoControllingTerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tm := newTerm(t, dir, shoaltest.Binary(t)+" demo 2")
	tm.waitPrompt()
	tm.typeLine("echo painted > /dev/tty || echo no-tty-$((6*7))")
	tm.waitCount("no-tty-42", 1)
	tm.waitPrompt()
	if s := tm.screen(); strings.Contains(s, "\npainted") {
		t.Errorf("a host's command wrote to the console's terminal:\n%s", s)
	}
	tm.typeLine(":cd /tmp")
	tm.waitCount("shoal node[1-2] (2) /tmp>", 1)
	tm.waitPrompt()
	tm.typeLine(":quit")
	tm.waitCount("EXITED 0", 1)
	noDemoDirs(t, dir)
}

// TestVersionAndTypos checks shoal version and --version, and that a mistyped command is an
// error with a suggestion, not a console on a host of that name.
func TestVersionAndTypos(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, errOut, code := shoal(t, dir, "", args...)
		if code != 0 || !strings.HasPrefix(out, "shoal ") || !strings.Contains(out, "\ncommit: ") ||
			!strings.Contains(out, "\ngo: go1.") || !strings.Contains(out, "\nagent: embedded, ") {
			t.Errorf("shoal %v: status %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
		}
	}
	sshConfig := filepath.Join(dir, "ssh_config")
	os.WriteFile(sshConfig, []byte("Host mybox\n  HostName 127.0.0.1\n  Port 1\nHost *.lab\n  Port 1\n"), 0o600)
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"verison"}, 1, `shoal: unknown command "verison"; did you mean version? To target a host of that name: shoal -- verison` + "\n"},
		{[]string{"rnu", "x"}, 1, `unknown command "rnu"; did you mean run? To target a host of that name: shoal -- rnu x`},
		{[]string{"frobnicate"}, 1, `unknown command "frobnicate" (shoal help lists the commands). To target a host of that name: shoal -- frobnicate`},
		// Names the configuration or ssh_config knows, anything that is no word, and anything
		// after -- open the console (here on empty input, which runs nothing).
		{[]string{"n1"}, 0, ""},
		{[]string{"-F", sshConfig, "mybox"}, 0, ""},
		{[]string{"n[1-2]"}, 0, ""},
		{[]string{"--", "verison"}, 0, ""},
	}
	for _, tt := range tests {
		out, errOut, code := shoal(t, dir, "", append([]string{"--config", cfg}, tt.args...)...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) || (tt.code != 0 && out != "") {
			t.Errorf("shoal %v: status %d; want %d and %q\nstdout:\n%s\nstderr:\n%s", tt.args, code, tt.code, tt.msg, out, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "run", "shoal")); err == nil {
		t.Errorf("a refused command started a daemon")
	}
}

// TestJoinedArguments checks that several target arguments are one expression, as in the
// console, and the README's first example.
func TestJoinedArguments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	tests := []struct {
		args []string
		out  string
	}{
		{[]string{"hosts", "h[001-003]", "!h002"}, "h001\nh003\n"},
		{[]string{"hosts", "--fold", "web[01-20]!web07"}, "web[01-06,08-20]\n"},
		{[]string{"hosts", "web[01-20]!web07", "--fold"}, "web[01-06,08-20]\n"},
		{[]string{"hosts", "--fold", "n[1-3]", "&", "@two", "!n1"}, "n2\n"},
		{[]string{"--no-daemon", "ping", "n[1-3]", "!n2", "-o", "json"}, `"host":"n3"`},
	}
	for _, tt := range tests {
		out, errOut, code := shoal(t, dir, "", append([]string{"--config", cfg}, tt.args...)...)
		if code != 0 || !strings.Contains(out, tt.out) || strings.Contains(out, `"host":"n2"`) {
			t.Errorf("shoal %v: status %d; want %q\nstdout:\n%s\nstderr:\n%s", tt.args, code, tt.out, out, errOut)
		}
	}
}

// TestKillGrace checks that a stopped command gets SIGTERM first, so its cleanup trap runs,
// and SIGKILL [run] kill_grace later when it ignores SIGTERM; with kill_grace = "0s" it gets
// SIGKILL at once.
func TestKillGrace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	conf, _ := os.ReadFile(cfg)
	noGrace := filepath.Join(dir, "nograce.toml")
	os.WriteFile(noGrace, append(conf, "\n[run]\nkill_grace = \"0s\"\n"...), 0o600)
	shortGrace := filepath.Join(dir, "short.toml")
	os.WriteFile(shortGrace, append(conf, "\n[run]\nkill_grace = \"1s\"\n"...), 0o600)
	home := filepath.Join(dir, "home")

	trap := `trap 'echo cleaned > ~/cleaned-$1; exit 3' TERM; sleep 100 & wait`
	out, errOut, code := shoal(t, dir, "", "--config", cfg, "--no-daemon", "run", "--timeout", "1s", "n1", "--", "bash", "-c", strconvQuote(trap), "x", "grace")
	if code != 255 || !strings.Contains(out, "timeout") {
		t.Errorf("timed out with the default grace: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(home, "cleaned-grace")); err != nil || string(b) != "cleaned\n" {
		t.Errorf("the TERM trap did not run within the default kill grace: %q, %v", b, err)
	}
	out, errOut, code = shoal(t, dir, "", "--config", noGrace, "--no-daemon", "run", "--timeout", "1s", "n1", "--", "bash", "-c", strconvQuote(trap), "x", "nograce")
	if code != 255 {
		t.Errorf("timed out with no grace: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(home, "cleaned-nograce")); err == nil {
		t.Errorf("kill_grace = 0s: the TERM trap ran; want SIGKILL at once")
	}
	// A command that ignores SIGTERM is killed once the grace is over.
	start := time.Now()
	out, errOut, code = shoal(t, dir, "", "--config", shortGrace, "--no-daemon", "run", "--timeout", "1s", "n1", "--", "trap '' TERM; sleep 100")
	if code != 255 || !strings.Contains(out, "timeout") || time.Since(start) > 60*time.Second {
		t.Errorf("a command ignoring TERM: status %d after %v\nstdout:\n%s\nstderr:\n%s", code, time.Since(start), out, errOut)
	}
}

// strconvQuote quotes s for bash -c.
func strconvQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestSecondInterruptKillsAtOnce presses Ctrl-C twice in the console during a command that
// ignores SIGTERM, with a kill grace far longer than the test: the second Ctrl-C kills it.
func TestSecondInterruptKillsAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	conf, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(conf, "\n[run]\nkill_grace = \"10m\"\n"...), 0o600)
	tm := newTerm(t, dir, shoaltest.Binary(t)+" --config "+cfg+" --no-daemon -o stream n1")
	tm.waitPrompt()
	tm.typeLine("trap '' TERM; echo pid=$$; exec sleep 1000")
	s := tm.waitFor("the pid", func(s string) bool { return regexp.MustCompile(`\| pid=\d+`).MatchString(s) })
	pid, _ := strconv.Atoi(regexp.MustCompile(`\| pid=(\d+)`).FindStringSubmatch(s)[1])
	tm.keys("C-c")
	tm.waitFor("the cancel shown", func(s string) bool { return strings.Contains(s, "cancelling") })
	time.Sleep(500 * time.Millisecond)
	if !alive(pid) {
		t.Fatalf("sleep %d ignoring TERM is gone after one Ctrl-C; want it to have its grace", pid)
	}
	tm.keys("C-c")
	tm.waitPrompt()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("sleep %d still runs after a second Ctrl-C", pid)
	}
	tm.typeLine(":quit")
	tm.waitCount("EXITED", 1)
}

// TestFleetClushFlags checks over real SSH the flags clush and pdsh users type: -l USER, -o
// SSH_OPTION (ahead of ssh_config, as ssh -o), -x and -X to leave hosts out, -f for the fan-out,
// and -N for stream output without the host column.
func TestFleetClushFlags(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 2})
	dir := t.TempDir()
	cfg := fleetConfig(t, dir, f)
	// A configuration whose [ssh] user no host knows: -l overrides it, as ssh -l does.
	conf, _ := os.ReadFile(cfg)
	wrongUser := filepath.Join(dir, "wrong-user.toml")
	os.WriteFile(wrongUser, []byte(strings.Replace(string(conf), "[ssh]\n", "[ssh]\nuser = \"nosuchuser\"\n", 1)), 0o600)
	tests := []struct {
		args []string
		code int
		want []string
		not  []string
	}{
		{[]string{"--config", wrongUser, "run", "h001", "--", "id -un"}, 255, []string{"h001 (1) · unreachable"}, nil},
		{[]string{"--config", wrongUser, "run", "-l", f.Hosts[0].User, "h001", "--", "id -un"}, 0, []string{"h001 (1)\n", f.Hosts[0].User + "\n"}, nil},
		{[]string{"run", "-o", "Port=1", "h001", "--", "true"}, 255, []string{"h001 (1) · unreachable", "refused"}, nil},
		{[]string{"run", "-o", "stream", "-N", "-o", "ConnectTimeout=7", "@fleet", "--", "echo plain-$((6*7))"}, 0, []string{"plain-42\nplain-42\n"}, []string{"| plain"}},
		{[]string{"run", "-x", "h001", "@fleet", "--", "echo x"}, 0, []string{"h002 (1)\n"}, []string{"h001"}},
		{[]string{"run", "@fleet,dead", "-X", "fleet", "--", "true"}, 255, []string{"dead (1) · unreachable"}, []string{"h00"}},
		{[]string{"run", "-f", "1", "@fleet", "--", "true"}, 0, []string{"h[001-002] (2)\n"}, nil},
		{[]string{"ping", "-x", "h002", "@fleet"}, 0, []string{"ok h001 (1)"}, []string{"h002"}},
	}
	for _, tt := range tests {
		out, errOut, code := shoal(t, dir, "", append([]string{"--config", cfg, "--no-daemon"}, tt.args...)...)
		bad := code != tt.code
		for _, w := range tt.want {
			bad = bad || !strings.Contains(out, w)
		}
		for _, n := range tt.not {
			bad = bad || strings.Contains(out, n)
		}
		if bad {
			t.Errorf("shoal %q: status %d; want %d, %q and none of %q\nstdout:\n%s\nstderr:\n%s", tt.args, code, tt.code, tt.want, tt.not, out, errOut)
		}
	}
	// Through the resident daemon, which learns -l and the options' ssh_config in the client's
	// hello: the same answers, and sessions of their own.
	daemonCfg := filepath.Join(dir, "daemon.toml")
	os.WriteFile(daemonCfg, []byte(strings.Replace(string(conf), "use = false", "use = true", 1)), 0o600)
	daemonWrongUser := filepath.Join(dir, "daemon-wrong-user.toml")
	os.WriteFile(daemonWrongUser, []byte(strings.Replace(strings.Replace(string(conf), "use = false", "use = true", 1), "[ssh]\n", "[ssh]\nuser = \"nosuchuser\"\n", 1)), 0o600)
	t.Cleanup(func() {
		shoal(t, dir, "", "--config", daemonCfg, "daemon", "stop")
		stopMarked(filepath.Join(dir, "run"))
	})
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--config", daemonWrongUser, "run", "-l", f.Hosts[0].User, "h001", "--", "id -un"}, 0, f.Hosts[0].User + "\n"},
		{[]string{"--config", daemonCfg, "run", "-o", "Port=1", "h001", "--", "true"}, 255, "refused"},
		{[]string{"--config", daemonCfg, "run", "h001", "--", "echo plain"}, 0, "plain\n"},
	} {
		out, errOut, code := shoal(t, dir, "", tt.args...)
		if code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("through the daemon: shoal %q: status %d; want %d and %q\nstdout:\n%s\nstderr:\n%s", tt.args, code, tt.code, tt.want, out, errOut)
		}
	}
}

// TestJSONKeysAndErrors checks that every key docs/console.md lists for the --json objects of
// ping, info, time, put and get is present, for a host that answered and for one that could not
// be reached, and that error does not repeat the host.
func TestJSONKeysAndErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	doc, err := os.ReadFile("../../../docs/console.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| ([a-z, ]+) \\| (`host`.*) \\|$").FindAllStringSubmatch(string(doc), -1) {
		var keys []string
		for _, k := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(m[2], -1) {
			keys = append(keys, k[1])
		}
		for _, cmd := range strings.Split(m[1], ", ") {
			documented[cmd] = keys
		}
	}
	src := filepath.Join(dir, "f")
	os.WriteFile(src, []byte("x"), 0o600)
	runs := map[string][]string{
		"ping": {"ping", "n1,dead"},
		"info": {"info", "n1,dead"},
		"time": {"time", "n1,dead"},
		"put":  {"put", "n1,dead", src, "f-put"},
		"get":  {"get", "n1,dead", "no-such-file", filepath.Join(dir, "got")},
	}
	for cmd, args := range runs {
		keys := documented[cmd]
		if len(keys) < 4 {
			t.Errorf("docs/console.md lists %q for %s; want its --json keys", keys, cmd)
			continue
		}
		out, errOut, _ := shoal(t, dir, "", append([]string{"--config", cfg, "--no-daemon", "--json"}, args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Errorf("%s --json: %d lines; want 2\nstdout:\n%s\nstderr:\n%s", cmd, len(lines), out, errOut)
			continue
		}
		for _, line := range lines {
			var obj map[string]any
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Fatalf("%s --json: %q: %v", cmd, line, err)
			}
			for _, k := range keys {
				if _, ok := obj[k]; !ok {
					t.Errorf("%s --json: no %q in %s", cmd, k, line)
				}
			}
			host, _ := obj["host"].(string)
			if e, _ := obj["error"].(string); e != "" && strings.Contains(e, host) {
				t.Errorf("%s --json: error %q repeats the host %s", cmd, e, host)
			}
		}
	}
}

// TestNumbersValidated checks that flags and configuration keys that take numbers and durations
// refuse what no command can use, naming the flag or key, and that config check reports every
// problem of a file in one pass.
func TestNumbersValidated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"run", "--fanout", "-1", "n1", "--", "true"}, "reading --fanout -1: want a number of hosts"},
		{[]string{"run", "-f", "-2", "n1", "--", "true"}, "reading --fanout -2"},
		{[]string{"--timeout", "-5s", "run", "n1", "--", "true"}, "reading --timeout -5s: want a duration"},
		{[]string{"--connect-timeout", "-1s", "ping", "n1"}, "reading --connect-timeout -1s"},
		{[]string{"--fanout", "-1", "n1"}, "reading --fanout -1"},
	} {
		out, errOut, code := shoal(t, dir, "", append([]string{"--config", cfg, "--no-daemon"}, tt.args...)...)
		if code != 1 || !strings.Contains(errOut, tt.msg) {
			t.Errorf("shoal %q: status %d; want 1 and %q\nstdout:\n%s\nstderr:\n%s", tt.args, code, tt.msg, out, errOut)
		}
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("fanout = -4\ncommand_timeout = \"5x\"\nbogus = 1\n[ssh]\nconnect_timeout = \"-3s\"\nport = 99999\n"+
		"[run]\nkill_grace = \"zz\"\n[agent]\nupload_compression = \"lz\"\n"), 0o600)
	_, errOut, code := shoal(t, dir, "", "config", "check", "--config", bad)
	want := []string{":1: fanout: must be at least 1", `:2: command_timeout: bad duration "5x"`, ":3: bogus: unknown key",
		":5: ssh.connect_timeout: must not be negative", ":6: ssh.port: must be a port number", `:8: run.kill_grace: bad duration "zz"`,
		":10: agent.upload_compression: must be one of"}
	for _, w := range want {
		if code != 1 || !strings.Contains(errOut, w) {
			t.Errorf("config check: status %d; want 1 and %q in one pass\nstderr:\n%s", code, w, errOut)
		}
	}
}

// TestViChangeWord types in vi mode: cw changes to the end of the word, as readline does,
// keeping the blank after it; dw still deletes the word and its blank; cw on blanks and cc work.
func TestViChangeWord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inputrc := filepath.Join(dir, "inputrc")
	os.WriteFile(inputrc, []byte("set editing-mode vi\n"), 0o600)
	cfg := writeConfig(t, dir)
	tm := newTerm(t, dir, shoaltest.Binary(t)+" --config "+cfg+" --no-daemon n1", "INPUTRC="+inputrc, "NO_COLOR=1")
	tm.waitPrompt()
	steps := []struct {
		keys []string
		want string
	}{
		// echo fooA barA; on fooA: cw bazB → echo bazB barA
		{[]string{"echo fooA barA", "Escape", "0", "w", "c", "w", "bazB", "Enter"}, "\nbazB barA\n"},
		// dw deletes the word and the blank after it
		{[]string{"echo oneC twoC", "Escape", "0", "w", "d", "w", "Enter"}, "\ntwoC\n"},
		// cw in the middle of a word changes the rest of it
		{[]string{"echo abcdefD tailD", "Escape", "0", "w", "l", "l", "c", "w", "XY", "Enter"}, "\nabXY tailD\n"},
		// a vi word ends at punctuation: cw on foo of foo-bar changes foo alone
		{[]string{"echo fooE-barE", "Escape", "0", "w", "c", "w", "bazE", "Enter"}, "\nbazE-barE\n"},
		// cc changes the whole line
		{[]string{"echo wrong", "Escape", "c", "c", "echo rightF", "Enter"}, "\nrightF\n"},
	}
	for _, st := range steps {
		for _, k := range st.keys {
			if len(k) > 1 && k != "Escape" && k != "Enter" {
				if out, err := exec.Command("tmux", "-S", tm.sock, "send-keys", "-l", k).CombinedOutput(); err != nil {
					t.Fatalf("send-keys: %v: %s", err, out)
				}
				continue
			}
			tm.keys(k)
			// As a person types: Escape alone, not as Meta with the next key, and each
			// command key read before the next.
			time.Sleep(150 * time.Millisecond)
		}
		tm.waitCount(st.want, 1)
		tm.waitPrompt()
	}
	// Each line starts in insert mode, as in readline, even after one that ended in command mode.
	tm.typeLine(":quit")
	tm.waitCount("EXITED 0", 1)
}

// TestDaemonStatusErrors checks that daemon status, as a table and as JSON, does not repeat a
// host's name inside its error.
func TestDaemonStatusErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	conf, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(conf), "use = false", "use = true", 1)), 0o600)
	t.Cleanup(func() {
		shoal(t, dir, "", "--config", cfg, "daemon", "stop")
		stopMarked(filepath.Join(dir, "run"))
	})
	if _, errOut, code := shoal(t, dir, "", "--config", cfg, "ping", "dead"); code != 255 {
		t.Fatalf("ping dead: status %d; want 255\n%s", code, errOut)
	}
	for _, args := range [][]string{{"daemon", "status"}, {"daemon", "status", "--json"}} {
		out, errOut, code := shoal(t, dir, "", append([]string{"--config", cfg}, args...)...)
		if code != 0 || !strings.Contains(out, "refused") || strings.Contains(out, "dead: ") {
			t.Errorf("shoal %v: status %d; want the host's error without its name\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
		}
	}
}
