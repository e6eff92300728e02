package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/pelletier/go-toml/v2"
	"github.com/shoal-sh/shoal/internal/hostlist"
)

func TestDefaultValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestExample(t *testing.T) {
	c, err := Parse("example.toml", []byte(Example()))
	if err != nil {
		t.Fatalf("the example does not pass its own check: %v", err)
	}
	if len(c.Hosts) == 0 || len(c.Tags) == 0 {
		t.Error("the example sets no hosts or tags")
	}
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range allKeys(t) {
		last := key[strings.LastIndex(key, ".")+1:]
		if !regexp.MustCompile(`(?m)^#?\s*` + regexp.QuoteMeta(last) + ` = `).MatchString(Example()) {
			t.Errorf("example.toml does not show %s", key)
		}
		if !strings.Contains(string(doc), "`"+key+"`") {
			t.Errorf("docs/config.md does not document `%s`", key)
		}
	}
}

// allKeys lists every key of the schema as a dotted path, from a configuration that sets them all.
func allKeys(t *testing.T) []string {
	c := Default()
	c.Hosts = []Host{{Name: "x", Address: "a", Port: 1, User: "u", Transport: "ssh", Tags: []string{"t"}}}
	c.Gateways = []Gateway{{Address: "tls://g:1", Hosts: "x", TLSCert: "c", TLSKey: "k", CA: "a"}}
	c.TagSources = []TagSource{{Name: "s", Kind: "command", Path: "p", List: "l", Map: "m", Section: "x", Cache: Duration(1), Timeout: Duration(1)}}
	b, err := toml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := toml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			if k == "tags" {
				keys = append(keys, k)
				continue
			}
			for kk := range v {
				keys = append(keys, k+"."+kk)
			}
		case []any:
			for kk := range v[0].(map[string]any) {
				keys = append(keys, k+"."+kk)
			}
		default:
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, toml, want string }{
		{"broken", "fanout = 3\n[ssh\nport = 2", "f.toml:2: "},
		{"broken string", "[ssh]\nuser = \"x", "f.toml:2: unterminated basic string"},
		{"duplicate", "fanout = 1\nfanout = 2", "f.toml:2: fanout: key fanout is already defined"},
		{"unknown key", "fanout = 1\nfanuot = 2", "f.toml:2: fanuot: unknown key"},
		{"unknown table", "[sssh]\nport = 22", "f.toml:1: sssh: unknown key"},
		{"unknown nested", "[ssh]\nport = 22\nidentity = 'x'", "f.toml:3: ssh.identity: unknown key"},
		{"key case", "[[host]]\nnAme = 'a'", "f.toml:2: host[0].nAme: unknown key"},
		{"unknown host key", "[[host]]\nname = 'a'\n[[host]]\nname = 'b'\naddr = 'x'", "f.toml:5: host[1].addr: unknown key"},
		{"wrong type", "[ssh]\nport = \"22\"", "f.toml:2: ssh.port: wrong type: expected an integer, got a TOML string"},
		{"wrong type bool", "[daemon]\nuse = 1", "f.toml:2: daemon.use: wrong type: expected true or false"},
		{"wrong type table", "tags = 3", "f.toml:1: tags: wrong type"},
		{"negative fanout", "fanout = -4", "f.toml:1: fanout: must be at least 1, not -4"},
		{"zero fanout", "\nfanout = 0", "f.toml:2: fanout: must be at least 1"},
		{"unknown transport", "[[host]]\nname = 'a'\ntransport = 'telnet'", "f.toml:3: host[0].transport: must be one of ssh, openssh, local, not \"telnet\""},
		{"bad duration", "command_timeout = '10 minutes'", "f.toml:1: command_timeout: bad duration \"10 minutes\""},
		{"bare duration", "[ssh]\nconnect_timeout = 30", "f.toml:2: ssh.connect_timeout: 30 is a bare number of nanoseconds"},
		{"bare large duration", "command_timeout = 5000000000", "f.toml:1: command_timeout: 5000000000 is a bare number of nanoseconds"},
		{"negative duration", "[daemon]\nidle_exit = '-5s'", "f.toml:2: daemon.idle_exit: must not be negative"},
		{"bad size", "[agent]\noutput_cap = '12 parsecs'", "f.toml:2: agent.output_cap: bad size"},
		{"small size", "[agent]\noutput_cap = 10", "f.toml:2: agent.output_cap: must be at least 4KiB"},
		{"bad port", "[ssh]\nport = 70000", "f.toml:2: ssh.port: must be a port number"},
		{"known hosts", "[ssh]\nknown_hosts = 'yolo'", "f.toml:2: ssh.known_hosts: must be \"strict\" or \"accept-new\""},
		{"output mode", "[console]\noutput = 'fancy'", "f.toml:2: console.output: must be one of gathered, stream, json"},
		{"history", "[console]\nhistory_size = -1", "f.toml:2: console.history_size: must not be negative"},
		{"max running", "[agent]\nmax_running = 0", "f.toml:2: agent.max_running: must be at least 1"},
		{"upload compression", "[agent]\nupload_compression = 'xz'", "f.toml:2: agent.upload_compression: must be one of auto, gzip, zstd, none, not \"xz\""},
		{"listen no tls", "[daemon]\nlisten = ':9007'", "f.toml:2: daemon.listen: needs daemon.tls_cert and daemon.tls_key"},
		{"listen no ca", "[daemon]\nlisten = ':9007'\ntls_cert = 'c'\ntls_key = 'k'", "f.toml:2: daemon.listen: needs daemon.client_ca"},
		{"listen bad", "[daemon]\nlisten = 'nowhere'\ntls_cert = 'c'\ntls_key = 'k'\nclient_ca = 'ca'", "f.toml:2: daemon.listen: must be HOST:PORT"},
		{"metrics bad", "[daemon]\nmetrics_listen = 'nowhere'", "f.toml:2: daemon.metrics_listen: must be HOST:PORT"},
		{"log files", "[daemon]\nlog_files = 0", "f.toml:2: daemon.log_files: must be at least 1"},
		{"audit unknown", "[audit]\nsyslg = true", "syslg"},
		{"tag cycle", "[tags]\nb = 'x,@c'\nc = '@d'\nd = 'y,@b'", "f.toml:2: tags.b: tag cycle: @b -> @c -> @d -> @b"},
		{"tag self", "[tags]\nme = '@me'", "f.toml:2: tags.me: tag cycle: @me -> @me"},
		{"tag syntax", "[tags]\nweb = 'web[01-'", "f.toml:2: tags.web: web[01-: unclosed '[' at column 4"},
		{"tag unknown", "[tags]\nweb = '@nope'", "f.toml:2: tags.web: expanding @nope: unknown tag"},
		{"tag all", "[tags]\nall = 'x'", "f.toml:2: tags.all: \"all\" is reserved"},
		{"tag name", "[tags]\n'we b' = 'x'", "f.toml:2: tags.we b: \"we b\" is not a valid tag name"},
		{"host name", "[[host]]\nname = '@web'", "f.toml:2: host[0].name: \"@web\" must be host names and ranges"},
		{"host no name", "[[host]]\nport = 22", "f.toml:1: host[0].name: is missing"},
		{"host bad range", "[[host]]\nname = 'n[3-1]'", "f.toml:2: host[0].name: n[3-1]: range 3-1 goes backwards at column 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tt.toml))
			if err == nil {
				t.Fatalf("Parse(%q): no error; want %q", tt.toml, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %q; want it to contain %q", tt.toml, err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "f.toml" {
				t.Errorf("error %v is not a *config.Error naming the file", err)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	_, err := Parse("f.toml", []byte("fanout = -1\n[ssh]\nport = -1\n[console]\noutput = 'x'\n"))
	var es Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Fatalf("got %v; want three errors", err)
	}
}

// TestParseReportsAllKeyErrors checks that every unknown key and every value of the wrong
// type or form is reported, each with its line and key, not only the first the decoder meets.
func TestParseReportsAllKeyErrors(t *testing.T) {
	data := `fanout = "many"
command_timeout = "10 minutes"
[ssh]
port = "22"
user = 5
prot = 22
identity_files = ["a", 3]
[agent]
output_cap = "12 parsecs"
[[host]]
name = "a"
porrt = 1
[[host]]
name = "b"
port = "x"
[tags]
web = 3
[sssh]
x = 1
`
	want := []string{
		`f.toml:1: fanout: wrong type: expected an integer, got a TOML string`,
		`f.toml:2: command_timeout: bad duration "10 minutes"`,
		`f.toml:4: ssh.port: wrong type: expected an integer, got a TOML string`,
		`f.toml:5: ssh.user: wrong type: expected a string, got a TOML integer`,
		`f.toml:6: ssh.prot: unknown key`,
		`f.toml:7: ssh.identity_files: wrong type: expected a string, got a TOML integer`,
		`f.toml:9: agent.output_cap: bad size "12 parsecs"`,
		`f.toml:12: host[0].porrt: unknown key`,
		`f.toml:15: host[1].port: wrong type: expected an integer, got a TOML string`,
		`f.toml:17: tags.web: wrong type: expected a string, got a TOML integer`,
		`f.toml:18: sssh: unknown key`,
	}
	_, err := Parse("f.toml", []byte(data))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Parse: %v; want Errors", err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Error())
	}
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !strings.HasPrefix(g, w) || (w == "" && g != "") {
			t.Errorf("error %d: got %q; want %q", i, g, w)
		}
	}
}

