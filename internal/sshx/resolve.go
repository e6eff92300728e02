package sshx

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ConfigError is a line of an ssh_config file that ssh rejects, or that shoal's built-in client
// cannot honour.
type ConfigError struct {
	File string
	Line int // 0 when the problem is the file as a whole
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s line %d: %s", e.File, e.Line, e.Msg)
}

// sshEnv is the local side of a resolution: the account, the machine, and how files are read
// and Match exec commands run.
type sshEnv struct {
	home, localUser, uid, thisHost string
	// readFile returns the parsed file at path; a missing file is fs.ErrNotExist. checkPerm asks
	// for ssh's check that the file is owned by the user (or root) and not writable by others.
	readFile func(path string, checkPerm bool) (*cfgFile, error)
	// exec runs a Match exec command and returns its exit status, -1 when it did not exit.
	exec func(cmd string) int
	// lookupHost reports whether name resolves (for CanonicalizeHostname); nil never resolves.
	lookupHost func(name string) bool
	getenv     func(name string) (string, bool)
}

// idFile is an IdentityFile or CertificateFile as written, and whether a user's file gave it
// (ssh keeps the same path from the user's and the system's files twice).
type idFile struct {
	path         string
	userProvided bool
}

// setting is where an option's first value was set.
type setting struct {
	args []string
	file string
	line int
}

// sshOptions are the values readconf.c's Options holds: an option absent from a map is unset.
type sshOptions struct {
	strs  map[string]string   // user, hostname, hostkeyalias, identityagent, ignoreunknown, proxycommand
	ints  map[string]int      // port, times, counts and flags (1 yes, 0 no)
	enums map[string]string   // stricthostkeychecking, canonicalizehostname: ssh -G's spelling
	lists map[string][]string // userknownhostsfile, globalknownhostsfile, canonicaldomains
	where map[string]setting  // the first line that set each option, for every keyword
	ids   []idFile
	certs []idFile

	sendEnv, setEnv []string

	jumpSet            bool
	jumpUser, jumpHost string
	jumpPort           int // -1 when not given
	jumpExtra          string
	jumpHasUser        bool
}

func newOptions() *sshOptions {
	return &sshOptions{strs: map[string]string{}, ints: map[string]int{}, enums: map[string]string{},
		lists: map[string][]string{}, where: map[string]setting{}}
}

func (o *sshOptions) clone() *sshOptions {
	c := *o
	c.strs, c.ints, c.enums = maps.Clone(o.strs), maps.Clone(o.ints), maps.Clone(o.enums)
	c.lists, c.where = maps.Clone(o.lists), maps.Clone(o.where)
	c.ids, c.certs = slices.Clone(o.ids), slices.Clone(o.certs)
	c.sendEnv, c.setEnv = slices.Clone(o.sendEnv), slices.Clone(o.setEnv)
	return &c
}

// Flags of readFile, as readconf.h's SSHCONF_*.
const (
	confCheckPerm = 1 << iota
	confUser
	confFinal
	confNeverMatch
)

// maxIncludeDepth is readconf.c's READCONF_MAX_DEPTH.
const maxIncludeDepth = 16

// pass is one reading of the configuration files for a host.
type pass struct {
	env       *sshEnv
	o         *sshOptions
	host      string // the name Host lines match: the alias, then the canonical name
	orig      string // the alias as given
	final     bool
	wantFinal *bool // nil in the final pass
}

// readFile is readconf.c's read_config_file_depth. It reports whether the file was read.
func (p *pass) readFile(path string, flags int, active *bool, depth int) (bool, error) {
	if depth > maxIncludeDepth {
		return false, &ConfigError{File: path, Msg: "too many recursive configuration includes"}
	}
	f, err := p.env.readFile(path, flags&confCheckPerm != 0)
	if err != nil {
		return false, err
	}
	for i := range f.lines {
		if err := p.line(f, &f.lines[i], flags, active, depth); err != nil {
			return true, err
		}
	}
	return true, nil
}

