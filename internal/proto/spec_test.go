package proto

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// specSections returns the preformatted lines of doc.go by section heading ("# Bodies"), with
// the comment marker and the tab that starts a preformatted line removed.
func specSections(t *testing.T) map[string][]string {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	for _, l := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(l, "// # "); ok {
			section = h
			continue
		}
		if pre, ok := strings.CutPrefix(l, "//\t"); ok {
			out[section] = append(out[section], pre)
		}
	}
	return out
}

// TestSpecTypes checks the message tables of doc.go against the registry: every registered
// type in a row with its number, name and body type, and no row for a type that is not.
func TestSpecTypes(t *testing.T) {
	sec := specSections(t)
	row := regexp.MustCompile(`^\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s`)
	seen := map[Type]bool{}
	for _, name := range []string{"Message types (daemon↔agent, wire values 1–63)", "Client↔daemon messages (wire values 64–127)"} {
		lines := sec[name]
		if len(lines) == 0 {
			t.Fatalf("doc.go has no section %q", name)
		}
		for _, l := range lines {
			m := row.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			n, _ := strconv.Atoi(m[1])
			typ := Type(n)
			body, err := NewBody(typ)
			if err != nil {
				t.Errorf("doc.go lists type %d (%s), which is not registered", n, m[2])
				continue
			}
			seen[typ] = true
			if m[2] != typ.String() {
				t.Errorf("doc.go names type %d %q; it is %q", n, m[2], typ)
			}
			if bt := reflect.TypeOf(body).Elem().Name(); m[4] != bt {
				t.Errorf("doc.go gives %s (%d) the body %s; it is %s", typ, n, m[4], bt)
			}
		}
	}
	for _, typ := range Types() {
		if !seen[typ] {
			t.Errorf("%s (%d) is missing from the message tables of doc.go", typ, typ)
		}
	}
}

// specField is one row of a body table.
type specField struct {
	name, typ string
	always    bool
}

// TestSpecBodies checks the body tables of doc.go against the Go types: every body and every
// struct within one has a table, whose rows give each field's key, name, CBOR type and whether
// it is always written; and fields are declared in increasing key order, as the spec says they
// are written.
func TestSpecBodies(t *testing.T) {
	lines := specSections(t)["Bodies"]
	if len(lines) == 0 {
		t.Fatal("doc.go has no Bodies section")
	}
	tables := map[string]map[int]specField{}
	var cur map[int]specField
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if !strings.HasPrefix(l, " ") { // a table's head: "Name: ..." or "Name (in ...)"
			name := strings.TrimSuffix(f[0], ":")
			cur = map[int]specField{}
			tables[name] = cur
			continue
		}
		key, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 3 || cur == nil {
			t.Errorf("doc.go: bad row in Bodies: %q", l)
			continue
		}
		if _, dup := cur[key]; dup {
			t.Errorf("doc.go: key %d twice in a table: %q", key, l)
		}
		cur[key] = specField{name: f[1], typ: f[2], always: len(f) > 3 && f[3] == "always"}
	}

	done := map[reflect.Type]bool{}
	var check func(rt reflect.Type)
	check = func(rt reflect.Type) {
		if done[rt] {
			return
		}
		done[rt] = true
		table, ok := tables[rt.Name()]
		if !ok {
			t.Errorf("doc.go has no table for %s", rt.Name())
			return
		}
		last := 0
		for i := range rt.NumField() {
			sf := rt.Field(i)
			tag := strings.Split(sf.Tag.Get("cbor"), ",")
			key, err := strconv.Atoi(tag[0])
			if err != nil || !strings.Contains(sf.Tag.Get("cbor"), "keyasint") {
				t.Errorf("%s.%s: tag %q is not an integer key", rt.Name(), sf.Name, sf.Tag.Get("cbor"))
				continue
			}
			if key <= last {
				t.Errorf("%s.%s: key %d after key %d; declare fields in increasing key order", rt.Name(), sf.Name, key, last)
			}
			last = key
			want := specField{name: sf.Name, typ: cborType(sf.Type), always: !strings.Contains(sf.Tag.Get("cbor"), "omitempty")}
			if got, ok := table[key]; !ok {
				t.Errorf("doc.go: %s has no row for key %d (%s %s)", rt.Name(), key, want.name, want.typ)
			} else if got != want {
				t.Errorf("doc.go: %s key %d is %+v; the Go field is %+v", rt.Name(), key, got, want)
			}
			delete(table, key)
			for _, nested := range structsIn(sf.Type) {
				check(nested)
			}
		}
		for key, f := range table {
			t.Errorf("doc.go: %s has a row for key %d (%s), which no field has", rt.Name(), key, f.name)
		}
	}
	for _, typ := range Types() {
		body, _ := NewBody(typ)
		check(reflect.TypeOf(body).Elem())
	}
}

// cborType names how a field of Go type rt is encoded, in the words of doc.go's Bodies.
func cborType(rt reflect.Type) string {
	switch rt.Kind() {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "uint"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.Pointer:
		return cborType(rt.Elem())
	case reflect.Struct:
		return rt.Name()
	case reflect.Slice:
		if rt.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
		return "[]" + cborType(rt.Elem())
	case reflect.Array:
		return fmt.Sprintf("[%d]%s", rt.Len(), cborType(rt.Elem()))
	case reflect.Map:
		return "{" + cborType(rt.Key()) + ":" + cborType(rt.Elem()) + "}"
	}
	return rt.String()
}

// structsIn returns the struct types a field of type rt encodes as maps of their own.
func structsIn(rt reflect.Type) []reflect.Type {
	switch rt.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return structsIn(rt.Elem())
	case reflect.Map:
		return append(structsIn(rt.Key()), structsIn(rt.Elem())...)
	case reflect.Struct:
		return []reflect.Type{rt}
	}
	return nil
}

// TestSpecErrorCodes checks the error code table of doc.go against ErrorCode's names.
func TestSpecErrorCodes(t *testing.T) {
	row := regexp.MustCompile(`^\s*(\d+)\s+"([^"]+)"`)
	n := 0
	for _, l := range specSections(t)["Error codes"] {
		m := row.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[1])
		if got := ErrorCode(v).String(); got != m[2] {
			t.Errorf("doc.go: error code %d is %q; it is %q", v, m[2], got)
		}
		n++
	}
	if n != len(codeNames) {
		t.Errorf("doc.go lists %d error codes; there are %d", n, len(codeNames))
	}
}

// TestSpecExample checks the example frame in the Envelope section of doc.go.
func TestSpecExample(t *testing.T) {
	lines := specSections(t)["Envelope"]
	var want []byte
	for _, l := range lines {
		if !strings.HasPrefix(l, "00 00 00 ") {
			continue
		}
		b, err := hex.DecodeString(strings.Join(strings.Fields(l), ""))
		if err != nil {
			t.Fatalf("doc.go: example frame %q: %v", l, err)
		}
		want = b
	}
	if want == nil {
		t.Fatal("doc.go: no example frame in the Envelope section")
	}
	p, err := Encode(TypePing, 300, &Ping{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := AppendFrame(nil, p, 0); !bytes.Equal(got, want) {
		t.Errorf("doc.go's example frame is % x; a ping with id 300 is % x", want, got)
	}
}
