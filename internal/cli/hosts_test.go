package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-sh/shoal/internal/config"
)

// isolateConfig points every configuration location into a temporary directory.
func isolateConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_CONFIG_DIRS", filepath.Join(dir, "xdg"))
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	old := config.SystemConfigFile
	config.SystemConfigFile = filepath.Join(dir, "etc", "config.toml")
	t.Cleanup(func() { config.SystemConfigFile = old })
	return dir
}

func runShoal(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHostsCmd(t *testing.T) {
	dir := isolateConfig(t)
	cfg := filepath.Join(dir, "shoal.toml")
	if err := os.WriteFile(cfg, []byte("[tags]\nweb = 'web[01-04]'\n[[host]]\nname = 'db[1-2]'\ntags = ['db']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "list")
	if err := os.WriteFile(list, []byte("# extra\nx1\nx2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"hosts", "n[1-3]"}, "n1\nn2\nn3\n"},
		{"", []string{"hosts", "n10,n9", "n1"}, "n1\nn9\nn10\n"},
		{"", []string{"hosts", "--fold", "web[01-20]!web13"}, "web[01-12,14-20]\n"},
		{"", []string{"hosts", "--count", "rack[1-2]-n[01-04]"}, "8\n"},
		{"a\nb\n", []string{"hosts", "-", "c"}, "a\nb\nc\n"},
		{"", []string{"hosts", "-f", list, "-x", "x2", "y"}, "x1\ny\n"},
		{"", []string{"--config", cfg, "hosts", "--fold", "@all"}, "db[1-2],web[01-04]\n"},
		{"", []string{"--config", cfg, "hosts", "@web&web0[3-9]"}, "web03\nweb04\n"},
		{"", []string{"hosts", "--fold", "n[1-3]!n[1-3]"}, ""},
	}
	for _, tt := range tests {
		code, out, errs := runShoal(t, tt.stdin, tt.args...)
		if code != 0 || out != tt.want {
			t.Errorf("shoal %q = %d %q (stderr %q); want 0 %q", tt.args, code, out, errs, tt.want)
		}
	}
}

func TestHostsCmdErrors(t *testing.T) {
	isolateConfig(t)
	code, out, errs := runShoal(t, "", "hosts", "web[01-")
	want := "shoal: web[01-: unclosed '[' at column 4\n  web[01-\n     ^\n"
	if code != 2 || out != "" || errs != want {
		t.Errorf("bad expression: %d %q %q; want 2 and %q", code, out, errs, want)
	}
	code, _, errs = runShoal(t, "", "hosts", "n[1-100000000]")
	if code == 0 || !strings.Contains(errs, "more than 1000000 hosts") {
		t.Errorf("huge range: %d %q", code, errs)
	}
	code, _, errs = runShoal(t, "", "hosts", "@nope")
	if code != 1 || !strings.Contains(errs, "unknown tag") {
		t.Errorf("unknown tag: %d %q", code, errs)
	}
	if code, _, _ := runShoal(t, "", "hosts"); code == 0 {
		t.Error("no expression: exit 0")
	}
}

func TestConfigCmd(t *testing.T) {
	dir := isolateConfig(t)
	code, example, errs := runShoal(t, "", "config", "example")
	if code != 0 || !strings.Contains(example, "[[host]]") {
		t.Fatalf("config example: %d %q", code, errs)
	}
	ex := filepath.Join(dir, "example.toml")
	if err := os.WriteFile(ex, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runShoal(t, "", "config", "check", ex)
	if code != 0 || !strings.Contains(out, "# read "+ex) || !strings.Contains(out, "fanout = 64") {
		t.Errorf("config check example: %d %q %q", code, out, errs)
	}
	code, out, _ = runShoal(t, "", "config", "check")
	if code != 0 || !strings.Contains(out, "no configuration file found") {
		t.Errorf("config check without files: %d %q", code, out)
	}
	user := filepath.Join(dir, "config", "shoal", "config.toml")
	if err := os.MkdirAll(filepath.Dir(user), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(user, []byte("fanout = -2\n[[host]]\nname = 'a'\ntransport = 'pigeon'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runShoal(t, "", "config", "check")
	want := user + ":1: fanout: must be at least 1, not -2\n" + user + ":4: host[0].transport: must be one of ssh, openssh, local, not \"pigeon\"\n"
	if code != 1 || out != "" || errs != want {
		t.Errorf("config check with errors: %d %q %q; want 1 and %q", code, out, errs, want)
	}
	code, out, _ = runShoal(t, "", "config", "paths")
	if code != 0 || !strings.Contains(out, "config  "+user) || !strings.Contains(out, filepath.Join(dir, "state", "shoal")) {
		t.Errorf("config paths: %d %q", code, out)
	}
}

// TestHostsCmdLimitCaret checks that a range over the limit is shown like a syntax error:
// the expression, a caret under the item, and exit status 2.
func TestHostsCmdLimitCaret(t *testing.T) {
	isolateConfig(t)
	code, out, errs := runShoal(t, "", "hosts", "n[1-3],x[1-100000000]")
	want := "shoal: n[1-3],x[1-100000000]: expands to more than 1000000 hosts (the limit) at column 8\n" +
		"  n[1-3],x[1-100000000]\n         ^\n"
	if code != 2 || out != "" || errs != want {
		t.Errorf("huge range: %d %q %q; want 2 and %q", code, out, errs, want)
	}
}

// TestHostsCmdConfigErrors checks that a bad configuration is reported one error per line,
// each naming file, line and key, as config check does.
func TestHostsCmdConfigErrors(t *testing.T) {
	dir := isolateConfig(t)
	cfg := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(cfg, []byte("fanout = 0\n[ssh]\nport = -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runShoal(t, "", "--config", cfg, "hosts", "a")
	want := cfg + ":1: fanout: must be at least 1, not 0\n" +
		cfg + ":3: ssh.port: must be a port number from 1 to 65535 (0 for the default), not -1\n"
	if code != 1 || out != "" || errs != want {
		t.Errorf("bad config: %d %q %q; want 1 and %q", code, out, errs, want)
	}
}

// TestConfigCmdUnknownSubcommand checks that a mistyped subcommand is an error, not help and exit 0.
func TestConfigCmdUnknownSubcommand(t *testing.T) {
	isolateConfig(t)
	code, _, errs := runShoal(t, "", "config", "chek")
	if code != 1 || !strings.Contains(errs, `unknown command "chek" for "shoal config"`) {
		t.Errorf("shoal config chek: %d %q; want 1 and an unknown command error", code, errs)
	}
	if code, out, _ := runShoal(t, "", "config"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("shoal config: %d %q; want 0 and help", code, out)
	}
}
