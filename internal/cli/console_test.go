package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-sh/shoal/internal/config"
)

func TestDemoConfig(t *testing.T) {
	for _, n := range []int{1, 2, 8, 20, maxDemoHosts} {
		cfg, err := config.Parse("demo", []byte(demoConfig(n, t.TempDir())))
		if err != nil {
			t.Fatalf("demo config for %d hosts: %v\n%s", n, err, demoConfig(n, "/tmp/x"))
		}
		all, err := cfg.Targets("@all", nil)
		if err != nil || len(all) != n {
			t.Errorf("%d hosts: @all = %d hosts, %v", n, len(all), err)
		}
		if !slices.Equal(all, demoHosts(n)) {
			t.Errorf("%d hosts: @all = %v; want %v", n, all, demoHosts(n))
		}
		web, err := cfg.Targets("@web", nil)
		if err != nil || len(web) != max(1, n/2) {
			t.Errorf("%d hosts: @web = %v, %v", n, web, err)
		}
		if cfg.HostFor(all[0]).Transport != "local" {
			t.Errorf("%d hosts: transport %q; want local", n, cfg.HostFor(all[0]).Transport)
		}
		if cfg.Daemon.Use {
			t.Errorf("%d hosts: the demo would use the resident daemon", n)
		}
	}
}

// newTestRoot builds a root command with the console's commands, writing to buffers.
func newTestRoot(t *testing.T) (*cobra.Command, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	// A configuration of its own, with no resident daemon, so nothing here can start one.
	cfg := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(cfg, []byte("[daemon]\nuse = false\n"), 0o600)
	g := &globals{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
	root := &cobra.Command{Use: "shoal", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVar(&g.configFile, "config", cfg, "")
	addConsoleCommands(root, g)
	root.SetOut(&out)
	root.SetErr(&out)
	return root, &out
}

func TestRunFlagsMode(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "gather"},
		{[]string{"-o", "stream"}, "stream"},
		{[]string{"--json"}, "json"},
		{[]string{"-o", "stream", "--json"}, "json-stream"},
		{[]string{"-o", "json"}, "json"},
	}
	for _, tt := range tests {
		rf := &runFlags{}
		cmd := &cobra.Command{}
		cmd.Flags().StringVarP(&rf.output, "output", "o", "", "")
		cmd.Flags().BoolVar(&rf.json, "json", false, "")
		if err := cmd.ParseFlags(tt.args); err != nil {
			t.Fatal(err)
		}
		m, err := rf.mode(config.Default())
		if err != nil || m.String() != tt.want {
			t.Errorf("%v: mode %v, %v; want %s", tt.args, m, err, tt.want)
		}
	}
	rf := &runFlags{output: "bogus"}
	if _, err := rf.mode(nil); err == nil {
		t.Errorf("-o bogus: no error")
	}
}

func TestRunSettingsFromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Fanout, cfg.CommandTimeout = 9, config.Duration(time.Minute)
	rf := &runFlags{}
	cmd := &cobra.Command{}
	cmd.Flags().IntVar(&rf.fanout, "fanout", 0, "")
	cmd.Flags().DurationVar(&rf.timeout, "timeout", 0, "")
	if timeout, fanout := rf.settings(cmd, cfg); timeout != time.Minute || fanout != 9 {
		t.Errorf("from config: %v %d; want 1m 9", timeout, fanout)
	}
	cmd.ParseFlags([]string{"--fanout", "3", "--timeout", "0"})
	if timeout, fanout := rf.settings(cmd, cfg); timeout != 0 || fanout != 3 {
		t.Errorf("from flags: %v %d; want 0 3", timeout, fanout)
	}
}

func TestManPages(t *testing.T) {
	root, _ := newTestRoot(t)
	dir := t.TempDir()
	if err := writeManPages(root, dir, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"shoal.1", "shoal-run.1", "shoal-demo.1", "shoal-put.1"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, want := range []string{".TH ", ".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", "2026-11-25"} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("%s lacks %q:\n%s", name, want, b)
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "shoal-run.1"))
	if !bytes.Contains(b, []byte(`\-\-timeout`)) || !bytes.Contains(b, []byte(".SH EXAMPLES")) {
		t.Errorf("shoal-run.1 lacks the inherited --timeout or examples:\n%s", b)
	}
	if got := roff(".start\\ a-b"); got != `\&.start\e a\-b` {
		t.Errorf("roff: got %q", got)
	}
}

func TestRunUsage(t *testing.T) {
	root, _ := newTestRoot(t)
	root.SetArgs([]string{"run", "web1", "--"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("run without a command: %v; want a usage error", err)
	}
}

func TestRootTypo(t *testing.T) {
	root, _ := newTestRoot(t)
	root.SetArgs([]string{"rnu"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "did you mean run") {
		t.Errorf("shoal rnu: %v; want a suggestion of run", err)
	}
}
