package render

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-sh/shoal/internal/proto"
)

func TestWriteDiffs(t *testing.T) {
	ok := func(host, out string) proto.HostResult {
		return proto.HostResult{Host: host, Status: proto.StatusOK, Stdout: []byte(out)}
	}
	results := []proto.HostResult{
		ok("web1", "a\nb\nc\n"), ok("web2", "a\nb\nc\n"), ok("web3", "a\nb\nc\n"),
		ok("web4", "a\nB\nc\n"),
		ok("web5", "a\nb\nc\nd"),
		{Host: "web6", Status: proto.StatusUnreachable, Err: "connection refused"},
	}
	var b bytes.Buffer
	if err := WriteDiffs(&b, Groups(results), "", Options{}); err != nil {
		t.Fatal(err)
	}
	want := `# diff web[1-3] (3) → web4 (1)
--- web[1-3]
+++ web4
@@ -1,3 +1,3 @@
 a
-b
+B
 c
# diff web[1-3] (3) → web5 (1)
--- web[1-3]
+++ web5
@@ -1,3 +1,4 @@
 a
 b
 c
+d
\ No newline at end of file
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteDiffs(&b, Groups(results), "web4", Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "# diff web4 (1) → web[1-3] (3)\n--- web4\n+++ web[1-3]\n") || strings.Count(b.String(), "# diff") != 2 {
		t.Errorf("against web4: got:\n%s", b.String())
	}
	if err := WriteDiffs(&b, Groups(results), "web6", Options{}); err == nil {
		t.Error("against a host that did not run: no error")
	}
	b.Reset()
	WriteDiffs(&b, Groups(results), "", Options{Color: true})
	if !strings.Contains(b.String(), SGRRed+"-b"+SGRReset) || !strings.Contains(b.String(), SGRGreen+"+B"+SGRReset) {
		t.Errorf("coloured: got %q", b.String())
	}
}

// TestDiffPatches checks that patch turns the reference output into each other group's.
func TestDiffPatches(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("no patch:", err)
	}
	var long strings.Builder
	for i := range 200 {
		long.WriteString(strings.Repeat("x", i%7) + "\n")
	}
	base := long.String()
	other := strings.Replace(strings.Replace(base, "xxx\n", "yyy\n", 3), "xxxxxx\n", "", 2) + "tail"
	results := []proto.HostResult{{Host: "h1", Status: proto.StatusOK, Stdout: []byte(base)}, {Host: "h2", Status: proto.StatusOK, Stdout: []byte(base)},
		{Host: "h3", Status: proto.StatusFailed, ExitCode: 1, Stdout: []byte(other)}}
	var b bytes.Buffer
	if err := WriteDiffs(&b, Groups(results), "", Options{}); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "ref")
	os.WriteFile(f, []byte(base), 0o600)
	cmd := exec.Command("patch", "-s", f)
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("patch: %v: %s", err, out)
	}
	if got, _ := os.ReadFile(f); string(got) != other {
		t.Errorf("patched file differs from h3's output")
	}
}
