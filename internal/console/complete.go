package console

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// candidate is one completion: the whole word that replaces the word being completed.
type candidate struct {
	value string
	desc  string
	tag   string // group heading: built-ins, hosts, tags, files, modes
}

// maxCandidates bounds the candidates offered for one word.
const maxCandidates = 500

// complete returns the word before pos in line and the candidates that may replace it.
func (c *console) complete(line string, pos int) (word string, cands []candidate) {
	if pos > len(line) {
		pos = len(line)
	}
	head := line[:pos]
	start := strings.LastIndexAny(head, " \t") + 1
	word = head[start:]
	first := strings.TrimLeft(head, " \t")
	firstWord := start == len(head)-len(first) // the word is the line's first

	switch {
	case strings.HasPrefix(first, string(prefix)):
		if firstWord {
			for _, b := range builtins() {
				v := string(prefix) + b.name
				if strings.HasPrefix(v, word) {
					cands = append(cands, candidate{value: v, desc: b.help, tag: "built-ins"})
				}
			}
			return word, cands
		}
		name := strings.Fields(first[1:])
		if len(name) == 0 {
			return word, nil
		}
		b, ok := findBuiltin(name[0])
		if !ok {
			return word, nil
		}
		switch b.args {
		case argTargets:
			return word, c.completeTargets(word)
		case argPaths:
			return word, completePaths(word)
		case argModes:
			for _, m := range []string{"gather", "stream", "json"} {
				if strings.HasPrefix(m, word) {
					cands = append(cands, candidate{value: m, tag: "modes"})
				}
			}
			return word, cands
		case argBuiltins:
			for _, b := range builtins() {
				if strings.HasPrefix(b.name, word) {
					cands = append(cands, candidate{value: b.name, desc: b.help, tag: "built-ins"})
				}
			}
			return word, cands
		}
		return word, nil
	case strings.HasPrefix(first, "!"):
		if firstWord {
			return word, nil
		}
		return word, completePaths(word)
	}
	if firstWord && word == "" {
		return word, nil
	}
	if !firstWord && (strings.ContainsAny(word, "/~") || strings.HasPrefix(word, ".")) {
		return word, completePaths(word)
	}
	return word, nil
}

// completeTargets completes the last item of a target expression with host names and tags.
func (c *console) completeTargets(word string) []candidate {
	cut := strings.LastIndexAny(word, ",!&^") + 1
	base, frag := word[:cut], word[cut:]
	if strings.HasPrefix(frag, "-") { // pdsh-style exclusion
		base, frag = base+"-", frag[1:]
	}
	var out []candidate
	if !strings.HasPrefix(frag, "@") && c.opt.HostNames != nil {
		for _, h := range c.opt.HostNames() {
			if strings.HasPrefix(h, frag) {
				out = append(out, candidate{value: base + h, tag: "hosts"})
				if len(out) >= maxCandidates {
					break
				}
			}
		}
	}
	tags := []string{"all"}
	if c.opt.TagNames != nil {
		tags = append(tags, c.opt.TagNames()...)
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)
	for _, t := range tags {
		if strings.HasPrefix("@"+t, frag) {
			out = append(out, candidate{value: base + "@" + t, tag: "tags"})
		}
	}
	return out
}

// completePaths completes a local file name; directories end in a slash.
func completePaths(word string) []candidate {
	dir, base := filepath.Split(word)
	real := dir
	if strings.HasPrefix(dir, "~/") || dir == "~" {
		real = expandHome(dir)
	}
	if real == "" {
		real = "."
	}
	ents, err := os.ReadDir(real)
	if err != nil {
		return nil
	}
	var out []candidate
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, base) || (strings.HasPrefix(name, ".") && !strings.HasPrefix(base, ".")) {
			continue
		}
		v := dir + name
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			if fi, err := os.Stat(filepath.Join(real, name)); err == nil && fi.IsDir() {
				isDir = true
			}
		}
		if isDir {
			v += "/"
		}
		out = append(out, candidate{value: v, tag: "files"})
		if len(out) >= maxCandidates {
			break
		}
	}
	return out
}
