package hostlist

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func words(s string) []string { return strings.Fields(s) }

// TestExpandDocs checks the examples of the pdsh(1) and ClusterShell nodeset(1) manuals.
func TestExpandDocs(t *testing.T) {
	tests := []struct{ expr, want string }{
		// pdsh(1), HOSTLIST EXPRESSIONS.
		{"foo[01-05]", "foo01 foo02 foo03 foo04 foo05"},
		{"foo[7,9-10]", "foo7 foo9 foo10"},
		{"foo[0-5],-foo[1-3]", "foo0 foo4 foo5"},
		{"foo[0-3]-eth0", "foo0-eth0 foo1-eth0 foo2-eth0 foo3-eth0"},
		{"foo[19]", "foo19"},
		{"foo1,foo9", "foo1 foo9"},
		{"foo[1,9]", "foo1 foo9"},
		// nodeset(1): basics, stepping, padding, leading and trailing digits.
		{"node[13-15,17-19]", "node13 node14 node15 node17 node18 node19"},
		{"node[0-6/2]", "node0 node2 node4 node6"},
		{"node[08-11]", "node08 node09 node10 node11"},
		{"node[000-012/4]", "node000 node004 node008 node012"},
		{"node[1-2]x[1-2]", "node1x1 node1x2 node2x1 node2x2"},
		{"node-00[1-3]", "node-001 node-002 node-003"},
		{"node-[1-2]0-[0-2]5", "node-10-05 node-10-15 node-10-25 node-20-05 node-20-15 node-20-25"},
		// nodeset(1): arithmetic with extended patterns, left to right.
		{"node[1-4],node[5-9]", "node1 node2 node3 node4 node5 node6 node7 node8 node9"},
		{"node[1-9]!node6", "node1 node2 node3 node4 node5 node7 node8 node9"},
		{"node[1-9]&node[6-12]", "node6 node7 node8 node9"},
		{"node[1-9]^node[6-11]", "node1 node2 node3 node4 node5 node10 node11"},
		{"node[1-9]!node6&node[6-12]", "node7 node8 node9"},
		{"node[1-3] node[2-7] node[5-8]", "node1 node2 node3 node4 node5 node6 node7 node8"},
		// The issue's own examples.
		{"web[01-03].dc1", "web01.dc1 web02.dc1 web03.dc1"},
		{"n[1-9/2]", "n1 n3 n5 n7 n9"},
		{"n[1-3,7,10-12]", "n1 n2 n3 n7 n10 n11 n12"},
		{"rack[1-2]-n[01-02]", "rack1-n01 rack1-n02 rack2-n01 rack2-n02"},
		{"10.0.[1-2].[1-3]", "10.0.1.1 10.0.1.2 10.0.1.3 10.0.2.1 10.0.2.2 10.0.2.3"},
		{"a,b,c", "a b c"},
		{"c,b,a,b", "a b c"},
		{"n10,n2,n1", "n1 n2 n10"},
		// Odds and ends.
		{"", ""},
		{"a,,b,", "a b"},
		{"!a", ""},
		{"n[1-5],!n2", "n1 n3 n4 n5"},
		{"n[1-3]^n[2-3]^n9", "n1 n9"},
		{"n[1-3,2]", "n1 n2 n3"},
		{"n[1-10/3]", "n1 n4 n7 n10"},
		{"n[1-11/3]", "n1 n4 n7 n10"},
		{"n[9-11]", "n9 n10 n11"},
		{"n[098-101]", "n098 n099 n100 n101"},
		{"n[1,01]", "n1 n01"},
		{"n[1-6],/n[2-4]/", "n2 n3 n4"},
		{"n[1-6],-/n[2-4]/", "n1 n5 n6"},
		{"n[1-6]!/[135]$/", "n2 n4 n6"},
		{"n[1-6],/n[2-4]", "n2 n3 n4"},
	}
	for _, tt := range tests {
		got, err := Expand(tt.expr, nil)
		if err != nil {
			t.Errorf("Expand(%q): %v", tt.expr, err)
			continue
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("Expand(%q) = %q; want %q", tt.expr, g, tt.want)
		}
	}
}

