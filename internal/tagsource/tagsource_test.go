package tagsource

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/hostlist"
)

// expand expands a group's expression with the groups of src for @src:group references.
func expand(t *testing.T, src *Source, group string) []string {
	t.Helper()
	x, err := src.Hosts(context.Background(), group)
	if err != nil {
		t.Fatalf("Hosts(%s): %v", group, err)
	}
	names, err := hostlist.Expand(x, &hostlist.Options{Tags: func(name string) (string, error) {
		s, g, ok := strings.Cut(name, ":")
		if !ok || s != src.Name() {
			return "", hostlist.ErrUnknownTag
		}
		return src.Hosts(context.Background(), g)
	}})
	if err != nil {
		t.Fatalf("expanding %s = %q: %v", group, x, err)
	}
	return names
}

func TestClusterShell(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{"testdata/clustershell/groups.conf", "testdata/clustershell/groups.d", "testdata/clustershell/groups.d/local.yaml"} {
		src := New(Spec{Name: "groups", Kind: KindClusterShell, Path: path})
		g, err := src.Groups(ctx)
		if want := []string{"all", "compute", "cpu", "gpu", "service"}; err != nil || !slices.Equal(g, want) {
			t.Errorf("%s: groups %v, %v; want %v", path, g, err, want)
		}
		for group, want := range map[string]string{
			"compute": "node0001 node0002 node0003 node0004",
			"cpu":     "node0001 node0002", // @compute!@gpu, within the source
			"service": "admin1 admin2 login1",
		} {
			if got := strings.Join(expand(t, src, group), " "); got != want {
				t.Errorf("%s: @groups:%s = %s; want %s", path, group, got, want)
			}
		}
		if _, err := src.Hosts(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "unknown group") {
			t.Errorf("%s: unknown group: %v", path, err)
		}
	}
	rack := New(Spec{Name: "r", Kind: KindClusterShell, Path: "testdata/clustershell/groups.d", Section: "rack"})
	if got := expand(t, rack, "r1"); !slices.Equal(got, []string{"node0001", "node0002"}) {
		t.Errorf("section rack: r1 = %v", got)
	}
	// groups.conf's [file] section: ClusterShell's map and list commands, $GROUP and $CFGDIR.
	file := New(Spec{Name: "f", Kind: KindClusterShell, Path: "testdata/clustershell/groups.conf", Section: "file"})
	if g, err := file.Groups(ctx); err != nil || !slices.Equal(g, []string{"login", "storage"}) {
		t.Errorf("section file: groups %v, %v", g, err)
	}
	if got := expand(t, file, "storage"); !slices.Equal(got, []string{"oss01", "oss02", "oss03", "oss04"}) {
		t.Errorf("section file: storage = %v", got)
	}
	if _, err := New(Spec{Name: "x", Kind: KindClusterShell, Path: "testdata/clustershell/groups.d", Section: "nope"}).Groups(ctx); err == nil ||
		!strings.Contains(err.Error(), "local, rack") {
		t.Errorf("missing section: %v; want the sections named", err)
	}
}

// TestGenders compares each group with what the real nodeattr says, when genders is installed.
func TestGenders(t *testing.T) {
	src := New(Spec{Name: "genders", Kind: KindGenders, Path: "testdata/genders"})
	groups, err := src.Groups(context.Background())
	if want := []string{"compute", "gpu", "login", "mgmt", "os", "os=el9", "rack", "rack=r1"}; err != nil || !slices.Equal(groups, want) {
		t.Fatalf("groups %v, %v; want %v", groups, err, want)
	}
	if got := expand(t, src, "os=el9"); !slices.Equal(got, []string{"mgmt1", "node1", "node2", "node3", "node4"}) {
		t.Errorf("os=el9 = %v", got)
	}
	if _, err := exec.LookPath("nodeattr"); err != nil {
		t.Skip("SKIPPING the comparison with nodeattr: not installed (apt-get install genders)")
	}
	for _, g := range groups {
		out, err := exec.Command("nodeattr", "-f", "testdata/genders", "-n", g).Output()
		if err != nil {
			t.Fatalf("nodeattr -n %s: %v", g, err)
		}
		want := strings.Fields(string(out))
		hostlist.Sort(want)
		if got := expand(t, src, g); !slices.Equal(got, want) {
			t.Errorf("%s: %v; nodeattr says %v", g, got, want)
		}
	}
}