// line applies one line, as readconf.c's process_config_line_depth.
func (p *pass) line(f *cfgFile, l *cfgLine, flags int, active *bool, depth int) error {
	errf := func(format string, a ...any) error {
		return &ConfigError{File: f.path, Line: l.num, Msg: fmt.Sprintf(format, a...)}
	}
	if l.err != "" {
		return errf("%s", l.err)
	}
	key, known := keywords[l.keyword]
	if !known {
		if ig, ok := p.o.strs["ignoreunknown"]; ok && matchPatternList(l.keyword, ig, true) == 1 {
			return nil
		}
		return errf("bad configuration option: %s", l.keyword)
	}
	o, act, args := p.o, *active, l.args
	one := func() (string, error) {
		if len(args) == 0 || args[0] == "" {
			return "", errf("missing argument")
		}
		if len(args) > 1 {
			return "", errf("keyword %s extra arguments at end of line", l.keyword)
		}
		return args[0], nil
	}
	first := act
	if _, ok := o.where[key]; ok {
		first = false
	}
	if first && key != "host" && key != "match" && key != "include" {
		o.where[key] = setting{args: args, file: f.path, line: l.num}
	}
	switch key {
	case "ignore", "deprecated", "unsupported":
		return nil
	case "host":
		*active = false
		for _, a := range args {
			if a == "" {
				return errf("keyword %s empty argument", l.keyword)
			}
			if flags&confNeverMatch != 0 {
				break
			}
			neg := strings.HasPrefix(a, "!")
			if neg {
				a = a[1:]
			}
			if matchPattern(p.host, a) {
				if neg {
					*active = false
					break
				}
				*active = true
			}
		}
		return nil
	case "match":
		v, rest, err := p.match(l.rest, flags&confFinal != 0)
		if err != nil {
			return errf("%v", err)
		}
		if v < 0 {
			return errf("bad Match condition")
		}
		*active = flags&confNeverMatch == 0 && v == 1
		if rest != "" {
			return errf("keyword %s extra arguments at end of line", l.keyword)
		}
		return nil
	case "include":
		return p.include(f, l, args, flags, active, depth, errf)
	case "user", "hostname", "hostkeyalias", "ignoreunknown":
		v, err := one()
		if err != nil {
			return err
		}
		if _, set := o.strs[key]; act && !set {
			o.strs[key] = v
		}
	case "identityagent":
		v, err := one()
		if err != nil {
			return err
		}
		if _, err := dollarExpand(v, p.env.getenv); err != nil {
			return errf("invalid environment expansion %s", v)
		}
		if len(v) > 1 && v[0] == '$' && v[1] != '{' && !validEnvName(v[1:]) {
			return errf("invalid environment name %s", v)
		}
		if _, set := o.strs[key]; act && !set {
			o.strs[key] = v
		}
	case "port":
		v, err := one()
		if err != nil {
			return err
		}
		port := a2port(v)
		if port <= 0 {
			return errf("bad port '%s'", v)
		}
		if _, set := o.ints[key]; act && !set {
			o.ints[key] = port
		}
	case "identityfile", "certificatefile":
		v, err := one()
		if err != nil {
			return err
		}
		if act {
			list := &o.ids
			if key == "certificatefile" {
				list = &o.certs
			}
			if len(*list) >= 100 {
				return errf("too many %s entries (max 100)", l.keyword)
			}
			id := idFile{path: v, userProvided: flags&confUser != 0}
			if !slices.Contains(*list, id) {
				*list = append(*list, id)
			}
		}
	case "userknownhostsfile", "globalknownhostsfile", "canonicaldomains":
		for i, a := range args {
			if a == "" {
				return errf("keyword %s empty argument", l.keyword)
			}
			if strings.EqualFold(a, "none") && (i > 0 || len(args) > 1) {
				return errf("keyword %s \"none\" argument must appear alone", l.keyword)
			}
		}
		if len(args) > 32 {
			return errf("too many %s entries", l.keyword)
		}
		if _, set := o.lists[key]; act && !set && len(args) > 0 {
			o.lists[key] = slices.Clone(args)
		}
	case "stricthostkeychecking", "canonicalizehostname", "identitiesonly", "hashknownhosts", "batchmode",
		"passwordauthentication", "kbdinteractiveauthentication", "canonicalizefallbacklocal":
		v, err := one()
		if err != nil {
			return err
		}
		var val string
		switch key {
		case "stricthostkeychecking":
			val = multistate(v, map[string]string{"true": "true", "yes": "true", "false": "false",
				"no": "false", "off": "false", "ask": "ask", "accept-new": "accept-new"})
		case "canonicalizehostname":
			val = multistate(v, map[string]string{"true": "true", "yes": "true", "false": "false",
				"no": "false", "always": "always"})
		default:
			val = multistate(v, map[string]string{"true": "yes", "yes": "yes", "false": "no", "no": "no"})
		}
		if val == "" {
			return errf("unsupported option %q", v)
		}
		if _, set := o.enums[key]; act && !set {
			o.enums[key] = val
		}
	case "connecttimeout", "serveraliveinterval":
		v, err := one()
		if err != nil {
			return err
		}
		n := -1
		if v != "none" {
			if n = convtime(v); n < 0 {
				return errf("invalid time value")
			}
		}
		if _, set := o.ints[key]; act && !set && n >= 0 {
			o.ints[key] = n
		}
	case "serveralivecountmax", "canonicalizemaxdots", "numberofpasswordprompts", "connectionattempts":
		v, err := one()
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1<<31-1 || strings.HasPrefix(v, "+") {
			return errf("integer value %s", v)
		}
		if _, set := o.ints[key]; act && !set {
			o.ints[key] = n
		}
	case "ciphers", "kexalgorithms", "macs":
		v, err := one()
		if err != nil {
			return err
		}
		for _, a := range algoLists {
			if a.key == key && !validAlgos(v, a.all) {
				return errf("bad SSH2 %s spec '%s'", key, v)
			}
		}
		if _, set := o.strs[key]; act && !set {
			o.strs[key] = v
		}
	case "sendenv":
		for _, a := range args {
			if a == "" || strings.Contains(a, "=") {
				return errf("invalid environment name")
			}
			if !act {
				continue
			}
			if rm, ok := strings.CutPrefix(a, "-"); ok {
				o.sendEnv = slices.DeleteFunc(o.sendEnv, func(p string) bool { return matchPattern(p, rm) })
				continue
			}
			o.sendEnv = append(o.sendEnv, a)
		}
	case "setenv":
		was := len(o.setEnv)
		for _, a := range args {
			if !strings.Contains(a, "=") {
				return errf("invalid SetEnv")
			}
			if !act || was != 0 {
				continue
			}
			name, _, _ := strings.Cut(a, "=")
			if !slices.ContainsFunc(o.setEnv, func(e string) bool { return strings.HasPrefix(e, name+"=") }) {
				o.setEnv = append(o.setEnv, a)
			}
		}
	case "proxycommand":
		v := strings.TrimLeft(l.rest, whitespace+"=")
		if _, set := o.strs[key]; act && !set && !o.jumpSet {
			o.strs[key] = v
		}
	case "proxyjump":
		if err := p.parseJump(strings.TrimLeft(l.rest, whitespace+"="), act); err != nil {
			return errf("invalid ProxyJump %q", l.rest)
		}
	}
	return nil
}

