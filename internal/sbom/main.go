// Command sbom writes a CycloneDX 1.5 software bill of materials (JSON) for a Go binary:
// the Go toolchain's standard library and every module the binary was built from, as the
// binary records them (debug/buildinfo), so the SBOM lists what was linked and not what
// go.mod allows. scripts/release runs it on each release binary. The output depends only on
// the binary and SOURCE_DATE_EPOCH, so a reproducible build has a reproducible SBOM.
//
//	go run ./internal/sbom BINARY VERSION > shoal.cdx.json
package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sbom BINARY VERSION")
		os.Exit(2)
	}
	if err := write(os.Stdout, os.Args[1], os.Args[2], os.Getenv("SOURCE_DATE_EPOCH")); err != nil {
		fmt.Fprintf(os.Stderr, "sbom: %v\n", err)
		os.Exit(1)
	}
}

// bom is the part of CycloneDX 1.5 written here.
type bom struct {
	Format       string       `json:"bomFormat"`
	SpecVersion  string       `json:"specVersion"`
	SerialNumber string       `json:"serialNumber"`
	Version      int          `json:"version"`
	Metadata     metadata     `json:"metadata"`
	Components   []component  `json:"components"`
	Dependencies []dependency `json:"dependencies"`
}

type metadata struct {
	Timestamp string    `json:"timestamp,omitempty"`
	Component component `json:"component"`
}

type component struct {
	Type       string     `json:"type"`
	BOMRef     string     `json:"bom-ref"`
	Name       string     `json:"name"`
	Version    string     `json:"version"`
	PURL       string     `json:"purl"`
	Hashes     []hash     `json:"hashes,omitempty"`
	Properties []property `json:"properties,omitempty"`
}

type hash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type property struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type dependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn"`
}

// write writes the SBOM of the binary at path, released as version, dated epoch (seconds
// since 1970; "" leaves the date out).
func write(w io.Writer, path, version, epoch string) error {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading build information: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("hashing the binary: %w", err)
	}
	sum := sha256.Sum256(data)
	// A UUID (version 8, RFC 9562) from the binary's hash: the same binary, the same serial.
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	b := bom{Format: "CycloneDX", SpecVersion: "1.5", Version: 1,
		SerialNumber: fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])}
	sum = sha256.Sum256(data) // u wrote into sum
	if epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("reading SOURCE_DATE_EPOCH %q: want seconds since 1970", epoch)
		}
		b.Metadata.Timestamp = time.Unix(sec, 0).UTC().Format(time.RFC3339)
	}
	main := module(bi.Main, "application")
	main.Version = version
	main.PURL = "pkg:golang/" + bi.Main.Path + "@" + version
	main.BOMRef = main.PURL
	main.Hashes = []hash{{Alg: "SHA-256", Content: fmt.Sprintf("%x", sum)}}
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS", "GOARCH", "CGO_ENABLED", "-trimpath", "-ldflags":
			main.Properties = append(main.Properties, property{Name: "go:build:" + s.Key, Value: s.Value})
		}
	}
	b.Metadata.Component = main
	std := component{Type: "library", Name: "std", Version: bi.GoVersion, PURL: "pkg:golang/std@" + bi.GoVersion}
	std.BOMRef = std.PURL
	b.Components = append(b.Components, std)
	deps := dependency{Ref: main.BOMRef, DependsOn: []string{std.BOMRef}}
	for _, m := range bi.Deps {
		c := module(*m, "library")
		b.Components = append(b.Components, c)
		deps.DependsOn = append(deps.DependsOn, c.BOMRef)
	}
	b.Dependencies = []dependency{deps}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(b)
}

// module describes a module the binary links; a replaced module is described as the
// replacement, which is what was built.
func module(m debug.Module, typ string) component {
	if m.Replace != nil {
		m = *m.Replace
	}
	c := component{Type: typ, Name: m.Path, Version: m.Version, PURL: "pkg:golang/" + m.Path + "@" + m.Version}
	c.BOMRef = c.PURL
	if m.Sum != "" {
		c.Properties = []property{{Name: "go:module:sum", Value: m.Sum}}
	}
	return c
}
