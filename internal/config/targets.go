package config

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shoal-sh/shoal/internal/hostlist"
	"github.com/shoal-sh/shoal/internal/tagsource"
)

// HostSettings are the effective settings for connecting to one host.
type HostSettings struct {
	Name           string   // the name used in targets and output
	Address        string   // what to dial; the name unless a [[host]] entry sets an address
	Port           int      // 0 means ssh_config's port, or 22
	User           string   // "" means ssh_config's user, or the local user
	Transport      string   // "ssh", "openssh" or "local"
	Tags           []string // every tag the host belongs to, sorted
	SSHConfig      string   // from [ssh], with ~/ expanded, as are the other paths
	KnownHosts     string   // KnownHostsStrict or KnownHostsAcceptNew
	KnownHostsFile string   // "" means the default
	IdentityFiles  []string // extra private keys
	ConnectTimeout time.Duration
}

// hostIndex is the expansion of every [[host]] entry and tag, built once.
type hostIndex struct {
	hosts map[string]HostSettings // names from [[host]] entries
	order []string                // those names in natural order
	tagOf map[string][]string     // host → tags set by [[host]] entries
	err   error
}

// hostIndex returns the expansion of the [[host]] entries, building it on first use.
func (c *Config) hostIndex() *hostIndex {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.index != nil {
		return c.index
	}
	ix := &hostIndex{hosts: map[string]HostSettings{}, tagOf: map[string][]string{}}
	for i, h := range c.Hosts {
		names, err := hostlist.Expand(h.Name, nil)
		if err != nil {
			ix.err = fmt.Errorf("expanding host[%d].name: %w", i, err)
			break
		}
		for _, n := range names {
			s, ok := ix.hosts[n]
			if !ok {
				s = HostSettings{Name: n}
			}
			if h.Address != "" {
				s.Address = h.Address
			}
			if h.Port != 0 {
				s.Port = h.Port
			}
			if h.User != "" {
				s.User = h.User
			}
			if h.Transport != "" {
				s.Transport = h.Transport
			}
			for _, t := range h.Tags {
				if !slices.Contains(ix.tagOf[n], t) {
					ix.tagOf[n] = append(ix.tagOf[n], t)
				}
			}
			ix.hosts[n] = s
		}
	}
	for n := range ix.hosts {
		ix.order = append(ix.order, n)
	}
	hostlist.Sort(ix.order)
	c.index = ix
	return ix
}

// tagEntries maps each tag named by [[host]] entries to those entries' names, in order,
// building the map on first use: looking each tag up in every entry made many entries
// cost quadratic time.
func (c *Config) tagEntries() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entryTags == nil || c.entryTagsOf != len(c.Hosts) { // a later file may add entries
		c.entryTags, c.entryTagsOf = map[string][]string{}, len(c.Hosts)
		for _, h := range c.Hosts {
			for i, t := range h.Tags {
				if !slices.Contains(h.Tags[:i], t) {
					c.entryTags[t] = append(c.entryTags[t], h.Name)
				}
			}
		}
	}
	return c.entryTags
}

// tagExpr returns the expression a tag stands for: its [tags] entry plus the [[host]] entries
// naming it, or for SOURCE:GROUP the hosts that tag source gives the group.
func (c *Config) tagExpr(name string) (string, error) {
	if src, group, ok := strings.Cut(name, ":"); ok {
		s := c.source(src)
		_, isTag := c.Tags[name]
		switch {
		case s != nil:
			return s.Hosts(context.Background(), group)
		case !isTag && len(c.tagEntries()[name]) == 0: // else a tag whose name has a ':'
			return "", fmt.Errorf("%w: no tag source %q ([[tag_source]] entries: %s)", hostlist.ErrUnknownTag, src, strings.Join(c.sourceNames(), ", "))
		}
	}
	var parts []string
	if x, ok := c.Tags[name]; ok && strings.TrimSpace(x) != "" {
		parts = append(parts, x)
	}
	_, defined := c.Tags[name]
	if entries := c.tagEntries()[name]; len(entries) > 0 {
		parts = append(parts, entries...)
		defined = true
	}
	if !defined {
		return "", fmt.Errorf("%w (tags are defined under [tags] or in a [[host]] entry's tags)", hostlist.ErrUnknownTag)
	}
	return strings.Join(parts, ","), nil
}