// TestAnsible reads testdata/ansible/list.json (what ansible-inventory --list printed for
// hosts.ini) and, when Ansible is installed, the inventory itself through ansible-inventory.
func TestAnsible(t *testing.T) {
	paths := []string{"testdata/ansible/list.json"}
	if _, err := exec.LookPath("ansible-inventory"); err == nil {
		paths = append(paths, "testdata/ansible/hosts.ini")
		t.Setenv("ANSIBLE_HOME", t.TempDir())
		t.Setenv("ANSIBLE_LOCAL_TEMP", t.TempDir())
	} else {
		t.Log("SKIPPING ansible-inventory itself: not installed (apt-get install ansible-core)")
	}
	for _, p := range paths {
		src := New(Spec{Name: "ansible", Kind: KindAnsible, Path: p, Timeout: 2 * time.Minute})
		g, err := src.Groups(context.Background())
		if want := []string{"all", "db", "prod", "web"}; err != nil || !slices.Equal(g, want) {
			t.Errorf("%s: groups %v, %v; want %v", p, g, err, want)
			continue
		}
		if got := expand(t, src, "web"); !slices.Equal(got, []string{"web01.example.test", "web02.example.test", "web03.example.test"}) {
			t.Errorf("%s: web = %v", p, got)
		}
		if got := expand(t, src, "prod"); len(got) != 4 || got[0] != "db1.example.test" {
			t.Errorf("%s: prod (web and db, through children) = %v", p, got)
		}
	}
}

// TestCommand checks a command source: list and map, the cache, and the timeout.
func TestCommand(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	spec := Spec{Name: "cmdb", Kind: KindCommand, List: "echo web db", Map: "echo x >> " + count + "; echo %s[1-2].dc1", CacheDir: filepath.Join(dir, "cache")}
	src := New(spec)
	if g, err := src.Groups(context.Background()); err != nil || !slices.Equal(g, []string{"db", "web"}) {
		t.Errorf("groups %v, %v", g, err)
	}
	for range 2 {
		if got := expand(t, New(spec), "web"); !slices.Equal(got, []string{"web1.dc1", "web2.dc1"}) {
			t.Errorf("web = %v", got)
		}
	}
	if b, _ := os.ReadFile(count); string(b) != "x\n" {
		t.Errorf("the map command ran %d times for two lookups; want once (cached)", strings.Count(string(b), "x"))
	}
	// A group is quoted for the shell.
	if got, err := New(Spec{Name: "q", Kind: KindCommand, Map: "echo %s", Cache: -1}).Hosts(context.Background(), "a;b"); err != nil || got != "a;b" {
		t.Errorf("quoting: %q, %v", got, err)
	}
	start := time.Now()
	_, err := New(Spec{Name: "slow", Kind: KindCommand, Map: "sleep 60", Timeout: 200 * time.Millisecond, Cache: -1}).Hosts(context.Background(), "g")
	if err == nil || !strings.Contains(err.Error(), "no answer within") || time.Since(start) > 30*time.Second {
		t.Errorf("a slow command: %v after %v; want a timeout error", err, time.Since(start))
	}
	if _, err := New(Spec{Name: "f", Kind: KindCommand, Map: "echo oops >&2; exit 3", Cache: -1}).Hosts(context.Background(), "g"); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("a failing command: %v; want its stderr", err)
	}
}

func FuzzParsers(f *testing.F) {
	for _, p := range []string{"testdata/genders", "testdata/clustershell/groups.conf", "testdata/clustershell/groups.d/local.yaml", "testdata/ansible/list.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseGenders(b)
		ParseGroupsConf(b)
		ParseGroupsYAML(b)
		ParseAnsibleList(b)
	})
}
