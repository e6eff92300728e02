package sshx

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// corpusDir holds ssh_config files whose resolution must match `ssh -G` byte for byte. Each
// file's first line names the hosts to resolve ("# hosts: a b c"); "@DIR@" stands for the
// directory the corpus is copied to, so that Include can name files in it.
const corpusDir = "testdata/sshconfig"

// copyCorpus copies the corpus into a temporary directory with @DIR@ replaced.
func copyCorpus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(corpusDir, func(path string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(corpusDir, path)
		if de.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), bytes.ReplaceAll(b, []byte("@DIR@"), []byte(dir)), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// dumpKeys returns the keys of a Dump.
func dumpKeys(dump string) map[string]bool {
	keys := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(dump), "\n") {
		k, _, _ := strings.Cut(line, " ")
		keys[k] = true
	}
	return keys
}

// TestConfigCorpusMatchesSSHG resolves every host of the corpus with shoal and with OpenSSH's
// `ssh -G` and compares, byte for byte, the lines of the keys shoal prints; a file ssh rejects
// shoal must reject too.
func TestConfigCorpusMatchesSSHG(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("SKIPPING: no ssh binary to compare with")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := copyCorpus(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	if len(files) < 30 {
		t.Fatalf("corpus has %d configs; want at least 30", len(files))
	}
	for _, file := range files {
		b, _ := os.ReadFile(file)
		first, _, _ := strings.Cut(string(b), "\n")
		hosts, ok := strings.CutPrefix(first, "# hosts: ")
		if !ok {
			t.Fatalf("%s: first line %q does not name hosts", file, first)
		}
		d := &Dialer{ConfigFile: file, Home: u.HomeDir, User: u.Username}
		for _, alias := range strings.Fields(hosts) {
			t.Run(filepath.Base(file)+"/"+alias, func(t *testing.T) {
				cmd := exec.Command("ssh", "-G", "-F", file, alias)
				out, sshErr := cmd.Output()
				h, err := d.Resolve(alias, Override{})
				if sshErr != nil {
					if err == nil {
						t.Fatalf("ssh -G fails (%v) but shoal resolved:\n%s", sshErr, h.Dump())
					}
					return
				}
				if err != nil {
					t.Fatalf("shoal: %v; ssh -G resolves it", err)
				}
				got := h.Dump()
				keys := dumpKeys(got)
				var want strings.Builder
				for line := range strings.SplitSeq(string(out), "\n") {
					if k, _, _ := strings.Cut(line, " "); keys[k] {
						want.WriteString(line + "\n")
					}
				}
				if got != want.String() {
					t.Errorf("got:\n%s\nwant (ssh -G):\n%s", got, want.String())
				}
			})
		}
	}
}

// FuzzParseConfig checks that parsing and resolving any file neither panics nor hangs.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.conf"))
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Add([]byte("Host \"a\n Match exec\n Include\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pf := parseConfig("fuzz", data)
		env := &sshEnv{home: "/home/u", localUser: "u", uid: "1000", thisHost: "local",
			readFile: func(path string, _ bool) (*cfgFile, error) {
				if path == "fuzz" {
					return pf, nil
				}
				return nil, os.ErrNotExist
			},
			exec:   func(string) int { return 0 },
			getenv: func(string) (string, bool) { return "", false },
		}
		c := &sshConfig{file: "fuzz", env: env}
		for _, alias := range []string{"a", "web1", "127.0.0.1"} {
			c.resolve(alias)
		}
	})
}

func TestNamesHost(t *testing.T) {
	dir := copyCorpus(t)
	for _, tc := range []struct {
		file, alias string
		want        bool
	}{
		{"01-basic.conf", "web1", true},
		{"01-basic.conf", "web2", false}, // only by the pattern web*
		{"16-include-glob.conf", "i2", true},
		{"03-negation.conf", "bastion", true},
		{"03-negation.conf", "db1", false},
	} {
		if got := NamesHost(filepath.Join(dir, tc.file), tc.alias); got != tc.want {
			t.Errorf("NamesHost(%s, %s) = %v; want %v", tc.file, tc.alias, got, tc.want)
		}
	}
	if NamesHost("none", "web1") {
		t.Errorf("NamesHost(none) found a host")
	}
}
