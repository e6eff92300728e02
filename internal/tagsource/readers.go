package tagsource

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// readClusterShell reads ClusterShell group files: a groups.conf (whose groupsdir YAML files,
// or whose section's map and list commands, give the groups), a groups.d directory, or one
// YAML file.
func (s *Source) readClusterShell(ctx context.Context) (map[string]string, error) {
	path := s.spec.Path
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	var files []string
	section := s.spec.Section
	switch {
	case st.IsDir():
		files, _ = filepath.Glob(filepath.Join(path, "*.yaml"))
	case strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml"):
		files = []string{path}
	default:
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		conf, err := ParseGroupsConf(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		cfgdir, err := filepath.Abs(filepath.Dir(path))
		if err != nil {
			return nil, err
		}
		main := conf["Main"]
		if section == "" {
			section = main["default"]
		}
		if sec, ok := conf[section]; ok && section != "Main" && sec["map"] != "" {
			return s.clusterShellCommands(ctx, sec, section, cfgdir)
		}
		dirs := main["groupsdir"]
		if dirs == "" {
			dirs = "$CFGDIR/groups.d"
		}
		for _, d := range strings.Fields(dirs) {
			d = strings.ReplaceAll(d, "$CFGDIR", cfgdir)
			if !filepath.IsAbs(d) {
				d = filepath.Join(cfgdir, d)
			}
			m, _ := filepath.Glob(filepath.Join(d, "*.yaml"))
			files = append(files, m...)
		}
	}
	all := map[string]map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ns, err := ParseGroupsYAML(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for name, groups := range ns {
			if all[name] == nil {
				all[name] = map[string]string{}
			}
			for g, x := range groups {
				all[name][g] = x
			}
		}
	}
	if section == "" {
		section = "local"
		if len(all) == 1 {
			for name := range all {
				section = name
			}
		}
	}
	groups, ok := all[section]
	if !ok {
		var have []string
		for name := range all {
			have = append(have, name)
		}
		slices.Sort(have)
		return nil, fmt.Errorf("no ClusterShell group source %q in %s (it has %s)", section, path, strings.Join(have, ", "))
	}
	// Inside a group source, @g means that source's group g: say so to shoal.
	for g, x := range groups {
		groups[g] = qualify(x, s.spec.Name)
	}
	return groups, nil
}

// clusterShellCommands runs a groups.conf section's list command, and its map command for
// every group ($GROUP, $CFGDIR and $SOURCE replaced as ClusterShell does).
func (s *Source) clusterShellCommands(ctx context.Context, sec map[string]string, section, cfgdir string) (map[string]string, error) {
	expand := func(c, group string) string {
		c = strings.ReplaceAll(c, "$CFGDIR", cfgdir)
		c = strings.ReplaceAll(c, "$SOURCE", section)
		return strings.ReplaceAll(c, "$GROUP", shellQuote(group))
	}
	if sec["list"] == "" {
		return nil, fmt.Errorf("groups.conf section [%s] has no list command", section)
	}
	out, err := s.run(ctx, expand(sec["list"], ""))
	if err != nil {
		return nil, err
	}
	groups := map[string]string{}
	for _, g := range strings.Fields(out) {
		hosts, err := s.run(ctx, expand(sec["map"], g))
		if err != nil {
			return nil, err
		}
		if f := strings.Fields(hosts); len(f) > 0 {
			groups[g] = qualify(strings.Join(f, ","), s.spec.Name)
		}
	}
	return groups, nil
}

// unqualified finds @group references without a source.
var unqualified = regexp.MustCompile(`@([A-Za-z0-9_.\-]+)\b([^:]|$)`)

// qualify makes the @group references of a ClusterShell node set name the source.
func qualify(x, source string) string {
	return unqualified.ReplaceAllString(x, "@"+source+":$1$2")
}

// ParseGroupsYAML reads a ClusterShell groups.d YAML file: group sources, each mapping group
// names to node sets (a string, or a list of them).
func ParseGroupsYAML(data []byte) (map[string]map[string]string, error) {
	var raw map[string]map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("reading ClusterShell groups: %w", err)
	}
	out := map[string]map[string]string{}
	for ns, groups := range raw {
		out[ns] = map[string]string{}
		for g, v := range groups {
			switch v := v.(type) {
			case string:
				out[ns][g] = strings.TrimSpace(v)
			case int:
				out[ns][g] = fmt.Sprint(v)
			case []any:
				var parts []string
				for _, p := range v {
					parts = append(parts, strings.TrimSpace(fmt.Sprint(p)))
				}
				out[ns][g] = strings.Join(parts, ",")
			default:
				return nil, fmt.Errorf("reading ClusterShell groups: %s: %s is a %T, not a node set", ns, g, v)
			}
		}
	}
	return out, nil
}

