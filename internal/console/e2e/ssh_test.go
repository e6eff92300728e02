package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigSSHMatchesSSHG runs `shoal config ssh` on configs of the sshx corpus and compares
// its output with the lines of the same keys `ssh -G` prints.
func TestConfigSSHMatchesSSHG(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("SKIPPING: no ssh binary to compare with")
	}
	corpus := filepath.Join("..", "..", "sshx", "testdata", "sshconfig")
	dir := t.TempDir()
	for _, tc := range []struct{ file, hosts string }{
		{"04-bastion-chain.conf", "target edge inner"},
		{"12-match-final.conf", "f1 f2"},
		{"19-tokens.conf", "t1 t2"},
		{"22-certificates.conf", "cert1"},
	} {
		file := filepath.Join(corpus, tc.file)
		hosts := strings.Fields(tc.hosts)
		out, errOut, code := shoal(t, dir, "", append([]string{"config", "ssh", "-F", file}, hosts...)...)
		if code != 0 {
			t.Fatalf("shoal config ssh -F %s %s: status %d\n%s", tc.file, tc.hosts, code, errOut)
		}
		keys := map[string]bool{}
		for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
			k, _, _ := strings.Cut(line, " ")
			keys[k] = true
		}
		var want bytes.Buffer
		for _, h := range hosts {
			g, err := exec.Command("ssh", "-G", "-F", file, h).Output()
			if err != nil {
				t.Fatalf("ssh -G -F %s %s: %v", file, h, err)
			}
			for line := range strings.SplitSeq(string(g), "\n") {
				if k, _, _ := strings.Cut(line, " "); keys[k] {
					want.WriteString(line + "\n")
				}
			}
		}
		if out != want.String() {
			t.Errorf("shoal config ssh -F %s %s:\n%s\nwant (ssh -G):\n%s", tc.file, tc.hosts, out, want.String())
		}
	}
	// An unknown option is an error naming file and line.
	bad := filepath.Join(dir, "bad_config")
	os.WriteFile(bad, []byte("Host x\n  NoSuchOption 1\n"), 0o600)
	_, errOut, code := shoal(t, dir, "", "config", "ssh", "-F", bad, "x")
	if code != 1 || !strings.Contains(errOut, bad+" line 2: bad configuration option: nosuchoption") {
		t.Errorf("config ssh on a bad file: status %d, stderr %q", code, errOut)
	}
}
