package show

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-sh/shoal/internal/proto"
)

func TestHostFiles(t *testing.T) {
	dir := t.TempDir()
	v := View{OutDir: filepath.Join(dir, "o"), ErrDir: filepath.Join(dir, "e")}
	if err := v.MakeOutDirs(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"../x", "a/b", "..", "", "/etc"} {
		if err := v.writeHostFiles(proto.HostResult{Host: bad, Stdout: []byte("x")}); err == nil {
			t.Errorf("host %q: no error", bad)
		}
	}
	if err := v.writeHostFiles(proto.HostResult{Host: "web1", Status: proto.StatusOK, Stdout: []byte("out"), Stderr: []byte("err")}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"o/web1": "out", "e/web1.err": "err"} {
		b, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", path, b, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "o", "web1.status")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("web1.status: %v, %v; want mode 0600", fi, err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "o"))
	if len(ents) != 2 {
		t.Errorf("outdir holds %d files; want web1 and web1.status, no temporary files", len(ents))
	}
}
