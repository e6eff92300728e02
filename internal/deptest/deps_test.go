// Package deptest checks that imports between shoal's packages point one way (STYLE.md, section 2).
package deptest

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/shoal-sh/shoal/"

// allowed lists, for each package, the internal packages it may import directly.
// A package missing here may import nothing internal; "*" allows everything.
var allowed = map[string][]string{
	"cmd/shoal": {"internal/cli"},
	// The agent-only build: the agent and nothing of the console, SSH or TLS.
	"cmd/shoal-agent":              {"internal/agent"},
	"internal/install/appendagent": {"internal/install"},
	"internal/sbom":                {},
	"internal/cli":                 {"*"},
	"cmd/simfleet":                 {"internal/simfleet", "internal/install"},
	"internal/simfleet":            {"internal/agent", "internal/proto"},
	"internal/agent":               {"internal/proto", "internal/fsutil"},
	"internal/daemon": {"internal/proto", "internal/hostsess", "internal/hostlist", "internal/config",
		"internal/state", "internal/audit", "internal/fsutil", "internal/client", "internal/transport",
		"internal/transport/local", "internal/transport/ssh", "internal/transport/openssh", "internal/install",
		"internal/certs"},
	"internal/hostsess":          {"internal/proto", "internal/transport"},
	"internal/sshx":              {},
	"internal/install":           {"internal/fsutil"},
	"internal/transport":         {"internal/install", "internal/proto"}, // proto.Reason says why a connect failed
	"internal/transport/local":   {"internal/transport", "internal/fsutil", "internal/proto"},
	"internal/transport/ssh":     {"internal/transport", "internal/sshx", "internal/install", "internal/proto"},
	"internal/transport/openssh": {"internal/transport", "internal/install", "internal/proto"},
	"internal/client":            {"internal/proto", "internal/config", "internal/fsutil"},
	// console is the REPL (it names a run's pace as the wire does: proto.Rollout); what it shows of a run or a report, package show writes.
	"internal/console": {"internal/client", "internal/render", "internal/hostlist", "internal/config",
		"internal/proto", "internal/show"},
	// show names a run's results and pace as the wire does (proto) and writes --outdir files
	// with fsutil's atomic replace.
	"internal/show":      {"internal/client", "internal/render", "internal/hostlist", "internal/proto", "internal/fsutil"},
	"internal/render":    {"internal/hostlist", "internal/proto"},
	"internal/proto":     {},
	"internal/hostlist":  {},
	"internal/config":    {"internal/hostlist", "internal/tagsource"},
	"internal/tagsource": {},
	"internal/state":     {"internal/fsutil"},
	"internal/fsutil":    {},
	"internal/certs":     {},
	"internal/audit":     {"internal/fsutil", "internal/proto"},
}

// stdlibOnly lists packages that may import nothing outside the standard library.
var stdlibOnly = map[string]bool{"internal/hostlist": true}

// leaves lists packages that sit at the bottom of the tree, and what they may link besides the
// standard library, directly or not. install writes the commands that put the agent on a host
// and knows nothing of transports or the protocol: the transports drive it, and the hash in the
// agent's hello is checked by their caller.
var leaves = map[string][]string{
	"internal/install": {mod + "internal/fsutil", "github.com/klauspost/compress", "golang.org/x/sys"},
}

type pkg struct {
	ImportPath string
	Imports    []string
	GoFiles    []string
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		name := strings.TrimPrefix(p.ImportPath, mod)
		if len(p.GoFiles) == 0 || strings.HasPrefix(name, "internal/shoaltest") {
			continue
		}
		rules, known := allowed[name]
		if !known {
			t.Errorf("%s: not in the layering table of internal/deptest; add it", name)
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, mod) {
				dep := strings.TrimPrefix(imp, mod)
				if !permitted(rules, dep) {
					t.Errorf("%s imports %s; allowed: %v", name, dep, rules)
				}
				continue
			}
			if stdlibOnly[name] && strings.Contains(strings.Split(imp, "/")[0], ".") {
				t.Errorf("%s imports %s; it may import only the standard library", name, imp)
			}
		}
	}
}

// TestLeaves checks that the leaves link nothing but the standard library and what they list.
func TestLeaves(t *testing.T) {
	for name, ok := range leaves {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", mod+name).Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == mod+name {
				continue
			}
			if !slices.ContainsFunc(ok, func(p string) bool { return dep == p || strings.HasPrefix(dep, p+"/") }) {
				t.Errorf("%s links %s; a leaf may link only the standard library and %v", name, dep, ok)
			}
		}
	}
}

func permitted(rules []string, dep string) bool {
	for _, r := range rules {
		if r == "*" || r == dep {
			return true
		}
	}
	return false
}

// TestAgentBuildIsSmall checks that the agent-only build, which every host downloads on first
// contact, links none of the console's, SSH's or TLS's packages: a third of shoal's size. Nor
// log/slog and encoding/json, another 9% (the agent has its own small logger).
func TestAgentBuildIsSmall(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", mod+"cmd/shoal-agent").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/spf13/cobra", "golang.org/x/crypto/ssh", "crypto/tls",
			"github.com/reeflective/readline", "github.com/klauspost/compress", mod + "internal/cli",
			"log/slog", "encoding/json"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("cmd/shoal-agent links %s", dep)
			}
		}
	}
}