func TestExpandErrors(t *testing.T) {
	tests := []struct {
		expr string
		col  int
		msg  string
	}{
		{"web[01-", 4, "unclosed '['"},
		{"web[01-]", 8, "missing number"},
		{"web[]", 4, "empty '[]'"},
		{"web]", 4, "unexpected ']'"},
		{"web[a]", 5, "unexpected 'a' in range"},
		{"web[1-3", 4, "unclosed '['"},
		{"web[[1]]", 5, "nested '['"},
		{"n[5-3]", 3, "range 5-3 goes backwards"},
		{"n[1-5/0]", 7, "step must be at least 1"},
		{"n[1-3x]", 6, "unexpected 'x' in range"},
		{"n[1,,2]", 5, "missing number"},
		{"n[01-001]", 6, "zero padding of 001 does not match 01"},
		{"n[1234567890123456789]", 3, "number longer than 18 digits"},
		{"a!", 2, "missing operand after '!'"},
		{"a&,b", 2, "missing operand after '&'"},
		{"a!&b", 3, "unexpected '&' after '!'"},
		{"a@b", 2, "'@' may only start a tag"},
		{"@", 1, "missing tag name after '@'"},
		{"a,-", 0, ""}, // stdin missing: not a syntax error
		{"n[1-5]^", 7, "missing operand after '^'"},
		{"n[1-3],/n(/", 8, "bad regular expression"},
		{"n[1-3]^/n/", 8, "a regular expression can only filter"},
		{"a\x01b", 2, "control character in name"},
		{"a\xff\xfeb", 2, "invalid UTF-8 in name"},
		{"ok[1-2]\xc3", 8, "invalid UTF-8 in name"},
	}
	for _, tt := range tests {
		_, err := Expand(tt.expr, nil)
		if err == nil {
			t.Errorf("Expand(%q): no error; want %q", tt.expr, tt.msg)
			continue
		}
		var se *SyntaxError
		if tt.msg == "" {
			if errors.As(err, &se) {
				t.Errorf("Expand(%q) = %v; want a non-syntax error", tt.expr, err)
			}
			continue
		}
		if !errors.As(err, &se) {
			t.Errorf("Expand(%q) error %v is not a *SyntaxError", tt.expr, err)
			continue
		}
		if se.Col != tt.col || !strings.HasPrefix(se.Msg, tt.msg) {
			t.Errorf("Expand(%q) = col %d %q; want col %d %q", tt.expr, se.Col, se.Msg, tt.col, tt.msg)
		}
	}
}

func TestSyntaxErrorText(t *testing.T) {
	_, err := Expand("web[01-", nil)
	if got, want := fmt.Sprint(err), "web[01-: unclosed '[' at column 4"; got != want {
		t.Errorf("error = %q; want %q", got, want)
	}
}

func TestExpandLimit(t *testing.T) {
	for _, expr := range []string{
		"n[1-100000000]",
		"n[1-1000][1-1000][1-1000]",
		"n[1-999999999999999999]",
		"n[1-600],m[1-600]",
	} {
		_, err := Expand(expr, &Options{MaxHosts: 1000})
		var le *LimitError
		if !errors.As(err, &le) {
			t.Errorf("Expand(%q) = %v; want a *LimitError", expr, err)
			continue
		}
		if le.Max != 1000 || !strings.Contains(err.Error(), "more than 1000 hosts") {
			t.Errorf("Expand(%q) = %v", expr, err)
		}
	}
	if _, err := Expand("n[1-100000000]", nil); err == nil {
		t.Error("default limit did not refuse 100000000 names")
	}
	got, err := Expand("n[1-1000]", &Options{MaxHosts: 1000})
	if err != nil || len(got) != 1000 {
		t.Errorf("Expand at the limit = %d names, %v", len(got), err)
	}
}

func tagOpts(tags map[string]string, all ...string) *Options {
	return &Options{
		Tags: func(name string) (string, error) {
			x, ok := tags[name]
			if !ok {
				return "", ErrUnknownTag
			}
			return x, nil
		},
		All: func() ([]string, error) { return all, nil },
	}
}

