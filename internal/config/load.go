package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/adrg/xdg"
	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// SystemConfigFile is the system-wide configuration, beneath every user file.
// It is a variable so tests and packagers can move it.
var SystemConfigFile = "/etc/shoal/config.toml"

// maxConfigSize bounds how much of a configuration file is read.
const maxConfigSize = 16 << 20

type position struct {
	file string
	line int
}

// Parse decodes one configuration file over the defaults and validates the result.
// name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	c := Default()
	if err := c.layer(name, data); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Load reads the configuration. With path "" it lays, from lowest to highest precedence,
// SystemConfigFile, shoal/config.toml in each $XDG_CONFIG_DIRS entry, and
// $XDG_CONFIG_HOME/shoal/config.toml over the defaults; missing files are skipped.
// Otherwise it reads only path, which must exist.
func Load(path string) (*Config, error) {
	if path != "" {
		return LoadFiles(path)
	}
	return load(ConfigFiles(), true)
}

// LoadFiles lays the given files over the defaults, the last taking precedence; each must exist.
func LoadFiles(files ...string) (*Config, error) {
	return load(files, false)
}

// load lays files over the defaults and validates the result; skipMissing passes over files
// that do not exist.
func load(files []string, skipMissing bool) (*Config, error) {
	c := Default()
	var errs Errors // from every file, not only the first with any
	type file struct {
		name string
		data []byte
	}
	var read []file
	for _, f := range files {
		data, err := readConfig(f)
		if skipMissing && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		read = append(read, file{f, data})
		var es Errors
		var e *Error
		switch err := c.layer(f, data); {
		case errors.As(err, &es):
			errs = append(errs, es...)
		case errors.As(err, &e):
			errs = append(errs, e)
		case err != nil:
			return nil, err
		}
	}
	if len(errs) > 0 {
		// Report the values the decoder never reached as well, in the same pass: lay the
		// files again with the lines already reported blanked (so every other line keeps its
		// number) and validate that. When that does not decode either (a value spanning
		// lines), what was found is what is reported.
		bad := map[string]map[int]bool{}
		for _, e := range errs {
			if e.Line > 0 {
				if bad[e.File] == nil {
					bad[e.File] = map[int]bool{}
				}
				bad[e.File][e.Line] = true
			}
		}
		c2 := Default()
		for _, f := range read {
			if c2.layer(f.name, blankLines(f.data, bad[f.name])) != nil {
				return nil, errs
			}
		}
		var more Errors
		if errors.As(c2.Validate(), &more) {
			for _, e := range more {
				if !slices.ContainsFunc(errs, func(x *Error) bool { return x.Key == e.Key }) {
					errs = append(errs, e)
				}
			}
		}
		order := func(e *Error) int { return slices.IndexFunc(read, func(f file) bool { return f.name == e.File }) }
		slices.SortStableFunc(errs, func(a, b *Error) int {
			if d := order(a) - order(b); d != 0 {
				return d
			}
			return a.Line - b.Line
		})
		return nil, errs
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// blankLines returns data with the given lines (from 1) emptied, every other line in its place.
func blankLines(data []byte, lines map[int]bool) []byte {
	if len(lines) == 0 {
		return data
	}
	parts := bytes.SplitAfter(data, []byte("\n"))
	for i := range parts {
		if lines[i+1] {
			parts[i] = []byte("\n")
		}
	}
	return bytes.Join(parts, nil)
}

// readConfig reads one configuration file, naming it once in any error.
func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration %s: %w", path, withoutPath(err))
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("reading configuration %s: is a directory, not a file", path)
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading configuration %s: %w", path, withoutPath(err))
	}
	if n > maxConfigSize {
		return nil, fmt.Errorf("reading configuration %s: larger than %d bytes", path, maxConfigSize)
	}
	return buf.Bytes(), nil
}