// TestValidateErrorsInLineOrder checks that value errors come out in the order of the file.
func TestValidateErrorsInLineOrder(t *testing.T) {
	_, err := Parse("f.toml", []byte("[console]\noutput = 'x'\n[tags]\nweb = '@nope'\n[[host]]\nname = 'a'\ntransport = 'telnet'\n[ssh]\nport = -1\n"))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Parse: %v; want Errors", err)
	}
	var lines []int
	for _, e := range es {
		lines = append(lines, e.Line)
	}
	if want := []int{2, 4, 7, 9}; !slices.Equal(lines, want) {
		t.Errorf("error lines = %v; want %v\n%v", lines, want, err)
	}
}

// TestOutputModeSpellings checks that console.output takes the spellings the -o flag and the
// console take: gather as well as gathered.
func TestOutputModeSpellings(t *testing.T) {
	for _, mode := range []string{"gathered", "gather", "stream", "json"} {
		if _, err := Parse("f.toml", []byte("[console]\noutput = '"+mode+"'\n")); err != nil {
			t.Errorf("output = %q: %v", mode, err)
		}
	}
}

func TestCycleReportedOnce(t *testing.T) {
	_, err := Parse("f.toml", []byte("[tags]\na = '@b'\nb = '@a'\nc = '@a'\n"))
	if n := strings.Count(err.Error(), "tag cycle"); n != 1 {
		t.Errorf("cycle reported %d times: %v", n, err)
	}
}