func multistate(v string, m map[string]string) string { return m[strings.ToLower(v)] }

// include is readconf.c's Include: each argument a glob, relative to ~/.ssh for the user's files
// and /etc/ssh for the system's.
func (p *pass) include(f *cfgFile, l *cfgLine, args []string, flags int, active *bool, depth int, errf func(string, ...any) error) error {
	for _, a := range args {
		if a == "" {
			return errf("keyword %s empty argument", l.keyword)
		}
		if strings.HasPrefix(a, "~") && flags&confUser == 0 {
			return errf("bad include path %s", a)
		}
		if !strings.HasPrefix(a, "/") && !strings.HasPrefix(a, "~") {
			if flags&confUser != 0 {
				a = "~/.ssh/" + a
			} else {
				a = "/etc/ssh/" + a
			}
		}
		pat, err := tildeExpand(a, p.env.home)
		if err != nil {
			return errf("%v", err)
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			return errf("glob failed for %s", a)
		}
		oactive := *active
		for _, m := range matches {
			fl := flags | confCheckPerm
			if !oactive {
				fl |= confNeverMatch
			}
			_, err := p.readFile(m, fl, active, depth+1)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				var ce *ConfigError
				if errors.As(err, &ce) {
					return err
				}
				return errf("can't open user config file %s: %v", m, err)
			}
			*active = oactive
		}
	}
	return nil
}