func TestExpandTags(t *testing.T) {
	opts := tagOpts(map[string]string{
		"web":    "web[1-4]",
		"db":     "db[1-2],web4",
		"both":   "@web&@db",
		"io1":    "io[1-2]",
		"io2":    "io[3-4]",
		"io3":    "io[5-6]",
		"s:prod": "@web!web1",
	}, "web1", "db1", "x")
	tests := []struct{ expr, want string }{
		{"@web", "web1 web2 web3 web4"},
		{"@web!@db", "web1 web2 web3"},
		{"@both", "web4"},
		{"@web^@db", "db1 db2 web1 web2 web3"},
		{"@io[1-3/2]", "io1 io2 io5 io6"},
		{"@s:prod", "web2 web3 web4"},
		{"@all", "db1 web1 x"},
		{"@*", "db1 web1 x"},
		{"@all,@web,-x", "db1 web1 web2 web3 web4"},
	}
	for _, tt := range tests {
		got, err := Expand(tt.expr, opts)
		if err != nil {
			t.Errorf("Expand(%q): %v", tt.expr, err)
			continue
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("Expand(%q) = %q; want %q", tt.expr, g, tt.want)
		}
	}
	if _, err := Expand("@nope", opts); !errors.Is(err, ErrUnknownTag) || !strings.Contains(err.Error(), "@nope") {
		t.Errorf("unknown tag error = %v", err)
	}
	if _, err := Expand("@web", nil); !errors.Is(err, ErrUnknownTag) {
		t.Errorf("tag without Tags = %v", err)
	}
}

func TestExpandTagCycle(t *testing.T) {
	opts := tagOpts(map[string]string{"a": "x,@b", "b": "@c", "c": "y,@a", "self": "@self", "bad": "n[1-"})
	_, err := Expand("@a", opts)
	var ce *CycleError
	if !errors.As(err, &ce) {
		t.Fatalf("Expand(@a) = %v; want a *CycleError", err)
	}
	if got, want := err.Error(), "tag cycle: @a -> @b -> @c -> @a"; got != want {
		t.Errorf("error = %q; want %q", got, want)
	}
	if _, err := Expand("@self", opts); !errors.As(err, &ce) {
		t.Errorf("Expand(@self) = %v", err)
	}
	_, err = Expand("@bad", opts)
	var se *SyntaxError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "expanding @bad") || se.Col != 2 {
		t.Errorf("Expand(@bad) = %v", err)
	}
}