// setXDG points every XDG variable into a temporary directory and the system file into it too.
func setXDG(t *testing.T) string {
	dir := t.TempDir()
	for _, v := range []string{"XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "XDG_DATA_HOME"} {
		t.Setenv(v, filepath.Join(dir, strings.ToLower(v)))
	}
	t.Setenv("XDG_CONFIG_DIRS", filepath.Join(dir, "dirs1")+":"+filepath.Join(dir, "dirs2"))
	old := SystemConfigFile
	SystemConfigFile = filepath.Join(dir, "etc", "shoal", "config.toml")
	t.Cleanup(func() { SystemConfigFile = old })
	return dir
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLayering(t *testing.T) {
	dir := setXDG(t)
	sys := SystemConfigFile
	dirs2 := filepath.Join(dir, "dirs2", "shoal", "config.toml")
	user := filepath.Join(dir, "xdg_config_home", "shoal", "config.toml")

	// Nothing on disk: defaults.
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Fanout != 64 || len(c.Files()) != 0 {
		t.Errorf("no files: fanout %d, files %v", c.Fanout, c.Files())
	}

	writeFile(t, sys, "fanout = 10\ncommand_timeout = '1m'\n[ssh]\nuser = 'ops'\nport = 2200\n[tags]\nweb = 'web[1-4]'\ndb = 'db1'\n[[host]]\nname = 'db1'\nuser = 'pg'\n")
	writeFile(t, dirs2, "[ssh]\nport = 2300\n")
	writeFile(t, user, "fanout = 20\n[tags]\nweb = 'web[1-2]'\n[[host]]\nname = 'web1'\nport = 22\n")
	c, err = Load("")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{sys, dirs2, user}; !slices.Equal(c.Files(), want) {
		t.Errorf("files = %v; want %v", c.Files(), want)
	}
	if c.Fanout != 20 || c.CommandTimeout.Std() != time.Minute || c.SSH.User != "ops" || c.SSH.Port != 2300 {
		t.Errorf("layered scalars: fanout %d timeout %v user %q port %d", c.Fanout, c.CommandTimeout.Std(), c.SSH.User, c.SSH.Port)
	}
	if c.Tags["web"] != "web[1-2]" || c.Tags["db"] != "db1" {
		t.Errorf("layered tags = %v", c.Tags)
	}
	if len(c.Hosts) != 2 || c.Hosts[0].Name != "db1" || c.Hosts[1].Name != "web1" {
		t.Errorf("layered hosts = %+v", c.Hosts)
	}
	if h := c.HostFor("db1"); h.User != "pg" || h.Port != 2300 {
		t.Errorf("HostFor(db1) = %+v", h)
	}

	// An error in the user file names the user file and the host's merged index.
	writeFile(t, user, "[[host]]\nname = 'web1'\ntransport = 'carrier-pigeon'\n")
	_, err = Load("")
	if err == nil || !strings.Contains(err.Error(), user+":3: host[1].transport: ") {
		t.Errorf("error in user file = %v", err)
	}
	// An error in the system file names the system file.
	writeFile(t, user, "")
	writeFile(t, sys, "\n[ssh]\nknown_hosts = 'whatever'\n")
	_, err = Load("")
	if err == nil || !strings.Contains(err.Error(), sys+":3: ssh.known_hosts: ") {
		t.Errorf("error in system file = %v", err)
	}

	// --config FILE reads only that file, and it must exist.
	only := filepath.Join(dir, "only.toml")
	writeFile(t, only, "fanout = 7\n")
	c, err = Load(only)
	if err != nil || c.Fanout != 7 || c.SSH.KnownHosts != "strict" {
		t.Errorf("Load(only) = %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestPaths(t *testing.T) {
	dir := setXDG(t)
	p := DefaultPaths()
	want := Paths{
		ConfigFile: filepath.Join(dir, "xdg_config_home", "shoal", "config.toml"),
		StateDir:   filepath.Join(dir, "xdg_state_home", "shoal"),
		CacheDir:   filepath.Join(dir, "xdg_cache_home", "shoal"),
		RuntimeDir: filepath.Join(dir, "xdg_runtime_dir", "shoal"),
	}
	if p != want {
		t.Errorf("DefaultPaths() = %+v; want %+v", p, want)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if got, want := DefaultPaths().RuntimeDir, filepath.Join(dir, "xdg_state_home", "shoal", "runtime"); got != want {
		t.Errorf("RuntimeDir without XDG_RUNTIME_DIR = %q; want %q", got, want)
	}
	files := ConfigFiles()
	want2 := []string{
		SystemConfigFile,
		filepath.Join(dir, "dirs2", "shoal", "config.toml"),
		filepath.Join(dir, "dirs1", "shoal", "config.toml"),
		filepath.Join(dir, "xdg_config_home", "shoal", "config.toml"),
	}
	if !slices.Equal(files, want2) {
		t.Errorf("ConfigFiles() = %v; want %v", files, want2)
	}
}

func TestTargets(t *testing.T) {
	dir := t.TempDir()
	hostsFile := filepath.Join(dir, "hosts")
	writeFile(t, hostsFile, "# spares\nspare[1-2]\n")
	c, err := Parse("f.toml", []byte(`
[tags]
web = "web[1-3]"
front = "@web,lb1"
spares = "^`+hostsFile+`"
everything = "@all"
[[host]]
name = "db[1-2]"
tags = ["db", "front"]
user = "pg"
[[host]]
name = "db2"
port = 2222
transport = "openssh"
address = "10.0.0.2"
[[host]]
name = "lab1"
transport = "local"
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ expr, want string }{
		{"@web", "web1 web2 web3"},
		{"@front", "db1 db2 lb1 web1 web2 web3"},
		{"@db", "db1 db2"},
		{"@spares", "spare1 spare2"},
		{"@all", "db1 db2 lab1 lb1 spare1 spare2 web1 web2 web3"},
		{"@everything", "db1 db2 lab1 lb1 spare1 spare2 web1 web2 web3"},
		{"@all!@front", "lab1 spare1 spare2"},
		{"-,x", "s1 s2 x"},
	}
	for _, tt := range tests {
		got, err := c.Targets(tt.expr, strings.NewReader("s1\ns2\n"))
		if err != nil {
			t.Errorf("Targets(%q): %v", tt.expr, err)
			continue
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("Targets(%q) = %q; want %q", tt.expr, g, tt.want)
		}
	}
	if _, err := c.Targets("@nope", nil); !errors.Is(err, hostlist.ErrUnknownTag) {
		t.Errorf("Targets(@nope) = %v", err)
	}
	h := c.HostFor("db2")
	want := HostSettings{Name: "db2", Address: "10.0.0.2", Port: 2222, User: "pg", Transport: "openssh",
		Tags: []string{"db", "everything", "front"}, KnownHosts: "strict", IdentityFiles: []string{}, ConnectTimeout: 10 * time.Second}
	if d := cmp.Diff(want, h, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("HostFor(db2) (-want +got):\n%s", d)
	}
	if h := c.HostFor("web2"); h.Transport != "ssh" || h.Address != "web2" || !slices.Equal(h.Tags, []string{"everything", "front", "web"}) {
		t.Errorf("HostFor(web2) = %+v", h)
	}
	if h := c.HostFor("lab1"); h.Transport != "local" || !slices.Equal(h.Tags, []string{"everything"}) {
		t.Errorf("HostFor(lab1) = %+v", h)
	}
	if got := c.TagNames(); !slices.Equal(got, []string{"db", "everything", "front", "spares", "web"}) {
		t.Errorf("TagNames() = %v", got)
	}
	if got := strings.Join(c.HostNames(), " "); got != "db1 db2 lab1 lb1 spare1 spare2 web1 web2 web3" {
		t.Errorf("HostNames() = %v", got)
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
	}{
		{"4096", 4096}, {"4096B", 4096}, {"1KiB", 1024}, {"1k", 1024}, {"16MiB", 16 << 20},
		{"16M", 16 << 20}, {"1MB", 1000000}, {"2GiB", 2 << 30}, {"1tib", 1 << 40}, {" 3 KiB ", 3072},
	}
	for _, tt := range tests {
		var s Size
		if err := s.UnmarshalText([]byte(tt.in)); err != nil || s != tt.want {
			t.Errorf("Size(%q) = %d, %v; want %d", tt.in, s, err, tt.want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1.5MiB", "1PiB", "99999999999GiB"} {
		var s Size
		if err := s.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("Size(%q) = %d; want an error", bad, s)
		}
	}
	for _, n := range []Size{0, 1, 1023, 1024, 16 << 20, 3 << 30, 1<<40 + 1} {
		b, _ := n.MarshalText()
		var back Size
		if err := back.UnmarshalText(b); err != nil || back != n {
			t.Errorf("Size %d -> %q -> %d, %v", n, b, back, err)
		}
	}
}

// TestRoundTrip checks that the printed effective configuration parses back to the same values.
func TestRoundTrip(t *testing.T) {
	c, err := Parse("example.toml", []byte(Example()))
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, c)
}

func checkRoundTrip(t *testing.T, c *Config) {
	t.Helper()
	b, err := toml.Marshal(c)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := Parse("printed", b)
	if err != nil {
		t.Fatalf("printed configuration does not parse: %v\n%s", err, b)
	}
	opts := []cmp.Option{cmpopts.IgnoreUnexported(Config{}), cmpopts.EquateEmpty()}
	if d := cmp.Diff(c, back, opts...); d != "" {
		t.Fatalf("round trip changed the configuration (-before +after):\n%s", d)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(Example()))
	f.Add([]byte("fanout = 3\n[ssh]\nport = 22\n"))
	f.Add([]byte("[tags]\na = '@b'\nb = '@a'\n"))
	f.Add([]byte("[[host]]\nname = 'n[1-3]'\ntags = ['x']\n[[host]]\nname = 'n2'\nport = 2\n"))
	f.Add([]byte("[agent]\noutput_cap = '1MiB'\n[daemon]\nidle_exit = '5m'\n"))
	f.Add([]byte("[ssh\n"))
	f.Add([]byte("fanout = 'x'\n[[host]]\nname = 'a'\n[host.x]\ny = 1\n[ssh]\nidentity_files = [1, {a = 2}]\nuser = {b = 3}\n"))
	f.Add([]byte("host = [{name = 'a', port = 'p'}, 3]\ntags = {web = 1}\n[[ssh]]\n[tags.a]\nb = 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *config.Error", err, err)
			}
			return
		}
		// The schema walk must agree with the decoder on what it accepted.
		if errs := schemaErrors("fuzz.toml", data, 0); len(errs) > 0 {
			t.Fatalf("Parse accepted %q but the schema walk reports %v", data, errs)
		}
		// Expanding every tag must terminate without panicking.
		for _, tag := range c.TagNames() {
			_, _ = hostlist.Expand("@"+tag, &hostlist.Options{Tags: c.tagExpr, MaxHosts: 10000, ReadFile: func(string) ([]byte, error) { return nil, nil }})
		}
		checkRoundTrip(t, c)
	})
}

// TestLoadFileErrors checks that a file that cannot be read as configuration is named once,
// with what is wrong with it.
func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	tests := []struct{ path, want string }{
		{dir, "reading configuration " + dir + ": is a directory, not a file"},
		{missing, "reading configuration " + missing + ": no such file or directory"},
	}
	for _, tt := range tests {
		_, err := Load(tt.path)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Load(%q) = %v; want %q", tt.path, err, tt.want)
		}
	}
}

// TestValidateDoesNotExpandTags checks that loading a configuration with large tags checks
// their syntax without expanding them: every command loads the configuration, and expanding
// a 500,000-host tag (and each tag naming it) on every run took seconds.
func TestValidateDoesNotExpandTags(t *testing.T) {
	data := []byte("[tags]\nbig = 'n[1-500000]'\na = '@big'\nb = '@big!n1'\nc = '@a&@b'\n[[host]]\nname = 'm[1-500000]'\n")
	allocs := testing.AllocsPerRun(1, func() {
		if _, err := Parse("f.toml", data); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 20000 {
		t.Errorf("Parse made %.0f allocations; want it not to expand the tags", allocs)
	}
}

// TestLoadReportsEveryFile checks that errors in several files are all reported, not only
// those of the first file with any.
func TestLoadReportsEveryFile(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.toml"), filepath.Join(dir, "b.toml")
	writeFile(t, a, "fanuot = 1\n")
	writeFile(t, b, "[ssh]\nport = 'x'\n")
	_, err := LoadFiles(a, b)
	want := a + ":1: fanuot: unknown key\n" + b + ":2: ssh.port: wrong type: expected an integer, got a TOML string"
	if err == nil || err.Error() != want {
		t.Errorf("LoadFiles = %v; want %q", err, want)
	}
}

// TestDocumentedDefaults checks that the default docs/config.md gives each key, the value
// `shoal config example` sets it to, and Default() agree, so the three cannot drift apart.
func TestDocumentedDefaults(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	flat := func(v any) map[string]any {
		b, err := toml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := toml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		out := map[string]any{}
		var walk func(prefix string, m map[string]any)
		walk = func(prefix string, m map[string]any) {
			for k, v := range m {
				if sub, ok := v.(map[string]any); ok && prefix == "" && k != "tags" {
					walk(k+".", sub)
					continue
				}
				out[prefix+k] = v
			}
		}
		walk("", m)
		return out
	}
	defaults := flat(Default())
	var example map[string]any
	if err := toml.Unmarshal([]byte(Example()), &example); err != nil {
		t.Fatal(err)
	}
	exampleFlat := map[string]any{}
	for k, v := range example {
		if sub, ok := v.(map[string]any); ok && k != "tags" {
			for k2, v2 := range sub {
				exampleFlat[k+"."+k2] = v2
			}
			continue
		}
		exampleFlat[k] = v
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| [^|]+ \\| `([^`]*)` \\|")
	n := 0
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		key, lit := m[1], m[2]
		want, ok := defaults[key]
		if !ok {
			continue // [[host]] and [[gateway]] keys have no default
		}
		var v map[string]any
		if err := toml.Unmarshal([]byte("v = "+lit), &v); err != nil {
			t.Errorf("docs/config.md: `%s` has default `%s`, which is no TOML value: %v", key, lit, err)
			continue
		}
		n++
		if fmt.Sprint(v["v"]) != fmt.Sprint(want) {
			t.Errorf("docs/config.md says `%s` defaults to %s; Default() has %v", key, lit, want)
		}
		if ex, ok := exampleFlat[key]; ok && fmt.Sprint(ex) != fmt.Sprint(want) {
			t.Errorf("shoal config example sets %s = %v; its default is %v", key, ex, want)
		}
	}
	if n < 20 {
		t.Errorf("found %d documented defaults in docs/config.md; want every key's", n)
	}
}

func TestMetricsAddress(t *testing.T) {
	for in, want := range map[string]string{":9108": "127.0.0.1:9108", "0.0.0.0:9108": "0.0.0.0:9108", "[::1]:1": "[::1]:1", "": ""} {
		if got := (Daemon{MetricsListen: in}).MetricsAddress(); got != want {
			t.Errorf("MetricsAddress(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestSmallDurations checks that durations under a millisecond, written with a unit, are
// accepted ("1us" was refused as a bare number), and that a bare 0 still is.
func TestSmallDurations(t *testing.T) {
	for _, v := range []string{`"1us"`, `"500ns"`, `"1.5ms"`, `0`} {
		c, err := Parse("f.toml", []byte("command_timeout = "+v))
		if err != nil {
			t.Errorf("command_timeout = %s: %v", v, err)
			continue
		}
		t.Logf("command_timeout = %s: %v", v, c.CommandTimeout.Std())
	}
}