// match is readconf.c's match_cfg_line: 1 when the criteria of a Match line hold, 0 when not,
// -1 when the line is malformed; and what is left of the line.
func (p *pass) match(cond string, final bool) (int, string, error) {
	o := p.o
	port := 22
	if v, ok := o.ints["port"]; ok {
		port = v
	}
	ruser := p.env.localUser
	if v, ok := o.strs["user"]; ok {
		ruser = v
	}
	var host string
	if hn, ok := o.strs["hostname"]; final {
		host = hn
	} else if ok {
		h, err := percentExpand(hn, map[byte]string{'h': p.host})
		if err != nil {
			return -1, "", fmt.Errorf("expanding HostName %q: %w", hn, err)
		}
		host = h
	} else {
		host = p.host
	}
	result, attributes := 1, 0
	cp, cpOK := cond, true
	for {
		attrib, rest, restOK, ok := strdelim(cp, cpOK)
		if !ok || attrib == "" {
			break
		}
		cp, cpOK = rest, restOK
		if attrib[0] == '#' {
			cp, cpOK = "", false
			break
		}
		neg := attrib[0] == '!'
		name := attrib
		if neg {
			name = attrib[1:]
		}
		if strings.EqualFold(name, "all") {
			arg, rest, restOK, ok := strdelim(cp, cpOK)
			if attributes > 1 || (ok && arg != "" && arg[0] != '#') {
				return -1, "", fmt.Errorf("'%s' cannot be combined with other Match attributes", attrib)
			}
			cp, cpOK = rest, restOK
			if ok && arg != "" && arg[0] == '#' {
				cp, cpOK = "", false
			}
			if result == 1 && neg {
				result = 0
			}
			return result, restOf(cp, cpOK), nil
		}
		attributes++
		if strings.EqualFold(name, "canonical") || strings.EqualFold(name, "final") {
			if strings.EqualFold(name, "final") && p.wantFinal != nil {
				*p.wantFinal = true
			}
			if final == neg {
				result = 0
			}
			continue
		}
		arg, rest, restOK, ok := strdelim(cp, cpOK)
		if !ok || arg == "" || arg[0] == '#' {
			return -1, "", fmt.Errorf("missing Match criteria for %s", attrib)
		}
		cp, cpOK = rest, restOK
		var r bool
		switch strings.ToLower(name) {
		case "host":
			r = matchPatternList(lowerASCII(host), arg, true) == 1
		case "originalhost":
			r = matchPatternList(lowerASCII(p.orig), arg, true) == 1
		case "user":
			r = matchPatternList(ruser, arg, false) == 1
		case "localuser":
			r = matchPatternList(p.env.localUser, arg, false) == 1
		case "exec":
			keyalias := host
			if v, ok := o.strs["hostkeyalias"]; ok {
				keyalias = v
			}
			ps := strconv.Itoa(port)
			short, _, _ := strings.Cut(p.env.thisHost, ".")
			cmd, err := percentExpand(arg, map[byte]string{
				'C': connHash(p.env.thisHost, host, ps, ruser), 'L': short, 'd': p.env.home,
				'h': host, 'k': keyalias, 'l': p.env.thisHost, 'n': p.orig, 'p': ps, 'r': ruser,
				'u': p.env.localUser, 'i': p.env.uid,
			})
			if err != nil {
				return -1, "", fmt.Errorf("expanding match exec %q: %w", arg, err)
			}
			if result != 1 {
				continue // a criterion before failed: ssh skips the command
			}
			st := p.env.exec(cmd)
			if st < 0 {
				return -1, "", fmt.Errorf("match exec '%s' error", cmd)
			}
			r = st == 0
		default:
			return -1, "", fmt.Errorf("unsupported Match attribute %s", attrib)
		}
		if r == neg {
			result = 0
		}
	}
	if attributes == 0 {
		return -1, "", errors.New("one or more attributes required for Match")
	}
	return result, restOf(cp, cpOK), nil
}