// allHosts returns every configured host: the [[host]] entries and every tag's members.
// Tags that name @all see only the [[host]] entries here, so @all never refers to itself.
func (c *Config) allHosts(stdin io.Reader) ([]string, error) {
	ix := c.hostIndex()
	if ix.err != nil {
		return nil, ix.err
	}
	seen := map[string]bool{}
	var out []string
	add := func(names []string) {
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	add(ix.order)
	for _, t := range c.TagNames() {
		names, err := hostlist.Expand("@"+t, &hostlist.Options{
			Tags:     c.tagExpr,
			All:      func() ([]string, error) { return ix.order, nil },
			ReadFile: readHostsFile,
		})
		if err != nil {
			return nil, err
		}
		add(names)
	}
	return out, nil
}

// readHostsFile reads a ^FILE, expanding a leading ~/ to the home directory.
func readHostsFile(path string) ([]byte, error) {
	return os.ReadFile(ExpandHome(path))
}

// ExpandHome replaces a leading "~/" in a local path with the user's home directory.
func ExpandHome(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return path
}

// Targets expands a target expression with the configuration's tags; @all is every configured host.
// stdin supplies names for "-" and may be nil.
func (c *Config) Targets(expr string, stdin io.Reader) ([]string, error) {
	return c.TargetsWith(expr, stdin, nil)
}

// TargetsWith is Targets with more named sets: @NAME stands for sets[NAME] when sets has it,
// before any tag of that name (the one-shot commands' @failed, @ok, … of the last run).
func (c *Config) TargetsWith(expr string, stdin io.Reader, sets map[string][]string) ([]string, error) {
	tags := c.tagExpr
	if sets != nil {
		tags = func(name string) (string, error) {
			if hs, ok := sets[name]; ok {
				return strings.Join(hs, ","), nil
			}
			return c.tagExpr(name)
		}
	}
	return hostlist.Expand(expr, &hostlist.Options{
		Tags:     tags,
		All:      func() ([]string, error) { return c.allHosts(stdin) },
		ReadFile: readHostsFile,
		Stdin:    stdin,
	})
}

// HostFor returns the effective settings for one host: the [ssh] defaults with every matching
// [[host]] entry laid over them in order, and the tags the host belongs to.
func (c *Config) HostFor(name string) HostSettings {
	ix := c.hostIndex()
	s, ok := ix.hosts[name]
	if !ok {
		s = HostSettings{Name: name}
	}
	if s.Address == "" {
		s.Address = name
	}
	if s.Port == 0 {
		s.Port = c.SSH.Port
	}
	if s.User == "" {
		s.User = c.SSH.User
	}
	if s.Transport == "" {
		s.Transport = "ssh"
	}
	s.SSHConfig = ExpandHome(c.SSH.Config)
	s.KnownHosts = c.SSH.KnownHosts
	s.KnownHostsFile = ExpandHome(c.SSH.KnownHostsFile)
	s.IdentityFiles = make([]string, len(c.SSH.IdentityFiles))
	for i, f := range c.SSH.IdentityFiles {
		s.IdentityFiles[i] = ExpandHome(f)
	}
	s.ConnectTimeout = c.SSH.ConnectTimeout.Std()
	s.Tags = c.tagsOf(name)
	return s
}

// tagsOf returns the tags whose expansion holds name, sorted. The membership of every tag is
// computed once; tags that fail to expand (a missing hosts file) are left out.
func (c *Config) tagsOf(name string) []string {
	c.mu.Lock()
	m := c.members
	c.mu.Unlock()
	if m == nil {
		all, err := c.allHosts(nil)
		if err != nil {
			all = c.hostIndex().order
		}
		m = map[string][]string{}
		for _, t := range c.TagNames() { // sorted, so each host's tags come out sorted
			names, err := hostlist.Expand("@"+t, &hostlist.Options{
				Tags:     c.tagExpr,
				All:      func() ([]string, error) { return all, nil },
				ReadFile: readHostsFile,
			})
			if err != nil {
				continue
			}
			for _, n := range names {
				m[n] = append(m[n], t)
			}
		}
		c.mu.Lock()
		c.members = m
		c.mu.Unlock()
	}
	return slices.Clone(m[name])
}

// TagNames returns every tag name, from [tags] and from [[host]] entries, sorted.
func (c *Config) TagNames() []string {
	var names []string
	for t := range c.Tags {
		names = append(names, t)
	}
	for t := range c.tagEntries() {
		if _, ok := c.Tags[t]; !ok {
			names = append(names, t)
		}
	}
	slices.Sort(names)
	return names
}

// HostNames returns every configured host (what @all expands to), in natural order, for completion.
// If a tag cannot be expanded it falls back to the [[host]] entries alone.
func (c *Config) HostNames() []string {
	names, err := c.allHosts(nil)
	if err != nil {
		names = slices.Clone(c.hostIndex().order)
	}
	hostlist.Sort(names)
	return names
}

// source returns the tag source of that name, or nil.
func (c *Config) source(name string) *tagsource.Source {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sources == nil {
		c.sources = map[string]*tagsource.Source{}
		cache := filepath.Join(DefaultPaths().CacheDir, "tags")
		for _, ts := range c.TagSources {
			c.sources[ts.Name] = tagsource.New(tagsource.Spec{Name: ts.Name, Kind: ts.Kind, Path: ExpandHome(ts.Path),
				List: ts.List, Map: ts.Map, Section: ts.Section, Timeout: ts.Timeout.Std(), Cache: ts.Cache.Std(), CacheDir: cache})
		}
	}
	return c.sources[name]
}

// sourceNames returns the names of the tag sources, in the order of the configuration.
func (c *Config) sourceNames() []string {
	var names []string
	for _, ts := range c.TagSources {
		names = append(names, ts.Name)
	}
	return names
}

// SourceGroups returns, for each tag source in the order of the configuration, its name and
// the groups it offers (as SOURCE:GROUP), or the error reading it.
func (c *Config) SourceGroups(ctx context.Context) []SourceGroups {
	var out []SourceGroups
	for _, name := range c.sourceNames() {
		sg := SourceGroups{Source: name}
		groups, err := c.source(name).Groups(ctx)
		sg.Err = err
		for _, g := range groups {
			sg.Groups = append(sg.Groups, name+":"+g)
		}
		out = append(out, sg)
	}
	return out
}

// SourceGroups is what one tag source offers.
type SourceGroups struct {
	Source string
	Groups []string // SOURCE:GROUP, sorted
	Err    error
}