// withoutPath returns the cause inside a *fs.PathError, whose path the caller already names.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ConfigFiles returns the files Load("") reads, lowest precedence first.
func ConfigFiles() []string {
	xdgMu.Lock()
	defer xdgMu.Unlock()
	xdg.Reload()
	files := []string{SystemConfigFile}
	for i := len(xdg.ConfigDirs) - 1; i >= 0; i-- {
		files = append(files, filepath.Join(xdg.ConfigDirs[i], "shoal", "config.toml"))
	}
	files = append(files, filepath.Join(xdg.ConfigHome, "shoal", "config.toml"))
	var out []string
	for _, f := range files {
		if !containsPath(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// containsPath reports whether list holds p, comparing cleaned paths.
func containsPath(list []string, p string) bool {
	for _, q := range list {
		if filepath.Clean(q) == filepath.Clean(p) {
			return true
		}
	}
	return false
}

// layer decodes one file over c: keys it sets replace earlier values, tags merge by name,
// and its [[host]] entries follow the earlier ones.
func (c *Config) layer(name string, data []byte) error {
	hostBase := len(c.Hosts)
	pos, perr := keyPositions(name, data, hostBase)
	prevHosts := c.Hosts
	c.Hosts = nil
	if c.Tags == nil {
		c.Tags = map[string]string{}
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(c)
	c.Hosts = append(prevHosts, c.Hosts...)
	if perr == nil {
		// The decoder stops at the first problem and takes keys in any case (nAme for name);
		// the walk lists every problem and holds keys to their exact spelling, as TOML does.
		if errs := schemaErrors(name, data, hostBase); len(errs) > 0 {
			return errs
		}
	}
	if err != nil {
		return decodeError(name, err, pos)
	}
	if perr != nil { // the decoder accepted what the position scanner did not: report it anyway
		return &Error{File: name, Msg: perr.Error()}
	}
	if c.pos == nil {
		c.pos = map[string]position{}
	}
	for k, v := range pos {
		c.pos[k] = v
	}
	c.files = append(c.files, name)
	return nil
}

// decodeError turns go-toml's errors into Errors naming file, line and key.
func decodeError(name string, err error, pos map[string]position) error {
	keyAt := func(key []string, line int) string {
		// Prefer the indexed path the position scan found on that line (host[3].port).
		want := strings.Join(key, ".")
		best := ""
		for k, p := range pos {
			if p.line == line && stripIndex(k) == want && (best == "" || k < best) {
				best = k
			}
		}
		if best != "" {
			return best
		}
		return want
	}
	var sme *toml.StrictMissingError
	if errors.As(err, &sme) {
		var errs Errors
		for i := range sme.Errors {
			de := &sme.Errors[i]
			line, _ := de.Position()
			errs = append(errs, &Error{File: name, Line: line, Key: keyAt(de.Key(), line), Msg: "unknown key"})
		}
		return errs
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if strings.HasPrefix(msg, "cannot decode TOML ") {
			msg = "wrong type: " + typeMessage(msg)
		}
		return Errors{{File: name, Line: line, Key: keyAt(de.Key(), line), Msg: msg}}
	}
	return Errors{{File: name, Msg: err.Error()}}
}

// typeMessage rewords go-toml's "cannot decode TOML string into struct field config.SSH.Port of type int".
func typeMessage(msg string) string {
	msg = strings.TrimPrefix(msg, "cannot decode TOML ")
	from, rest, ok := strings.Cut(msg, " into ")
	if !ok {
		return msg
	}
	if i := strings.LastIndex(rest, " of type "); i >= 0 {
		rest = rest[i+len(" of type "):]
	}
	return "expected " + expected(rest) + ", got a TOML " + from
}

// stripIndex removes the array indexes from a key path: host[2].user becomes host.user.
func stripIndex(k string) string {
	var b strings.Builder
	skip := false
	for i := 0; i < len(k); i++ {
		switch {
		case k[i] == '[':
			skip = true
		case k[i] == ']':
			skip = false
		case !skip:
			b.WriteByte(k[i])
		}
	}
	return b.String()
}

// keyPositions maps every key path in data ("ssh.port", "tags.web", "host[2].user") to its line.
// Array-of-table indexes start at hostBase for "host", so paths match the merged Config.
func keyPositions(name string, data []byte, hostBase int) (map[string]position, error) {
	out := map[string]position{}
	var p unstable.Parser
	p.Reset(data)
	lines := newLineIndex(data)
	var table []string
	counts := map[string]int{"host": hostBase}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			parts, line := keyParts(lines, e.Key())
			table = parts
			out[strings.Join(table, ".")] = position{name, line}
		case unstable.ArrayTable:
			parts, line := keyParts(lines, e.Key())
			base := strings.Join(parts, ".")
			i := counts[base]
			counts[base] = i + 1
			table = append(parts[:len(parts)-1:len(parts)-1], fmt.Sprintf("%s[%d]", parts[len(parts)-1], i))
			out[strings.Join(table, ".")] = position{name, line}
		case unstable.KeyValue:
			parts, line := keyParts(lines, e.Key())
			full := append(append([]string{}, table...), parts...)
			out[strings.Join(full, ".")] = position{name, line}
		}
	}
	return out, p.Error()
}

// keyParts returns the parts of a dotted key and the line it starts on, found in lines.
// (The parser's own Shape counts lines from the start of the file on every call, which made
// a file of many [[host]] entries cost quadratic time.)
func keyParts(lines lineIndex, it unstable.Iterator) ([]string, int) {
	var parts []string
	line := 0
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = lines.line(int(n.Raw.Offset))
		}
		parts = append(parts, string(n.Data))
	}
	return parts, line
}

// lineIndex holds the offset of every newline of a file, to find an offset's line.
type lineIndex []int

func newLineIndex(data []byte) lineIndex {
	var ix lineIndex
	for i, b := range data {
		if b == '\n' {
			ix = append(ix, i)
		}
	}
	return ix
}

// line returns the 1-based line that holds the byte at offset.
func (ix lineIndex) line(offset int) int {
	n, _ := slices.BinarySearch(ix, offset)
	return n + 1
}

// xdgMu serialises xdg.Reload, which rewrites the xdg package's variables.
var xdgMu sync.Mutex

// Paths are where shoal keeps its files.
type Paths struct {
	ConfigFile string // $XDG_CONFIG_HOME/shoal/config.toml
	StateDir   string // $XDG_STATE_HOME/shoal: state file, audit log, history, results
	CacheDir   string // $XDG_CACHE_HOME/shoal: agent binaries
	RuntimeDir string // $XDG_RUNTIME_DIR/shoal, or StateDir/runtime when XDG_RUNTIME_DIR is unset: the socket
}

// Socket is the daemon's Unix socket: every client and daemon finds it here.
func (p Paths) Socket() string { return filepath.Join(p.RuntimeDir, "shoal.sock") }

// DefaultPaths returns the paths for the current user, reading the XDG variables afresh.
func DefaultPaths() Paths {
	xdgMu.Lock()
	defer xdgMu.Unlock()
	xdg.Reload()
	p := Paths{
		ConfigFile: filepath.Join(xdg.ConfigHome, "shoal", "config.toml"),
		StateDir:   filepath.Join(xdg.StateHome, "shoal"),
		CacheDir:   filepath.Join(xdg.CacheHome, "shoal"),
	}
	if os.Getenv("XDG_RUNTIME_DIR") != "" {
		p.RuntimeDir = filepath.Join(xdg.RuntimeDir, "shoal")
	} else {
		p.RuntimeDir = filepath.Join(p.StateDir, "runtime")
	}
	return p
}