func restOf(s string, ok bool) string {
	if !ok {
		return ""
	}
	return s
}

// parseJump is readconf.c's parse_jump.
func (p *pass) parseJump(s string, active bool) error {
	o := p.o
	_, pcSet := o.strs["proxycommand"]
	active = active && !pcSet && !o.jumpSet
	orig := s
	if i := strings.IndexByte(orig, '#'); i >= 0 {
		orig = orig[:i]
	}
	orig = strings.TrimRight(orig, whitespace)
	var user, host string
	port := -1
	if !strings.EqualFold(s, "none") {
		hops := strings.Split(orig, ",")
		for i := len(hops) - 1; i >= 0; i-- {
			u, h, pt, err := parseUserHostPort(hops[i])
			if err != nil {
				return err
			}
			if i == len(hops)-1 {
				user, host, port = u, h, pt
			}
		}
	}
	if !active {
		return nil
	}
	o.jumpSet = true
	if strings.EqualFold(s, "none") {
		o.jumpHost, o.jumpPort = "none", 0
		return nil
	}
	o.jumpUser, o.jumpHasUser, o.jumpHost, o.jumpPort = user, user != "", host, port
	o.strs["proxycommand"] = "none"
	if i := strings.LastIndexByte(s, ','); i > 0 {
		o.jumpExtra = s[:i]
	}
	return nil
}

// parseUserHostPort parses a ProxyJump hop: misc.c's parse_ssh_uri, then parse_user_host_port.
func parseUserHostPort(s string) (user, host string, port int, err error) {
	bad := fmt.Errorf("bad ProxyJump hop %q", s)
	port = -1
	if rest, ok := strings.CutPrefix(s, "ssh://"); ok {
		if i := strings.IndexByte(rest, '@'); i >= 0 {
			user, rest = rest[:i], rest[i+1:]
			user, _, _ = strings.Cut(user, ";")
			if user == "" {
				return "", "", 0, bad
			}
		}
		h, tail, delim, ok := hpdelim(rest)
		if !ok || h == "" {
			return "", "", 0, bad
		}
		host = cleanHostname(h)
		if delim == ':' {
			ps, path, _ := strings.Cut(tail, "/")
			if port = a2port(ps); port <= 0 {
				return "", "", 0, bad
			}
			tail = path
		}
		if tail != "" {
			return "", "", 0, bad // no path in a ProxyJump
		}
		return user, host, port, nil
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		if i == 0 {
			return "", "", 0, bad
		}
		user, s = s[:i], s[i+1:]
	}
	h, tail, delim, ok := hpdelim(s)
	if !ok || h == "" || delim == '/' {
		return "", "", 0, bad
	}
	host = cleanHostname(h)
	if tail != "" {
		if port = a2port(tail); port <= 0 {
			return "", "", 0, bad
		}
	}
	return user, host, port, nil
}

// hpdelim is misc.c's hpdelim2: the host of "host[:rest]" or "[host]:rest".
func hpdelim(s string) (host, rest string, delim byte, ok bool) {
	i := 0
	if strings.HasPrefix(s, "[") {
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return "", "", 0, false
		}
		i = j + 1
	} else if j := strings.IndexAny(s, ":/"); j >= 0 {
		i = j
	} else {
		i = len(s)
	}
	if i == len(s) {
		return s, "", 0, true
	}
	if s[i] != ':' && s[i] != '/' {
		return "", "", 0, false
	}
	return s[:i], s[i+1:], s[i], true
}

