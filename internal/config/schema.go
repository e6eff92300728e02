package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// textUnmarshaler is the type of encoding.TextUnmarshaler, for finding Duration and Size.
var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// schemaErrors walks a parsed file against the Config struct and returns every unknown key
// and every value of the wrong type or form, each with its line. The decoder stops at the
// first of these; this walk lets one run of `shoal config check` list them all.
func schemaErrors(name string, data []byte, hostBase int) Errors {
	w := schemaWalker{name: name, counts: map[string]int{"host": hostBase}}
	w.p.Reset(data)
	w.lines = newLineIndex(data)
	root := reflect.TypeFor[Config]()
	table, tablePath := root, ""
	for w.p.NextExpression() {
		e := w.p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, line := keyParts(w.lines, e.Key())
			t, path, ok := w.resolve(root, "", parts, line)
			if ok && e.Kind == unstable.ArrayTable {
				if t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.Struct {
					w.bad(line, path, "wrong type: expected "+describe(t)+", got a TOML array of tables")
					ok = false
				} else {
					i := w.counts[path]
					w.counts[path] = i + 1
					path, t = path+"["+strconv.Itoa(i)+"]", t.Elem()
				}
			}
			if ok && t.Kind() != reflect.Struct && t.Kind() != reflect.Map {
				w.bad(line, path, "wrong type: expected "+describe(t)+", got a TOML table")
				ok = false
			}
			if !ok {
				t = nil // skip the keys of a table already reported
			}
			table, tablePath = t, path
		case unstable.KeyValue:
			if table != nil {
				w.keyValue(table, tablePath, e)
			}
		}
	}
	return w.errs
}

// schemaWalker holds the state of one schemaErrors walk.
type schemaWalker struct {
	name   string
	p      unstable.Parser
	lines  lineIndex
	counts map[string]int // array-of-tables path → entries seen
	errs   Errors
}

// bad records an error at line of the walked file.
func (w *schemaWalker) bad(line int, key, msg string) {
	w.errs = append(w.errs, &Error{File: w.name, Line: line, Key: key, Msg: msg})
}

// resolve follows parts from t (at path) and returns the type they name and its path;
// ok is false, with the error recorded, when a part names no key.
func (w *schemaWalker) resolve(t reflect.Type, path string, parts []string, line int) (reflect.Type, string, bool) {
	for _, part := range parts {
		next := join(path, part)
		switch t.Kind() {
		case reflect.Struct:
			f, found := fieldByTag(t, part)
			if !found {
				w.bad(line, next, "unknown key")
				return nil, next, false
			}
			t = f
		case reflect.Map:
			t = t.Elem()
		case reflect.Slice:
			// [host.x] after [[host]] names a key of the last entry.
			n := w.counts[path]
			if t.Elem().Kind() != reflect.Struct || n == 0 {
				w.bad(line, path, "wrong type: expected "+describe(t)+", got a TOML table")
				return nil, path, false
			}
			path = path + "[" + strconv.Itoa(n-1) + "]"
			next = join(path, part)
			f, found := fieldByTag(t.Elem(), part)
			if !found {
				w.bad(line, next, "unknown key")
				return nil, next, false
			}
			t = f
		default:
			w.bad(line, path, "wrong type: expected "+describe(t)+", got a TOML table")
			return nil, path, false
		}
		path = next
	}
	return t, path, true
}

// keyValue checks one key = value line inside a table of type table at path.
func (w *schemaWalker) keyValue(table reflect.Type, path string, kv *unstable.Node) {
	parts, line := keyParts(w.lines, kv.Key())
	t, p, ok := w.resolve(table, path, parts, line)
	if ok {
		w.value(t, p, kv.Value(), line)
	}
}

// value checks a value node against the Go type t it decodes into.
func (w *schemaWalker) value(t reflect.Type, path string, v *unstable.Node, line int) {
	wrong := func() {
		w.bad(line, path, "wrong type: expected "+describe(t)+", got a TOML "+tomlKind(v.Kind))
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		switch v.Kind {
		case unstable.String:
			if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText(v.Data); err != nil {
				w.bad(line, path, err.Error())
			}
		case unstable.Integer:
			// Size takes integers too. A duration only as 0: a bare number has no unit
			// (go-toml would read it as nanoseconds).
			if t == reflect.TypeFor[Duration]() && string(v.Data) != "0" {
				w.bad(line, path, fmt.Sprintf("%s is a bare number of nanoseconds; write a duration like \"30s\"", v.Data))
			}
		default:
			wrong()
		}
		return
	}
	switch t.Kind() {
	case reflect.String:
		if v.Kind != unstable.String {
			wrong()
		}
	case reflect.Bool:
		if v.Kind != unstable.Bool {
			wrong()
		}
	case reflect.Int, reflect.Int64:
		if v.Kind != unstable.Integer {
			wrong()
		}
	case reflect.Slice:
		if v.Kind != unstable.Array {
			wrong()
			return
		}
		i := 0
		for it := v.Children(); it.Next(); i++ {
			elemPath := path
			if t.Elem().Kind() == reflect.Struct {
				elemPath = path + "[" + strconv.Itoa(w.counts[path]) + "]"
				w.counts[path]++
			}
			w.value(t.Elem(), elemPath, it.Node(), line)
		}
	case reflect.Struct, reflect.Map:
		if v.Kind != unstable.InlineTable {
			wrong()
			return
		}
		for it := v.Children(); it.Next(); {
			w.keyValue(t, path, it.Node())
		}
	}
}

// fieldByTag returns the type of the field of struct t whose toml tag names key.
func fieldByTag(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); f.IsExported() && name == key {
			return f.Type, true
		}
	}
	return nil, false
}

// describe names what a value of Go type t must look like in TOML.
func describe(t reflect.Type) string {
	if t.Kind() == reflect.Struct {
		return "a table"
	}
	return expected(t.String())
}

// expected names what a value of the Go type called typ must look like in TOML.
func expected(typ string) string {
	switch typ {
	case "int", "int64":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "config.Duration":
		return "a duration string like \"30s\""
	case "config.Size":
		return "a size like 4096 or \"16MiB\""
	case "[]string":
		return "an array of strings"
	case "map[string]string":
		return "a table of strings"
	case "[]config.Host":
		return "an array of [[host]] tables"
	case "[]config.Gateway":
		return "an array of [[gateway]] tables"
	}
	return "a " + typ
}

// tomlKind names a TOML value kind as go-toml's messages do.
func tomlKind(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "string"
	case unstable.Integer:
		return "integer"
	case unstable.Float:
		return "float"
	case unstable.Bool:
		return "boolean"
	case unstable.Array:
		return "array"
	case unstable.InlineTable:
		return "inline table"
	}
	return "date or time"
}

// join appends a key to a dotted key path.
func join(path, part string) string {
	if path == "" {
		return part
	}
	return path + "." + part
}
