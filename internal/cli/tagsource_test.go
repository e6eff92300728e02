package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTagSources checks @SOURCE:GROUP from a ClusterShell groups.conf, an Ansible inventory's
// --list JSON, a genders file and a command, `shoal hosts --tags`, and completion.
func TestTagSources(t *testing.T) {
	dir := isolateConfig(t)
	td, err := filepath.Abs(filepath.Join("..", "tagsource", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "shoal.toml")
	os.WriteFile(cfg, []byte(`[tags]
gpus = "@groups:gpu"

[[tag_source]]
name = "groups"
type = "clustershell"
path = "`+td+`/clustershell/groups.conf"

[[tag_source]]
name = "ansible"
type = "ansible"
path = "`+td+`/ansible/list.json"

[[tag_source]]
name = "genders"
type = "genders"
path = "`+td+`/genders"

[[tag_source]]
name = "cmdb"
type = "command"
list = "echo edge"
map = "echo %s[1-2].dc1"
cache = "1m"
timeout = "10s"
`), 0o600)
	for expr, want := range map[string]string{
		"@groups:compute":                  "node[0001-0004]",
		"@groups:cpu":                      "node[0001-0002]",
		"@gpus":                            "node[0003-0004]",
		"@ansible:web":                     "web[01-03].example.test",
		"@genders:gpu":                     "node[3-4]",
		"@cmdb:edge":                       "edge[1-2].dc1",
		"@groups:compute&@genders:compute": "",
	} {
		code, out, errOut := runShoal(t, "", "--config", cfg, "hosts", "--fold", expr)
		if code != 0 || strings.TrimSpace(out) != want {
			t.Errorf("hosts %s: status %d, %q (stderr %q); want %q", expr, code, out, errOut, want)
		}
	}
	code, _, errOut := runShoal(t, "", "--config", cfg, "hosts", "@nosuch:web")
	if code == 0 || !strings.Contains(errOut, `no tag source "nosuch"`) || !strings.Contains(errOut, "groups, ansible, genders, cmdb") {
		t.Errorf("unknown source: status %d, %q", code, errOut)
	}
	code, _, errOut = runShoal(t, "", "--config", cfg, "hosts", "@groups:nosuch")
	if code == 0 || !strings.Contains(errOut, "unknown group") {
		t.Errorf("unknown group: status %d, %q", code, errOut)
	}
	code, out, errOut := runShoal(t, "", "--config", cfg, "hosts", "--tags")
	for _, want := range []string{"@gpus\n", "@groups:compute\n", "@ansible:prod\n", "@genders:os=el9\n", "@cmdb:edge\n"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("hosts --tags: status %d, lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
	code, out, _ = runShoal(t, "", "--config", cfg, "__complete", "hosts", "@groups:c")
	if code != 0 || !strings.Contains(out, "@groups:compute\n") || !strings.Contains(out, "@groups:cpu\n") || strings.Contains(out, "@ansible") {
		t.Errorf("completion of @groups:c: %q", out)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[[tag_source]]\nname = 'a:b'\ntype = 'ldap'\n"), 0o600)
	code, _, errOut = runShoal(t, "", "--config", bad, "hosts", "x")
	if code == 0 || !strings.Contains(errOut, "tag_source[0].name") || !strings.Contains(errOut, "tag_source[0].type: must be one of command, clustershell, genders, ansible") {
		t.Errorf("bad tag source: status %d, %q", code, errOut)
	}
}
