// Package config holds shoal's TOML configuration: the schema, its defaults, validation and XDG paths.
package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/hostlist"
	"github.com/shoal-sh/shoal/internal/tagsource"
)

// Config is the effective configuration: defaults with every configuration file laid over them.
// Build it with Default, Parse or Load; do not modify it after the first call to Targets or HostFor.
type Config struct {
	Fanout         int      `toml:"fanout"`
	CommandTimeout Duration `toml:"command_timeout"`

	SSH     SSH               `toml:"ssh"`
	Tags    map[string]string `toml:"tags"`
	Hosts   []Host            `toml:"host"`
	Agent   Agent             `toml:"agent"`
	Daemon  Daemon            `toml:"daemon"`
	Console Console           `toml:"console"`
	Run     Run               `toml:"run"`
	Client  Client            `toml:"client"`
	Audit   Audit             `toml:"audit"`
	// Gateways are other daemons that reach some hosts for this one.
	Gateways []Gateway `toml:"gateway"`
	// TagSources offer groups kept elsewhere (ClusterShell, genders, Ansible, commands),
	// named @SOURCE:GROUP in target expressions.
	TagSources []TagSource `toml:"tag_source"`

	files []string            // files read, lowest precedence first
	pos   map[string]position // where each key was last set

	mu      sync.Mutex
	index   *hostIndex          // built on first use by Targets and HostFor
	members map[string][]string // host → tags, built on first use by HostFor
	// entryTags maps a tag to the names of the [[host]] entries that list it, built on
	// first use by tagExpr and TagNames.
	entryTags   map[string][]string
	entryTagsOf int                          // len(Hosts) when entryTags was built
	sources     map[string]*tagsource.Source // by name, built on first use by tagExpr
}

// TagSource is one [[tag_source]] entry: where a set of groups comes from (see package tagsource).
type TagSource struct {
	Name    string   `toml:"name"`
	Kind    string   `toml:"type"`
	Path    string   `toml:"path,omitempty"`
	List    string   `toml:"list,omitempty"`
	Map     string   `toml:"map,omitempty"`
	Section string   `toml:"section,omitempty"`
	Cache   Duration `toml:"cache,omitempty"`
	Timeout Duration `toml:"timeout,omitempty"`
}

// SSH holds the defaults for SSH connections.
type SSH struct {
	User           string   `toml:"user"`
	Port           int      `toml:"port"`
	Config         string   `toml:"ssh_config"`
	KnownHosts     string   `toml:"known_hosts"`
	KnownHostsFile string   `toml:"known_hosts_file"`
	IdentityFiles  []string `toml:"identity_files"`
	ConnectTimeout Duration `toml:"connect_timeout"`
	// BastionStartups bounds the connections set up at once through one jump host.
	BastionStartups int `toml:"bastion_startups"`
}

// Host overrides settings for the hosts its Name expands to.
type Host struct {
	Name      string   `toml:"name"`
	Address   string   `toml:"address,omitempty"`
	Port      int      `toml:"port,omitempty"`
	User      string   `toml:"user,omitempty"`
	Transport string   `toml:"transport,omitempty"`
	Tags      []string `toml:"tags,omitempty"`
}

// Agent holds the limits and locations of the remote agent.
type Agent struct {
	MaxRunning  int    `toml:"max_running"`
	MaxQueued   int    `toml:"max_queued"`
	OutputCap   Size   `toml:"output_cap"`
	InstallDir  string `toml:"install_dir"`
	PlatformDir string `toml:"platform_dir"`
	// UploadCompression is how the agent binary travels on first contact: "auto" (zstd when
	// the host has it, else gzip when it has that), "gzip", "zstd" or "none".
	UploadCompression string `toml:"upload_compression"`
}

// Daemon holds the settings of the resident daemon.
type Daemon struct {
	Use                  bool     `toml:"use"`
	Listen               string   `toml:"listen"`
	TLSCert              string   `toml:"tls_cert"`
	TLSKey               string   `toml:"tls_key"`
	ClientCA             string   `toml:"client_ca"`
	InsecureNoClientAuth bool     `toml:"insecure_no_client_auth"`
	IdleExit             Duration `toml:"idle_exit"`
	IdleHostTimeout      Duration `toml:"idle_host_timeout"`
	AuditMaxSize         Size     `toml:"audit_max_size"`
	HistoryRuns          int      `toml:"history_runs"`
	HistorySize          Size     `toml:"history_size"`
	KeepOnDisconnect     bool     `toml:"keep_on_disconnect"`
	// MetricsListen is where Prometheus metrics are served over HTTP ("" = nowhere); a bare
	// ":PORT" means the loopback address only (MetricsAddress).
	MetricsListen string `toml:"metrics_listen"`
	// LogMaxSize is the size at which daemon.log is rotated; LogFiles rotated logs are kept.
	LogMaxSize Size `toml:"log_max_size"`
	LogFiles   int  `toml:"log_files"`
}