func TestExpandFileAndStdin(t *testing.T) {
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("# cluster\nn1\n  n2   # second\n\nn[5-6]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Expand("^"+hosts+",x", &Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g := strings.Join(got, " "); g != "n1 n2 n5 n6 x" {
		t.Errorf("hosts file = %q", g)
	}
	got, err = Expand("n[1-6]!^"+hosts, nil)
	if err != nil || strings.Join(got, " ") != "n3 n4" {
		t.Errorf("excluding a hosts file = %q, %v", got, err)
	}
	got, err = Expand("-,-,c", &Options{Stdin: strings.NewReader("a b\n# nothing\nb\n")})
	if err != nil || strings.Join(got, " ") != "a b c" {
		t.Errorf("stdin = %q, %v", got, err)
	}
	if err := os.WriteFile(hosts, []byte("n1\nn[2-\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Expand("^"+hosts, nil)
	if err == nil || !strings.Contains(err.Error(), hosts+":2: n[2-: unclosed '[' at column 2") {
		t.Errorf("bad hosts file = %v", err)
	}
	if _, err := Expand("^"+filepath.Join(dir, "missing"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing hosts file = %v", err)
	}
	loop := filepath.Join(dir, "loop")
	if err := os.WriteFile(loop, []byte("^"+loop+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Expand("^"+loop, nil); err == nil || !strings.Contains(err.Error(), "nest") {
		t.Errorf("self-including hosts file = %v", err)
	}
}

func TestCompare(t *testing.T) {
	want := []string{"a", "a0", "b", "b0", "b1", "b2", "c", "n1", "n01", "n2", "n9", "n10", "n10a", "n10b", "n100", "rack1-n2", "rack1-n10", "rack2-n1"}
	got := []string{"rack2-n1", "n10b", "n2", "b2", "n100", "a0", "rack1-n10", "n01", "b", "n1", "b1", "c", "n10", "n9", "rack1-n2", "a", "b0", "n10a"}
	Sort(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Sort = %v; want %v", got, want)
	}
}

// TestSortMatchesCompare checks the keyed sort of large inputs against sorting with Compare.
func TestSortMatchesCompare(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := "ab-.0123456789/~\x00\xff"
	for range 50 {
		names := make([]string, 300+r.IntN(300))
		for i := range names {
			b := make([]byte, r.IntN(8))
			for k := range b {
				b[k] = alphabet[r.IntN(len(alphabet))]
			}
			names[i] = string(b)
		}
		want := slices.Clone(names)
		slices.SortFunc(want, Compare)
		Sort(names)
		if !slices.Equal(names, want) {
			t.Fatalf("Sort differs from SortFunc(Compare):\n%q\n%q", names, want)
		}
	}
	long := []string{strings.Repeat("9", 300), "1"}
	for range 300 {
		long = append(long, "x")
	}
	Sort(long)
	if long[0] != "1" || long[1] != strings.Repeat("9", 300) {
		t.Errorf("long digit runs sorted wrongly: %q", long[:2])
	}
}

// TestCheck checks that Check finds what Expand finds wrong with an expression's text and
// tags, without expanding ranges, reading files or stdin, or asking for @all.
func TestCheck(t *testing.T) {
	opts := tagOpts(map[string]string{"a": "x,@b", "b": "@c", "c": "y,@a", "bad": "n[1-", "big": "n[1-900000]", "ok": "@big,^f,-,@all"})
	opts.All = func() ([]string, error) { t.Error("Check called All"); return nil, nil }
	opts.ReadFile = func(string) ([]byte, error) { t.Error("Check read a file"); return nil, nil }
	opts.Stdin = iotest.ErrReader(errors.New("Check read stdin"))
	for _, expr := range []string{"web[01-", "n[5-3]", "a!", "@", "n[1-3],/n(/"} {
		_, want := Expand(expr, nil)
		if got := Check(expr, opts); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Check(%q) = %v; want %v", expr, got, want)
		}
	}
	var ce *CycleError
	if err := Check("@a", opts); !errors.As(err, &ce) {
		t.Errorf("Check(@a) = %v; want a *CycleError", err)
	}
	var se *SyntaxError
	if err := Check("@bad", opts); !errors.As(err, &se) || !strings.Contains(err.Error(), "expanding @bad") {
		t.Errorf("Check(@bad) = %v", err)
	}
	if err := Check("@nope", opts); !errors.Is(err, ErrUnknownTag) {
		t.Errorf("Check(@nope) = %v; want ErrUnknownTag", err)
	}
	var le *LimitError
	if err := Check("n[1-2000000]", opts); !errors.As(err, &le) {
		t.Errorf("Check(n[1-2000000]) = %v; want a *LimitError", err)
	}
	allocs := testing.AllocsPerRun(1, func() {
		if err := Check("@ok,@ok,n[1-900000]", opts); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1000 {
		t.Errorf("Check made %.0f allocations; want it not to expand ranges", allocs)
	}
}

// TestExpandSingleMatchesGeneral checks that the short cut for a lone pattern gives what the
// general evaluation gives (a trailing ',' forces the latter).
func TestExpandSingleMatchesGeneral(t *testing.T) {
	for _, expr := range []string{
		"n1", "web[01-20]", "rack[1-4]-n[001-250]", "n[10,9]", "n[1,01]", "n[2,1-3]", "n[9-11]x[2,1]",
		"10.0.[1-2].[1-3]", "n[08-11]", "n[1-9/2]", "a[1-2]b", "n[1-3]]", "n[", "n[1-2000000]", "x@y",
	} {
		fast, ferr := Expand(expr, nil)
		slow, serr := Expand(expr+",", nil)
		if !slices.Equal(fast, slow) || (ferr == nil) != (serr == nil) {
			t.Errorf("Expand(%q) = %v, %v; the general path gives %v, %v", expr, fast, ferr, slow, serr)
		}
	}
}
