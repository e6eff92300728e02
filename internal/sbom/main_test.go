package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestWrite writes the SBOM of this test binary (a Go binary of this module, like shoal) and
// checks its shape, and that it is the same twice.
func TestWrite(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out, again bytes.Buffer
	if err := write(&out, exe, "v1.2.3", "1764633600"); err != nil {
		t.Fatal(err)
	}
	if err := write(&again, exe, "v1.2.3", "1764633600"); err != nil || !bytes.Equal(out.Bytes(), again.Bytes()) {
		t.Errorf("two SBOMs of one binary differ (%v)", err)
	}
	var b bom
	if err := json.Unmarshal(out.Bytes(), &b); err != nil {
		t.Fatalf("the SBOM is not JSON: %v\n%s", err, out.Bytes())
	}
	if b.Format != "CycloneDX" || b.SpecVersion != "1.5" || !strings.HasPrefix(b.SerialNumber, "urn:uuid:") || len(b.SerialNumber) != len("urn:uuid:")+36 {
		t.Errorf("header %q %q %q", b.Format, b.SpecVersion, b.SerialNumber)
	}
	if b.Metadata.Timestamp != "2025-12-02T00:00:00Z" || b.Metadata.Component.Version != "v1.2.3" ||
		!strings.HasPrefix(b.Metadata.Component.PURL, "pkg:golang/github.com/shoal-sh/shoal@v1.2.3") || len(b.Metadata.Component.Hashes) != 1 {
		t.Errorf("metadata %+v", b.Metadata)
	}
	if len(b.Components) == 0 || b.Components[0].Name != "std" || !strings.HasPrefix(b.Components[0].Version, "go1.") {
		t.Errorf("components %+v; want std first", b.Components)
	}
	if len(b.Dependencies) != 1 || len(b.Dependencies[0].DependsOn) != len(b.Components) {
		t.Errorf("dependencies %+v; want the binary depending on every component", b.Dependencies)
	}
	if err := write(&out, "/nonexistent", "v1", ""); err == nil {
		t.Error("no error for a missing binary")
	}
}
