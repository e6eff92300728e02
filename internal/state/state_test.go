package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	f, err := Load(path)
	if err != nil {
		t.Fatalf("Load of a missing file: %v", err)
	}
	if len(f.Hosts) != 0 {
		t.Fatalf("got %d hosts; want 0", len(f.Hosts))
	}
	seen := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	f.Hosts["web01"] = Host{Transport: "ssh", AgentPath: "/home/u/.cache/shoal/agent-ab", AgentHash: "ab", LastSeen: seen}
	f.Hosts["db01"] = Host{Transport: "local", LastState: "ready"}
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v; want 0600", st.Mode().Perm())
	}
	dst, _ := os.Stat(filepath.Dir(path))
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v; want 0700", dst.Mode().Perm())
	}
	g, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f, g); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if got, want := g.Names(), []string{"db01", "web01"}; !cmp.Equal(got, want) {
		t.Errorf("Names() = %v; want %v", got, want)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries; want only the state file (no temp files left)", len(ents))
	}
}

func TestLoadCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := Load(path); err == nil {
		t.Fatal("Load of a corrupt file succeeded; want an error")
	}
}

func TestWriteFileReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "new" {
		t.Errorf("got %q; want %q", b, "new")
	}
}
