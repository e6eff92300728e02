package sshx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// HostConfig is the resolved ssh_config of one host, as `ssh -G` would print it.
type HostConfig struct {
	Alias               string
	HostName            string
	User                string
	Port                int
	IdentityFiles       []string // expanded paths, in order
	IdentitiesOnly      bool
	ProxyJump           []string // hops as written ("[user@]host[:port]"), first hop first; nil for none
	ConnectTimeout      time.Duration
	UserKnownHostsFiles []string // expanded paths
	// StrictHostKeyChecking is "yes", "accept-new" or "ask" (which shoal treats as "yes": it
	// never prompts). "no" and "off" are read as "accept-new": shoal never accepts a changed key.
	StrictHostKeyChecking string
	ServerAliveInterval   time.Duration
	ServerAliveCountMax   int
	HashKnownHosts        bool // keys added under accept-new are written hashed
}

// Addr returns HostName:Port.
func (h *HostConfig) Addr() string {
	return joinHostPort(h.HostName, h.Port)
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// configSet is the parsed configuration files, in order of precedence.
type configSet struct {
	files []*ssh_config.Config
}

// systemConfig is OpenSSH's system-wide client configuration.
const systemConfig = "/etc/ssh/ssh_config"

// loadConfigs parses file (when not empty) alone, as `ssh -F` does, or the user's and the system's
// files. A system file the parser cannot read is reported through warn and skipped.
func loadConfigs(file, home, system string, warn func(string)) (*configSet, error) {
	cs := &configSet{}
	if file != "" {
		c, err := parseConfigFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading ssh config %s: %w", file, err)
		}
		cs.files = append(cs.files, c)
		return cs, nil
	}
	user := filepath.Join(home, ".ssh", "config")
	c, err := parseConfigFile(user)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading ssh config %s: %w", user, err)
	default:
		cs.files = append(cs.files, c)
	}
	c, err = parseConfigFile(system)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		if warn != nil {
			warn(fmt.Sprintf("ignoring system ssh config %s, which shoal cannot read: %v", system, err))
		}
	default:
		cs.files = append(cs.files, c)
	}
	return cs, nil
}

func parseConfigFile(name string) (c *ssh_config.Config, err error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	defer func() {
		// The parser panics on some inputs it does not understand; treat that as a parse error.
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("parsing: %v", r)
		}
	}()
	return ssh_config.DecodeBytes(b)
}

// get returns the first value of key for alias, as OpenSSH's "first obtained value wins".
func (cs *configSet) get(alias, key string) string {
	for _, c := range cs.files {
		if v, err := c.Get(alias, key); err == nil && v != "" {
			return v
		}
	}
	return ""
}

// getAll returns every value of key for alias across all files, in order.
func (cs *configSet) getAll(alias, key string) []string {
	var all []string
	for _, c := range cs.files {
		v, _ := c.GetAll(alias, key)
		all = append(all, v...)
	}
	return all
}

// only returns the files cut down to the Host blocks that apply to alias, in their order, which
// answer every lookup for alias as the whole files do. resolve makes some twenty lookups, and a
// lookup in a whole file matches alias against every Host pattern in it: with an ssh_config of
// 500 Host blocks that was 12% of the client's CPU in a cold run on 200 hosts.
func (cs *configSet) only(alias string) *configSet {
	out := &configSet{files: make([]*ssh_config.Config, 0, len(cs.files))}
	for _, c := range cs.files {
		var hosts []*ssh_config.Host
		for _, h := range c.Hosts {
			if h.Matches(alias) {
				hosts = append(hosts, h)
			}
		}
		out.files = append(out.files, &ssh_config.Config{Hosts: hosts})
	}
	return out
}

