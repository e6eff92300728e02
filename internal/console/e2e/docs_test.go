package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// docCommand is a shoal command line found in a code block of the documentation.
type docCommand struct {
	where string   // file:line
	line  string   // the command line, comment removed
	want  []string // the output the page shows after it ("$ " transcripts), when it is no illustration
}

var (
	// docComment is a comment after a command: two blanks or more, then #; docDescription is
	// the description after a synopsis line: three blanks or more, then a word.
	docComment     = regexp.MustCompile(`\s{2,}#.*$`)
	docDescription = regexp.MustCompile(`\s{3,}[a-z].*$`)
	// docPlaceholder marks a synopsis line (shoal run TARGETS [--] COMMAND...), not a command.
	docPlaceholder = regexp.MustCompile(`\b[A-Z]{2,}\b|\[N\]`)
	docIsCommand   = regexp.MustCompile(`^shoal(\s|$)|\|\s*shoal\s`)
)

// docCommands returns every shoal command line in the code blocks of README.md and docs/*.md.
func docCommands(t *testing.T) []docCommand {
	t.Helper()
	files, _ := filepath.Glob("../../../docs/*.md")
	files = append([]string{"../../../README.md"}, files...)
	var out []docCommand
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		in, illustration := false, false
		var cur *docCommand
		for i, raw := range lines {
			l := strings.TrimSpace(raw)
			if strings.HasPrefix(l, "```") {
				if !in {
					// A block the text before it calls an illustration shows output no test produces.
					before := strings.Join(lines[max(0, i-3):i], " ")
					illustration = strings.Contains(before, "illustration")
				}
				in, cur = !in, nil
				continue
			}
			if !in {
				continue
			}
			transcript := strings.HasPrefix(l, "$ ")
			cmd := strings.TrimPrefix(l, "$ ")
			if !docIsCommand.MatchString(cmd) || strings.Contains(cmd, ")> ") {
				if cur != nil && !transcript {
					cur.want = append(cur.want, strings.TrimRight(raw, " "))
				}
				continue
			}
			cmd = docComment.ReplaceAllString(cmd, "")
			cmd = docDescription.ReplaceAllString(cmd, "")
			cur = nil
			if docPlaceholder.MatchString(cmd) {
				continue
			}
			out = append(out, docCommand{where: fmt.Sprintf("%s:%d", filepath.Base(f), i+1), line: cmd})
			if transcript && !illustration {
				cur = &out[len(out)-1]
			}
		}
	}
	return out
}

// docUsageError matches what shoal says when a command line is wrong, as opposed to a host that
// failed or a file that is missing.
var docUsageError = regexp.MustCompile(`usage:|unknown command|unknown flag|unknown shorthand|flag needs an argument|invalid argument|accepts \d|requires (at least|exactly)|end shoal's flags|is not a flag|unexpected|unclosed|at column`)

// TestDocumentedCommands runs every shoal command line shown in README.md and docs/*.md against
// the test fleet, as a new user would type it (every name reaches the fleet through the page's
// ssh_config, tags @web and @db are those targets.md describes, a remote daemon's address is one
// nobody listens on, and redirections go to /dev/null), and fails on a usage or syntax error;
// where a page shows the output of a "$ " line, the output must be that.
func TestDocumentedCommands(t *testing.T) {
	requireConsole(t)
	cmds := docCommands(t)
	if len(cmds) < 30 {
		t.Fatalf("found %d documented commands; want the docs' (is the parser broken?)", len(cmds))
	}
	t.Logf("%d documented command lines", len(cmds))
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	dir := t.TempDir()
	environ := env(dir)
	work := filepath.Join(dir, "work")
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{work, bin, filepath.Join(work, "fleet", "client"), filepath.Join(dir, "config", "shoal")} {
		os.MkdirAll(d, 0o700)
	}
	if err := os.Symlink(shoaltest.Binary(t), filepath.Join(bin, "shoal")); err != nil {
		t.Fatal(err)
	}
	// Every name reaches the fleet's one host, as the README's fleet/client/ssh_config would.
	h := f.Hosts[0]
	sshConfig := filepath.Join(work, "fleet", "client", "ssh_config")
	os.WriteFile(sshConfig, []byte(fmt.Sprintf("Host *\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n",
		h.Addr, h.Port, h.User, f.ClientKey, f.KnownHosts)), 0o600)
	os.WriteFile(filepath.Join(dir, "config", "shoal", "config.toml"), []byte(`command_timeout = "5s"
fanout = 64

[ssh]
ssh_config = "`+sshConfig+`"
connect_timeout = "10s"

[tags]
web = "web[01-20].dc1"
db = "db[1-4].dc1"

[[host]]
name = "web[01-20].dc1"

[[host]]
name = "db[1-4].dc1"

[[host]]
name = "h[001-008]"
`), 0o600)
	os.WriteFile(filepath.Join(work, "app.conf"), []byte("setting=1\n"), 0o644)
	environ = append(environ, "PATH="+bin+":"+os.Getenv("PATH"), "SSH_AUTH_SOCK=")
	t.Cleanup(func() { stopMarked(filepath.Join(dir, "run")) })

	redirect := regexp.MustCompile(`(^|[^0-9&>])>\s*[^&\s]\S*`)
	for _, c := range cmds {
		line := strings.ReplaceAll(c.line, "tls://front.example.com:9007", "tls://127.0.0.1:1")
		line = redirect.ReplaceAllString(line, "$1>/dev/null")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-c", line)
		cmd.Dir, cmd.Env = work, environ
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Errorf("%s: %s: did not finish in 3 minutes:\n%s", c.where, c.line, out.String())
			continue
		}
		if c.want != nil {
			got := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("%s: %s: printed\n%s\nwhere the page shows\n%s", c.where, c.line, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			continue
		}
		if m := docUsageError.FindString(out.String()); m != "" {
			t.Errorf("%s: %s: a usage or syntax error (%q):\n%s", c.where, c.line, m, out.String())
		}
	}
}

// stopMarked kills, by pid, the processes whose environment names runDir as XDG_RUNTIME_DIR: the
// daemon the documented commands started, and nothing else.
func stopMarked(runDir string) {
	marker := []byte("XDG_RUNTIME_DIR=" + runDir + "\x00")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(b, marker) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