// MetricsAddress returns the address to serve metrics on: metrics_listen, with a missing
// host meaning 127.0.0.1 (metrics are for the local Prometheus unless an address says else).
func (d Daemon) MetricsAddress() string {
	host, port, err := net.SplitHostPort(d.MetricsListen)
	if err != nil || host != "" {
		return d.MetricsListen
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// Audit holds where audit records go besides the audit log file.
type Audit struct {
	// Syslog also sends every record to the local syslog daemon (journald on systemd hosts).
	Syslog bool `toml:"syslog"`
}

// Client holds how consoles, one-shot commands and gateway links reach a daemon
// over mutual TLS. Empty paths default to the files `shoal certs issue` writes
// (see ClientTLSFiles).
type Client struct {
	Daemon  string `toml:"daemon"`   // "tls://HOST:PORT"; "" = the local daemon
	TLSCert string `toml:"tls_cert"` // this client's certificate
	TLSKey  string `toml:"tls_key"`
	CA      string `toml:"ca"` // CA the daemon's certificate must chain to
}

// Gateway names a daemon that reaches the hosts of a target expression.
type Gateway struct {
	Address string `toml:"address"`            // "tls://HOST:PORT"
	Hosts   string `toml:"hosts"`              // target expression, e.g. "@dc2"
	TLSCert string `toml:"tls_cert,omitempty"` // default: [client] tls_cert
	TLSKey  string `toml:"tls_key,omitempty"`  // default: [client] tls_key
	CA      string `toml:"ca,omitempty"`       // default: [client] ca
}

// ClientTLSFiles returns the certificate, key and CA files a client shows a daemon:
// the [client] keys, or where `shoal certs issue $USER` and `shoal certs init` put them.
func (c *Config) ClientTLSFiles() (cert, key, ca string) {
	dir := filepath.Join(filepath.Dir(DefaultPaths().ConfigFile), "tls")
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	cert, key, ca = ExpandHome(c.Client.TLSCert), ExpandHome(c.Client.TLSKey), ExpandHome(c.Client.CA)
	if cert == "" {
		cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	}
	if ca == "" {
		ca = filepath.Join(dir, "ca.pem")
	}
	return cert, key, ca
}

// TLSAddress returns HOST:PORT from a "tls://HOST:PORT" address.
func TLSAddress(addr string) (string, error) {
	rest, ok := strings.CutPrefix(addr, "tls://")
	if !ok {
		return "", fmt.Errorf("daemon address %q must start with tls://", addr)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil || host == "" {
		return "", fmt.Errorf("daemon address %q must be tls://HOST:PORT", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad port in daemon address %q", addr)
	}
	return rest, nil
}

// Run is how commands are run.
type Run struct {
	// KillGrace is how long a stopped command (Ctrl-C, timeout, cancel) has between SIGTERM
	// and SIGKILL to clean up; 0 means SIGKILL at once.
	KillGrace Duration `toml:"kill_grace"`
	// Env sets variables for every command on every host (NAME = "VALUE"), beside --env.
	Env map[string]string `toml:"env"`
	// Sudo runs every command through sudo as SudoUser (empty: root), as --sudo does.
	Sudo     bool   `toml:"sudo"`
	SudoUser string `toml:"sudo_user"`
	// LoginShell runs commands with a login shell (bash -l -c), as --login does.
	LoginShell bool `toml:"login_shell"`
}

// ValidEnvName reports whether name can be an environment variable's name for a command:
// a letter or underscore, then letters, digits and underscores.
func ValidEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Console holds the settings of the interactive console.
type Console struct {
	RequireIdentity bool   `toml:"require_identity"`
	HistorySize     int    `toml:"history_size"`
	Output          string `toml:"output"`
}

// UploadCompressions are the values agent.upload_compression may take.
var UploadCompressions = []string{"auto", "gzip", "zstd", "none"}

// Transports are the values a host's transport may take.
var Transports = []string{"ssh", "openssh", "local"}

// OutputModes are the console's output modes; "gather", as the -o flag spells it, is taken for "gathered".
var OutputModes = []string{"gathered", "stream", "json"}

// Known-hosts policies.
const (
	KnownHostsStrict    = "strict"
	KnownHostsAcceptNew = "accept-new"
)

// Default returns the configuration used when no file sets anything.
func Default() *Config {
	return &Config{
		Fanout: 64,
		SSH: SSH{
			KnownHosts:      KnownHostsStrict,
			ConnectTimeout:  Duration(10 * time.Second),
			BastionStartups: 10,
		},
		Tags: map[string]string{},
		Agent: Agent{
			MaxRunning: 16,
			MaxQueued:  256,
			OutputCap:  16 << 20,
			InstallDir: "~/.cache/shoal",

			UploadCompression: "auto",
		},
		Daemon: Daemon{
			Use:             true,
			IdleHostTimeout: Duration(10 * time.Minute),
			AuditMaxSize:    64 << 20,
			LogMaxSize:      16 << 20,
			LogFiles:        3,
			HistoryRuns:     100,
			HistorySize:     8 << 20,
		},
		Run: Run{KillGrace: Duration(2 * time.Second)},
		Console: Console{
			HistorySize: 10000,
			Output:      "gathered",
		},
	}
}

// Files returns the configuration files that were read, lowest precedence first.
func (c *Config) Files() []string { return slices.Clone(c.files) }

// Duration is a time.Duration written in TOML as a string such as "30s" or "1h30m".
type Duration time.Duration

// UnmarshalText parses a duration such as "30s".
func (d *Duration) UnmarshalText(b []byte) error {
	x, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (write it like \"30s\" or \"5m\")", b)
	}
	*d = Duration(x)
	return nil
}

// MarshalText writes the duration like "1m30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Size is a byte count written in TOML as an integer or a string such as "16MiB".
type Size int64

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*(B|[KMGT]|[KMGT]B|[KMGT]IB)?$`)

var sizeUnits = []struct {
	name  string
	shift uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}}

// UnmarshalText parses a size such as "512KiB", "16MiB" (or "16M"), "1GB" (decimal) or "4096".
func (s *Size) UnmarshalText(b []byte) error {
	m := sizeRE.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(string(b))))
	if m == nil {
		return fmt.Errorf("bad size %q (write it like 4096, \"512KiB\" or \"16MiB\")", b)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return fmt.Errorf("bad size %q: %w", b, err)
	}
	mul := int64(1)
	if u := m[2]; u != "" && u != "B" {
		base := int64(1024)
		if len(u) == 2 { // "KB", "MB": decimal
			base = 1000
		}
		for range strings.IndexByte("KMGT", u[0]) + 1 {
			mul *= base
		}
	}
	if n > (1<<62)/mul {
		return fmt.Errorf("size %q is too large", b)
	}
	*s = Size(n * mul)
	return nil
}

// MarshalText writes the size in the largest binary unit that divides it exactly.
func (s Size) MarshalText() ([]byte, error) {
	n := int64(s)
	for _, u := range sizeUnits {
		if n != 0 && n%(1<<u.shift) == 0 {
			return []byte(strconv.FormatInt(n>>u.shift, 10) + u.name), nil
		}
	}
	return []byte(strconv.FormatInt(n, 10)), nil
}

// Error is one problem with a configuration key; File and Line say where the key was set when known.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem Validate or Parse found, one per line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

var tagNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:+-]*$`)

// Validate checks every value and returns Errors listing each problem with where its key was set.
func (c *Config) Validate() error {
	var errs Errors
	bad := func(key, format string, args ...any) {
		e := &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
		c.locate(e)
		errs = append(errs, e)
	}
	if c.Fanout < 1 {
		bad("fanout", "must be at least 1, not %d", c.Fanout)
	}
	checkDuration := func(key string, d Duration) {
		switch {
		case d < 0:
			bad(key, "must not be negative, not %s", d.Std())
		}
	}
	checkDuration("command_timeout", c.CommandTimeout)
	checkDuration("run.kill_grace", c.Run.KillGrace)
	for _, k := range slices.Sorted(maps.Keys(c.Run.Env)) {
		if !ValidEnvName(k) {
			bad("run.env", "%q is not a variable name (letters, digits and _, not starting with a digit)", k)
		}
	}
	checkPort := func(key string, p int) {
		if p < 0 || p > 65535 {
			bad(key, "must be a port number from 1 to 65535 (0 for the default), not %d", p)
		}
	}

	// [ssh]
	checkPort("ssh.port", c.SSH.Port)
	if c.SSH.KnownHosts != KnownHostsStrict && c.SSH.KnownHosts != KnownHostsAcceptNew {
		bad("ssh.known_hosts", "must be %q or %q, not %q", KnownHostsStrict, KnownHostsAcceptNew, c.SSH.KnownHosts)
	}
	for i, f := range c.SSH.IdentityFiles {
		if strings.TrimSpace(f) == "" {
			bad("ssh.identity_files", "entry %d is empty", i+1)
		}
	}
	checkDuration("ssh.connect_timeout", c.SSH.ConnectTimeout)
	if c.SSH.BastionStartups < 1 {
		bad("ssh.bastion_startups", "must be at least 1, not %d", c.SSH.BastionStartups)
	}

	// [[host]]
	for i, h := range c.Hosts {
		key := fmt.Sprintf("host[%d]", i)
		if h.Name == "" {
			bad(key+".name", "is missing")
		} else if err := checkHostPattern(h.Name); err != nil {
			bad(key+".name", "%v", err)
		}
		checkPort(key+".port", h.Port)
		if h.Transport != "" && !slices.Contains(Transports, h.Transport) {
			bad(key+".transport", "must be one of %s, not %q", strings.Join(Transports, ", "), h.Transport)
		}
		for _, t := range h.Tags {
			if !tagNameRE.MatchString(t) || t == "all" {
				bad(key+".tags", "%q is not a valid tag name", t)
			}
		}
	}

	// [tags]
	for _, name := range c.TagNames() {
		key := "tags." + name
		if !tagNameRE.MatchString(name) {
			bad(key, "%q is not a valid tag name (letters, digits and _ . : + -)", name)
			continue
		}
		if name == "all" {
			bad(key, "\"all\" is reserved for every configured host")
			continue
		}
		if strings.TrimSpace(c.Tags[name]) == "" {
			continue
		}
		// Check, not Expand: hosts files are read and ranges expanded when the tag is used.
		err := hostlist.Check("@"+name, &hostlist.Options{Tags: c.tagExpr})
		var ce *hostlist.CycleError
		switch {
		case errors.As(err, &ce):
			// Report each cycle once, at its alphabetically first tag, starting from there.
			cyc := ce.Tags[:len(ce.Tags)-1]
			if i := slices.Index(cyc, name); i >= 0 && slices.Min(cyc) == name {
				rot := append(append(slices.Clone(cyc[i:]), cyc[:i]...), name)
				bad(key, "%v", &hostlist.CycleError{Tags: rot})
			}
		case err != nil:
			bad(key, "%v", strings.TrimPrefix(err.Error(), "expanding @"+name+": "))
		}
	}

	// [agent]
	if c.Agent.MaxRunning < 1 {
		bad("agent.max_running", "must be at least 1, not %d", c.Agent.MaxRunning)
	}
	if c.Agent.MaxQueued < 0 {
		bad("agent.max_queued", "must not be negative, not %d", c.Agent.MaxQueued)
	}
	if c.Agent.OutputCap < 4096 {
		bad("agent.output_cap", "must be at least 4KiB, not %d bytes", int64(c.Agent.OutputCap))
	}
	if strings.TrimSpace(c.Agent.InstallDir) == "" {
		bad("agent.install_dir", "must not be empty")
	}
	if !slices.Contains(UploadCompressions, c.Agent.UploadCompression) {
		bad("agent.upload_compression", "must be one of %s, not %q", strings.Join(UploadCompressions, ", "), c.Agent.UploadCompression)
	}

	// [[tag_source]]
	seenSource := map[string]bool{}
	for i, ts := range c.TagSources {
		key := fmt.Sprintf("tag_source[%d]", i)
		switch {
		case ts.Name == "" || strings.ContainsAny(ts.Name, ":@,!&^[] \t"):
			bad(key+".name", "must be a name without ':', '@', brackets, operators or spaces, not %q", ts.Name)
		case seenSource[ts.Name]:
			bad(key+".name", "%q is defined twice", ts.Name)
		}
		seenSource[ts.Name] = true
		switch ts.Kind {
		case tagsource.KindCommand:
			if ts.Map == "" || ts.List == "" {
				bad(key+".type", "a command source needs list (prints the groups) and map (prints a group's hosts, %%s for the group)")
			}
		case tagsource.KindClusterShell, tagsource.KindGenders, tagsource.KindAnsible:
			if ts.Path == "" {
				bad(key+".path", "a %s source needs path", ts.Kind)
			}
		default:
			bad(key+".type", "must be one of %s, not %q", strings.Join(tagsource.Kinds, ", "), ts.Kind)
		}
		checkDuration(key+".cache", ts.Cache)
		checkDuration(key+".timeout", ts.Timeout)
	}

	// [daemon]
	if c.Daemon.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Daemon.Listen); err != nil {
			bad("daemon.listen", "must be HOST:PORT or :PORT, not %q", c.Daemon.Listen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad("daemon.listen", "bad port in %q", c.Daemon.Listen)
		}
		if c.Daemon.TLSCert == "" || c.Daemon.TLSKey == "" {
			bad("daemon.listen", "needs daemon.tls_cert and daemon.tls_key: the network listener is TLS only")
		}
		if c.Daemon.ClientCA == "" && !c.Daemon.InsecureNoClientAuth {
			bad("daemon.listen", "needs daemon.client_ca to check client certificates (or insecure_no_client_auth = true)")
		}
	}
	if (c.Daemon.TLSCert == "") != (c.Daemon.TLSKey == "") {
		bad("daemon.tls_cert", "tls_cert and tls_key go together")
	}
	checkDuration("daemon.idle_exit", c.Daemon.IdleExit)
	checkDuration("daemon.idle_host_timeout", c.Daemon.IdleHostTimeout)
	if c.Daemon.AuditMaxSize < 0 {
		bad("daemon.audit_max_size", "must not be negative")
	}
	if c.Daemon.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.Daemon.MetricsListen); err != nil {
			bad("daemon.metrics_listen", "must be HOST:PORT or :PORT (loopback), not %q", c.Daemon.MetricsListen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad("daemon.metrics_listen", "bad port in %q", c.Daemon.MetricsListen)
		}
	}
	if c.Daemon.LogMaxSize < 1<<20 {
		bad("daemon.log_max_size", "must be at least 1MiB")
	}
	if c.Daemon.LogFiles < 1 {
		bad("daemon.log_files", "must be at least 1, not %d", c.Daemon.LogFiles)
	}
	if c.Daemon.HistoryRuns < 0 {
		bad("daemon.history_runs", "must not be negative")
	}
	if c.Daemon.HistorySize < 0 {
		bad("daemon.history_size", "must not be negative")
	}

	// [client]
	if c.Client.Daemon != "" {
		if _, err := TLSAddress(c.Client.Daemon); err != nil {
			bad("client.daemon", "%v", err)
		}
	}
	if (c.Client.TLSCert == "") != (c.Client.TLSKey == "") {
		bad("client.tls_cert", "tls_cert and tls_key go together")
	}

	// [[gateway]]
	for i, g := range c.Gateways {
		key := fmt.Sprintf("gateway[%d]", i)
		if _, err := TLSAddress(g.Address); err != nil {
			bad(key+".address", "%v", err)
		}
		if strings.TrimSpace(g.Hosts) == "" {
			bad(key+".hosts", "is missing: name the hosts this gateway reaches, e.g. \"@dc2\"")
		} else if err := hostlist.Check(g.Hosts, &hostlist.Options{Tags: c.tagExpr}); err != nil {
			bad(key+".hosts", "%v", err)
		}
		if (g.TLSCert == "") != (g.TLSKey == "") {
			bad(key+".tls_cert", "tls_cert and tls_key go together")
		}
	}

	// [console]
	if c.Console.HistorySize < 0 {
		bad("console.history_size", "must not be negative, not %d", c.Console.HistorySize)
	}
	if !slices.Contains(OutputModes, c.Console.Output) && c.Console.Output != "gather" {
		bad("console.output", "must be one of %s, not %q", strings.Join(OutputModes, ", "), c.Console.Output)
	}
	if len(errs) == 0 {
		return nil
	}
	// List the errors as they appear in the files; errors without a place come last.
	at := func(e *Error) (int, int) {
		i := slices.Index(c.files, e.File)
		if i < 0 || e.Line == 0 {
			return len(c.files), 0
		}
		return i, e.Line
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		fa, la := at(a)
		fb, lb := at(b)
		if fa != fb {
			return fa - fb
		}
		return la - lb
	})
	return errs
}

// checkHostPattern checks that a [[host]] name is names and ranges only: no tags, files or operators.
func checkHostPattern(name string) error {
	if strings.ContainsAny(name, "@^!&/ \t") || strings.HasPrefix(name, "-") {
		return fmt.Errorf("%q must be host names and ranges (like web[01-20]), without tags, files or operators", name)
	}
	return hostlist.Check(name, nil)
}

// locate fills in where e's key (or its nearest parent) was set.
func (c *Config) locate(e *Error) {
	for k := e.Key; k != ""; {
		if p, ok := c.pos[k]; ok {
			e.File, e.Line = p.file, p.line
			return
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
}