// resolve computes the configuration of alias. localUser and home describe the local account.
func (cs *configSet) resolve(alias, localUser, home string) (*HostConfig, error) {
	cs = cs.only(alias)
	h := &HostConfig{Alias: alias, ServerAliveCountMax: 3}
	h.HostName = cs.get(alias, "HostName")
	if h.HostName == "" {
		h.HostName = alias
	} else {
		h.HostName = strings.ReplaceAll(h.HostName, "%h", alias)
	}
	h.User = cs.get(alias, "User")
	if h.User == "" {
		h.User = localUser
	}
	h.Port = 22
	if v := cs.get(alias, "Port"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("ssh config for %s: bad Port %q", alias, v)
		}
		h.Port = p
	}
	ex := expander{home: home, localUser: localUser, alias: alias, h: h}
	ids := cs.getAll(alias, "IdentityFile")
	if len(ids) == 0 {
		ids = []string{"~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519",
			"~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa"}
	}
	seen := map[string]bool{}
	for _, id := range ids {
		p := ex.expand(id)
		if !seen[p] {
			seen[p] = true
			h.IdentityFiles = append(h.IdentityFiles, p)
		}
	}
	h.IdentitiesOnly = yes(cs.get(alias, "IdentitiesOnly"))
	h.HashKnownHosts = yes(cs.get(alias, "HashKnownHosts"))
	if v := cs.get(alias, "ProxyJump"); v != "" && !strings.EqualFold(v, "none") {
		for hop := range strings.SplitSeq(v, ",") {
			if hop = strings.TrimSpace(hop); hop != "" {
				h.ProxyJump = append(h.ProxyJump, hop)
			}
		}
	}
	if v := cs.get(alias, "ConnectTimeout"); v != "" && !strings.EqualFold(v, "none") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("ssh config for %s: bad ConnectTimeout %q", alias, v)
		}
		h.ConnectTimeout = time.Duration(n) * time.Second
	}
	if v := cs.get(alias, "UserKnownHostsFile"); v != "" {
		for f := range strings.FieldsSeq(v) {
			h.UserKnownHostsFiles = append(h.UserKnownHostsFiles, ex.expand(f))
		}
	} else {
		h.UserKnownHostsFiles = []string{ex.expand("~/.ssh/known_hosts"), ex.expand("~/.ssh/known_hosts2")}
	}
	switch v := strings.ToLower(cs.get(alias, "StrictHostKeyChecking")); v {
	case "", "ask":
		h.StrictHostKeyChecking = "ask"
	case "yes", "true":
		h.StrictHostKeyChecking = "yes"
	case "accept-new", "no", "off", "false":
		h.StrictHostKeyChecking = "accept-new"
	default:
		return nil, fmt.Errorf("ssh config for %s: bad StrictHostKeyChecking %q", alias, v)
	}
	if v := cs.get(alias, "ServerAliveInterval"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("ssh config for %s: bad ServerAliveInterval %q", alias, v)
		}
		h.ServerAliveInterval = time.Duration(n) * time.Second
	}
	if v := cs.get(alias, "ServerAliveCountMax"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("ssh config for %s: bad ServerAliveCountMax %q", alias, v)
		}
		h.ServerAliveCountMax = n
	}
	return h, nil
}

func yes(v string) bool {
	v = strings.ToLower(v)
	return v == "yes" || v == "true"
}

// expander expands ~ and the % tokens OpenSSH allows in file names.
type expander struct {
	home, localUser, alias string
	h                      *HostConfig
}

func (e expander) expand(s string) string {
	if s == "~" {
		s = e.home
	} else if strings.HasPrefix(s, "~/") {
		s = filepath.Join(e.home, s[2:])
	}
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(e.home)
		case 'u':
			b.WriteString(e.localUser)
		case 'h':
			b.WriteString(e.h.HostName)
		case 'n':
			b.WriteString(e.alias)
		case 'r':
			b.WriteString(e.h.User)
		case 'p':
			b.WriteString(strconv.Itoa(e.h.Port))
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// parseHop splits a ProxyJump hop "[user@]host[:port]" or "ssh://[user@]host[:port]".
func parseHop(hop string) (user, host string, port int, err error) {
	hop = strings.TrimPrefix(hop, "ssh://")
	if i := strings.LastIndex(hop, "@"); i >= 0 {
		user, hop = hop[:i], hop[i+1:]
	}
	host = hop
	if strings.HasPrefix(hop, "[") {
		end := strings.Index(hop, "]")
		if end < 0 {
			return "", "", 0, fmt.Errorf("bad ProxyJump hop %q", hop)
		}
		host = hop[1:end]
		hop = hop[end+1:]
		if strings.HasPrefix(hop, ":") {
			port, err = strconv.Atoi(hop[1:])
		}
	} else if i := strings.LastIndex(hop, ":"); i >= 0 && strings.Count(hop, ":") == 1 {
		host = hop[:i]
		port, err = strconv.Atoi(hop[i+1:])
	}
	if err != nil || host == "" || port < 0 || port > 65535 {
		return "", "", 0, fmt.Errorf("bad ProxyJump hop %q", hop)
	}
	return user, host, port, nil
}
