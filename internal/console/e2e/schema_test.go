package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schema compiles docs/json.schema.json and returns a validator for each of its $defs.
func schema(t *testing.T) (map[string]*jsonschema.Schema, map[string]any) {
	t.Helper()
	const path = "../../../docs/json.schema.json"
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c := jsonschema.NewCompiler()
	const url = "file:///json.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]*jsonschema.Schema{}
	defs := doc.(map[string]any)["$defs"].(map[string]any)
	for name := range defs {
		s, err := c.Compile(url + "#/$defs/" + name)
		if err != nil {
			t.Fatalf("compiling $defs/%s: %v", name, err)
		}
		out[name] = s
	}
	return out, defs
}

// schemaKeys returns the property names a $defs object (or its oneOf branches) names.
func schemaKeys(def any) map[string]bool {
	keys := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if p, ok := m["properties"].(map[string]any); ok {
			for k := range p {
				keys[k] = true
			}
		}
		if o, ok := m["oneOf"].([]any); ok {
			for _, b := range o {
				walk(b)
			}
		}
	}
	walk(def)
	return keys
}

// validate checks every JSON line of out against $defs/def, and that no object has a key the
// schema does not name (the schema allows new keys for its readers; shoal must document them).
func validate(t *testing.T, what, def, out string, schemas map[string]*jsonschema.Schema, defs map[string]any) int {
	t.Helper()
	keys := schemaKeys(defs[def])
	if def == "daemon_status" {
		for k := range schemaKeys(defs["host_status"]) {
			keys["hosts."+k] = true
		}
	}
	n := 0
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
		if err != nil {
			t.Errorf("%s: %q is not JSON: %v", what, line, err)
			continue
		}
		if err := schemas[def].Validate(v); err != nil {
			t.Errorf("%s: %s does not fit $defs/%s: %v", what, line, def, err)
		}
		for k, val := range v.(map[string]any) {
			if !keys[k] {
				t.Errorf("%s: key %q is not in docs/json.schema.json's $defs/%s", what, k, def)
			}
			if hosts, ok := val.([]any); ok && k == "hosts" {
				for _, h := range hosts {
					for hk := range h.(map[string]any) {
						if !keys["hosts."+hk] {
							t.Errorf("%s: host key %q is not in $defs/host_status", what, hk)
						}
					}
				}
			}
		}
		n++
	}
	return n
}

// TestJSONSchema validates the real --json output of every command that writes it against
// docs/json.schema.json: results of each status, stream events of each type, --outdir status
// files, and the daemon's status.
func TestJSONSchema(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	schemas, defs := schema(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "local.toml")
	os.WriteFile(cfg, []byte(`[daemon]
use = false

[agent]
install_dir = "`+filepath.Join(dir, "agents")+`"

[[host]]
name = "node[1-3]"
transport = "local"

[[host]]
name = "dead"
address = "127.0.0.1"
port = 1
transport = "ssh"
`), 0o600)
	base := []string{"--config", cfg, "--no-daemon"}
	// ok, failed (exit and signal), binary output, stderr; unreachable; timeout.
	cmd := `case $SHOAL_RUN_DIR in */node2/*) printf '\377\376' ; echo err >&2; exit 3;; */node3/*) kill -KILL $$;; esac; echo hello`
	seen := map[string]bool{}
	for _, args := range [][]string{
		{"run", "--json", "node[1-3],dead", "--", cmd},
		{"run", "--json", "--timeout", "1s", "node1", "--", "sleep 30"},
		{"run", "-o", "stream", "--json", "node[1-3],dead", "--", cmd},
		{"run", "-o", "json", "--outdir", filepath.Join(dir, "out"), "node[1-2]", "--", cmd},
	} {
		out, errOut, _ := shoal(t, dir, "", append(base, args...)...)
		def := "result"
		if slices.Contains(args, "stream") {
			def = "event"
		}
		if validate(t, strings.Join(args[:len(args)-2], " "), def, out, schemas, defs) == 0 {
			t.Errorf("shoal %q wrote no JSON\nstderr:\n%s", args, errOut)
		}
		for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
			var m map[string]any
			json.Unmarshal([]byte(line), &m)
			seen[def+":"+str(m["status"])+str(m["type"])] = true
			if _, ok := m["stdout_b64"]; ok {
				seen["stdout_b64"] = true
			}
			if _, ok := m["data_b64"]; ok {
				seen["data_b64"] = true
			}
		}
	}
	for _, want := range []string{"result:ok", "result:failed", "result:unreachable", "result:timeout", "stdout_b64",
		"event:start", "event:stdout", "event:stderr", "event:okend", "event:failedend", "event:unreachableend", "data_b64"} {
		if !seen[want] {
			t.Errorf("no %s in the output: the test no longer covers it (seen %v)", want, seen)
		}
	}
	statuses, _ := filepath.Glob(filepath.Join(dir, "out", "*.status"))
	if len(statuses) != 2 {
		t.Errorf("--outdir wrote %v; want 2 status files", statuses)
	}
	for _, p := range statuses {
		b, _ := os.ReadFile(p)
		validate(t, filepath.Base(p), "status_file", string(b), schemas, defs)
	}

	// The daemon's status, with sessions in it.
	daemonCfg := filepath.Join(dir, "daemon.toml")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(daemonCfg, bytes.Replace(b, []byte("use = false"), []byte("use = true"), 1), 0o600)
	t.Cleanup(func() {
		shoal(t, dir, "", "--config", daemonCfg, "daemon", "stop")
		stopMarked(filepath.Join(dir, "run"))
	})
	if _, errOut, code := shoal(t, dir, "", "--config", daemonCfg, "run", "node[1-2],dead", "--", "true"); code != 255 {
		t.Fatalf("run through the daemon: status %d\n%s", code, errOut)
	}
	out, errOut, code := shoal(t, dir, "", "--config", daemonCfg, "daemon", "status", "-o", "json")
	if code != 0 || validate(t, "daemon status -o json", "daemon_status", out, schemas, defs) != 1 || !strings.Contains(out, `"state":"ready"`) {
		t.Errorf("daemon status -o json: status %d\n%s\n%s", code, out, errOut)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
