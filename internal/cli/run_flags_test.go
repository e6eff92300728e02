package cli

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestFlagsAfterTargets(t *testing.T) {
	tests := []struct {
		args    []string
		want    []string
		output  string
		wantErr string
	}{
		{args: []string{"@web", "--", "ls", "-l"}, want: []string{"@web", "ls", "-l"}},
		{args: []string{"@web", "ls", "-l", "--", "x"}, want: []string{"@web", "ls", "-l", "--", "x"}},
		{args: []string{"@web", "-o", "json", "--", "date"}, want: []string{"@web", "date"}, output: "json"},
		{args: []string{"@web", "--output=stream", "--", "git", "log", "--", "f"}, want: []string{"@web", "git", "log", "--", "f"}, output: "stream"},
		{args: []string{"@web", "-o", "json", "date"}, wantErr: "end shoal's flags with --"},
		{args: []string{"@web", "-Z", "--", "date"}, wantErr: "unknown shorthand flag"},
		{args: []string{"@web", "-o", "json", "date", "--", "x"}, wantErr: `"date" is not a flag`},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		g := &globals{stdout: &out, stderr: &out}
		root := newRoot(g)
		run, _, err := root.Find([]string{"run"})
		if err != nil {
			t.Fatal(err)
		}
		// Merge the persistent flags the way cobra does before RunE.
		if err := run.ParseFlags(nil); err != nil {
			t.Fatal(err)
		}
		got, err := flagsAfterTargets(run, slices.Clone(tt.args))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("flagsAfterTargets(%q) error = %v; want one containing %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("flagsAfterTargets(%q): %v", tt.args, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("flagsAfterTargets(%q) = %q; want %q", tt.args, got, tt.want)
		}
		if o, _ := run.Flags().GetString("output"); o != tt.output {
			t.Errorf("flagsAfterTargets(%q): output = %q; want %q", tt.args, o, tt.output)
		}
	}
}

// TestUsageErrors checks that a one-shot command given the wrong number of arguments answers with
// its usage line, not cobra's count of arguments.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "usage: shoal run TARGETS [--] COMMAND..."},
		{[]string{"run", "@web"}, "usage: shoal run TARGETS [--] COMMAND..."},
		{[]string{"ping"}, "usage: shoal ping TARGETS"},
		{[]string{"put", "@web", "f"}, "usage: shoal put TARGETS SRC DEST"},
		{[]string{"get", "@web"}, "usage: shoal get TARGETS SRC DESTDIR"},
		{[]string{"last", "1", "2"}, "usage: shoal last [N]"},
		{[]string{"demo", "1", "2"}, "usage: shoal demo [N]"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		g := &globals{stdout: &out, stderr: &out}
		root := newRoot(g)
		root.SetArgs(tt.args)
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		if err == nil || err.Error() != tt.want {
			t.Errorf("shoal %q: error %v; want %q", tt.args, err, tt.want)
		}
	}
}