// ParseGroupsConf reads a ClusterShell groups.conf: INI sections of "key: value" or
// "key = value" lines; comments start with '#' or ';'.
func ParseGroupsConf(data []byte) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	var sec map[string]string
	var last string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		switch {
		case trim == "" || trim[0] == '#' || trim[0] == ';':
		case trim[0] == '[' && trim[len(trim)-1] == ']':
			name := strings.TrimSpace(trim[1 : len(trim)-1])
			for _, one := range strings.Split(name, ",") { // [a,b] defines both
				if out[strings.TrimSpace(one)] == nil {
					out[strings.TrimSpace(one)] = map[string]string{}
				}
			}
			sec = out[strings.TrimSpace(strings.Split(name, ",")[0])]
			last = ""
		case (line[0] == ' ' || line[0] == '\t') && sec != nil && last != "":
			sec[last] += " " + trim // a continuation line
		default:
			if sec == nil {
				return nil, fmt.Errorf("line %d: %q is outside any [section]", n, trim)
			}
			i := strings.IndexAny(trim, ":=")
			if i <= 0 {
				return nil, fmt.Errorf("line %d: want key: value, not %q", n, trim)
			}
			last = strings.TrimSpace(trim[:i])
			sec[last] = strings.TrimSpace(trim[i+1:])
		}
	}
	return out, sc.Err()
}

// ParseGenders reads a genders file (genders(5)): lines of nodes (comma-separated, with host
// ranges) and attributes (comma-separated, attr or attr=value). Each attribute is a group, and
// so is each attr=value.
func ParseGenders(data []byte) (map[string]string, error) {
	members := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) > 2 {
			return nil, fmt.Errorf("genders line %d: want NODES ATTRS, not %q", n, strings.TrimSpace(line))
		}
		nodes := f[0]
		if len(f) == 1 {
			continue // nodes without attributes
		}
		for _, a := range strings.Split(f[1], ",") {
			if a == "" {
				continue
			}
			name, _, hasValue := strings.Cut(a, "=")
			members[name] = append(members[name], nodes)
			if hasValue {
				members[a] = append(members[a], nodes)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for g, nodes := range members {
		out[g] = strings.Join(nodes, ",")
	}
	return out, nil
}

// readAnsible reads an Ansible inventory: a `ansible-inventory --list` JSON file directly,
// anything else through `ansible-inventory -i PATH --list`.
func (s *Source) readAnsible(ctx context.Context) (map[string]string, error) {
	var data []byte
	var err error
	if strings.HasSuffix(s.spec.Path, ".json") {
		data, err = os.ReadFile(s.spec.Path)
	} else {
		var out string
		out, err = s.run(ctx, "ansible-inventory -i "+shellQuote(s.spec.Path)+" --list")
		data = []byte(out)
	}
	if err != nil {
		return nil, err
	}
	return ParseAnsibleList(data)
}

// ParseAnsibleList reads the JSON `ansible-inventory --list` prints: every group's hosts and
// children. A group's hosts are its own and its children's, recursively.
func ParseAnsibleList(data []byte) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("reading ansible-inventory --list output: %w", err)
	}
	type group struct {
		Hosts    []string `json:"hosts"`
		Children []string `json:"children"`
	}
	groups := map[string]group{}
	for name, v := range raw {
		if name == "_meta" {
			continue
		}
		var g group
		if err := json.Unmarshal(v, &g); err != nil {
			return nil, fmt.Errorf("reading ansible-inventory --list output: group %s: %w", name, err)
		}
		groups[name] = g
	}
	out := map[string]string{}
	for name := range groups {
		seen := map[string]bool{}
		var hosts []string
		var walk func(string)
		walk = func(n string) {
			if seen[n] {
				return // a cycle, or a child reached twice
			}
			seen[n] = true
			hosts = append(hosts, groups[n].Hosts...)
			for _, c := range groups[n].Children {
				walk(c)
			}
		}
		walk(name)
		slices.Sort(hosts)
		out[name] = strings.Join(slices.Compact(hosts), ",")
	}
	return out, nil
}