func cleanHostname(h string) string {
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// a2port is misc.c's a2port: a port number or a service name, -1 when neither.
func a2port(s string) int {
	if n, err := strconv.Atoi(s); err == nil && !strings.HasPrefix(s, "+") {
		if n < 0 || n > 65535 {
			return -1
		}
		return n
	}
	if s == "" || strings.ContainsAny(s, "/ ") {
		return -1
	}
	// net.LookupPort reads /etc/services; it never asks DNS.
	if n, err := net.LookupPort("tcp", s); err == nil {
		return n
	}
	return -1
}

// convtime is misc.c's convtime: "1h30m" in seconds, -1 when malformed.
func convtime(s string) int {
	if s == "" {
		return -1
	}
	total := 0
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return -1
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil || n > 1<<31-1 {
			return -1
		}
		mult := 1
		s = s[i:]
		if s != "" {
			switch s[0] {
			case 's', 'S':
			case 'm', 'M':
				mult = 60
			case 'h', 'H':
				mult = 3600
			case 'd', 'D':
				mult = 86400
			case 'w', 'W':
				mult = 604800
			default:
				return -1
			}
			s = s[1:]
		}
		if n > (1<<31-1)/mult {
			return -1
		}
		n *= mult
		if total > 1<<31-1-n {
			return -1
		}
		total += n
	}
	return total
}

// percentExpand is misc.c's percent_expand: %x replaced by keys[x], %% by %; an unknown
// token or a trailing % is an error.
func percentExpand(s string, keys map[byte]string) (string, error) {
	return dollarPercentExpand(s, keys, nil)
}

// dollarExpand replaces ${VAR} with the environment's value; a missing one is an error.
func dollarExpand(s string, getenv func(string) (string, bool)) (string, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	return dollarPercentExpand(s, nil, getenv)
}

func dollarPercentExpand(s string, keys map[byte]string, getenv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if getenv != nil && c == '$' && i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("environment variable %q missing closing '}'", s[i+2:])
			}
			name := s[i+2 : i+2+end]
			if name == "" {
				return "", errors.New("zero-length environment variable")
			}
			v, ok := getenv(name)
			if !ok {
				return "", fmt.Errorf("env var ${%s} has no value", name)
			}
			b.WriteString(v)
			i += 2 + end
			continue
		}
		if c != '%' || keys == nil {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", errors.New("invalid format: a trailing %")
		}
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := keys[s[i]]
		if !ok {
			return "", fmt.Errorf("unknown key %%%c", s[i])
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// tildeExpand is misc.c's tilde_expand: "~" and "~/x" under home, "~user/x" under user's home.
func tildeExpand(s, home string) (string, error) {
	if !strings.HasPrefix(s, "~") {
		return s, nil
	}
	rest := s[1:]
	var path string
	switch {
	case rest == "":
	case rest[0] == '/':
		path = strings.TrimLeft(rest, "/")
	default:
		name, p, _ := strings.Cut(rest, "/")
		u, err := user.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("no such user %s", name)
		}
		home, path = u.HomeDir, strings.TrimLeft(p, "/")
	}
	if home == "" || home[len(home)-1] != '/' {
		home += "/"
	}
	return home + path, nil
}

// connHash is %C: the SHA-1 of the local host name, host, port and user, in hex.
func connHash(thisHost, host, port, user string) string {
	h := sha1.Sum([]byte(thisHost + host + port + user))
	return hex.EncodeToString(h[:])
}

// isAddr reports whether name can only be an address, as ssh.c's is_addr.
func isAddr(name string) bool {
	if strings.ContainsAny(name, "%:") || strings.Trim(name, "0123456789.") == "" {
		return true
	}
	return net.ParseIP(name) != nil
}
