package hostlist

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFoldDocs checks folds from the nodeset(1) manual and the issue; nodeset differs only where
// it would change the set (it merges node1 and node02 into node[01-02]; shoal keeps both names).
func TestFoldDocs(t *testing.T) {
	tests := []struct{ names, want string }{
		{"node13 node14 node15 node17 node18 node19", "node[13-15,17-19]"},
		{"node1-ipmi node2-ipmi node3-ipmi", "node[1-3]-ipmi"},
		{"node1 node6 node7", "node[1,6-7]"},
		{"node0 node1 node6 node7", "node[0-1,6-7]"},
		{"nfsserv1 nfsserv2 nfsserv3", "nfsserv[1-3]"},
		{"mgmt1 mgmt2 login1 login2 login3 login4", "login[1-4],mgmt[1-2]"},
		{"b2 b1 b0 b c a0 a", "a,a0,b,b[0-2],c"},
		{"node1 node2 node3 node4 node5 node7 node8 node9", "node[1-5,7-9]"},
		{"node001 node002 node003 node005", "node[001-003,005]"},
		{"node08 node09 node10 node11", "node[08-11]"},
		{"node-0000 node-0001 node-0002", "node-[0000-0002]"},
		{"node-10-05 node-10-15 node-10-25 node-20-05 node-20-15 node-20-25", "node-[10,20]-[05,15,25]"},
		{"node-0010 node-0020 node-0030", "node-[0010,0020,0030]"},
		{"node1x1 node1x2 node2x1 node2x2", "node[1-2]x[1-2]"},
		{"node1-ib0 node2-ib0 node1-ib1 node2-ib1", "node[1-2]-ib[0-1]"},
		{"comp-1-1 comp-1-2 comp-2-1 comp-2-2 login-1 login-2", "comp-[1-2]-[1-2],login-[1-2]"},
		{"web01 web02 web03 web20", "web[01-03,20]"},
		{"rack1-n01 rack1-n02 rack2-n01 rack2-n02", "rack[1-2]-n[01-02]"},
		{"10.0.1.1 10.0.1.2 10.0.1.3 10.0.2.1 10.0.2.2 10.0.2.3", "10.0.[1-2].[1-3]"},
		{"rack1-n1 rack1-n2 rack2-n3", "rack1-n[1-2],rack2-n3"},
		{"web01.dc1 web02.dc1 web01.dc2", "web01.dc[1-2],web02.dc1"},
		{"n1 n01", "n[1,01]"},
		{"n1 n2 n01 n02", "n[1-2,01-02]"},
		{"n098 n099 n100 n101", "n[098-101]"},
		{"n8 n9 n10 n11", "n[8-11]"},
		{"n9 n10 n09", "n[9,09-10]"},
		{"x", "x"},
		{"x x x", "x"},
		{"n5", "n5"},
		{"n0 n00 n000", "n[0,00,000]"},
		{"", ""},
	}
	for _, tt := range tests {
		got := Fold(words(tt.names))
		if got != tt.want {
			t.Errorf("Fold(%s) = %q; want %q", tt.names, got, tt.want)
		}
		checkRoundTrip(t, words(tt.names))
	}
}

// checkRoundTrip checks that Fold(names) expands back to exactly the set of names.
func checkRoundTrip(t *testing.T, names []string) {
	t.Helper()
	want := slices.Clone(names)
	Sort(want)
	want = slices.Compact(want)
	folded := Fold(names)
	got, err := Expand(folded, &Options{MaxHosts: 1 << 22})
	if err != nil {
		t.Fatalf("Expand(Fold(%d names) = %q): %v", len(names), folded, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Expand(Fold(%v)) = %v via %q", want, got, folded)
	}
}

// randomNames draws names from a few templates with random, sometimes mixed, zero padding.
func randomNames(r *rand.Rand) []string {
	num := func() string {
		n := r.IntN(40)
		switch r.IntN(4) {
		case 0:
			return fmt.Sprintf("%02d", n)
		case 1:
			return fmt.Sprintf("%03d", n)
		}
		return fmt.Sprint(n)
	}
	fixed := r.IntN(2) == 0 // one padding per field, as real clusters have
	pads := [3]int{r.IntN(4), r.IntN(4), r.IntN(4)}
	field := func(d int) string {
		if fixed {
			return fmt.Sprintf("%0*d", pads[d], r.IntN(30))
		}
		return num()
	}
	var names []string
	for range r.IntN(60) {
		switch r.IntN(6) {
		case 0:
			names = append(names, "n"+field(0))
		case 1:
			names = append(names, "rack"+field(0)+"-n"+field(1))
		case 2:
			names = append(names, "10.0."+field(0)+"."+field(1))
		case 3:
			names = append(names, "dc"+field(0)+"r"+field(1)+"u"+field(2))
		case 4:
			names = append(names, []string{"a", "b", "login", "x-y"}[r.IntN(4)])
		case 5:
			names = append(names, field(0)+"x")
		}
	}
	return names
}

// TestFoldProperty checks that expansion undoes folding on random sets, and that the
// expansion's order does not depend on the order of the input.
func TestFoldProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		names := randomNames(r)
		checkRoundTrip(t, names)
		shuffled := slices.Clone(names)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if a, b := Fold(names), Fold(shuffled); a != b {
			t.Fatalf("Fold depends on input order: %q vs %q", a, b)
		}
		a, _ := Expand(strings.Join(names, ","), nil)
		b, _ := Expand(strings.Join(shuffled, " "), nil)
		if !slices.Equal(a, b) {
			t.Fatalf("Expand order depends on input order: %v vs %v", a, b)
		}
		if !slices.IsSortedFunc(a, Compare) {
			t.Fatalf("Expand result not in natural order: %v", a)
		}
	}
}

// TestFoldFull checks that full products fold back into one bracketed name.
func TestFoldFull(t *testing.T) {
	for _, expr := range []string{
		"rack[1-4]-n[001-250]",
		"dc[1-2]r[01-10]u[1-42]",
		"10.[1-3].[0-255].[1-254]",
		"n[1-100000]",
	} {
		names, err := Expand(expr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := Fold(names); got != expr {
			t.Errorf("Fold(Expand(%q)) = %q", expr, got)
		}
	}
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{
		"web[01-20]", "n[1-9/2]", "rack[1-2]-n[01-04]", "10.0.[1-2].[1-3]", "a,b,c",
		"n[1-10]!n[3-5]", "n[1-5]&n[4-9]", "n[1-5]^n[4-9]", "n[1-3],-n2", "web[01-",
		"@web!@db", "@all", "n[1,01,2,02]", "n[098-101]", "/re/", "-/re/", "x[1-3]y[5]z",
	} {
		f.Add(s)
	}
	opts := tagOpts(map[string]string{"web": "web[1-4]", "db": "db[1-2],web4", "loop": "@loop"}, "web1", "x")
	f.Fuzz(func(t *testing.T, expr string) {
		o := *opts
		o.MaxHosts = 5000
		o.ReadFile = func(string) ([]byte, error) { return []byte("h1\nh[2-3]\n"), nil }
		o.Stdin = strings.NewReader("s1 s2")
		cerr := Check(expr, &o)
		start := time.Now()
		names, err := Expand(expr, &o)
		var cse, se *SyntaxError
		if errors.As(cerr, &cse) && errors.As(err, &se) && *cse != *se {
			t.Fatalf("Check(%q) = %v; Expand gave %v", expr, cerr, err)
		}
		if err != nil {
			return
		}
		if cerr != nil {
			t.Fatalf("Check(%q) = %v; Expand succeeded", expr, cerr)
		}
		o.Stdin = strings.NewReader("s1 s2")
		if general, err := Expand(expr+",", &o); err != nil || !slices.Equal(general, names) {
			t.Fatalf("Expand(%q) = %v; with a trailing ',' %v, %v", expr, names, general, err)
		}
		checkRoundTrip(t, names)
		if d := time.Since(start); d > 2*time.Second && !testing.Short() {
			// A loaded machine slows everything: only an input far slower than a
			// full-size expression measured now is a real find.
			if ref := referenceExpand(t, &o); d > slowFactor*ref {
				t.Fatalf("slow: %v, %.0f× a %d-name expansion (%v)", d, float64(d)/float64(ref), o.MaxHosts, ref)
			}
		}
	})
}

// slowFactor is how many times the work of a full-size expansion a fuzz input may take.
const slowFactor = 100

// referenceExpand times what FuzzExpand does with a plain range as large as o allows, so
// the fuzzer's slowness check scales with the machine's load of the moment.
func referenceExpand(t *testing.T, o *Options) time.Duration {
	expr := fmt.Sprintf("n[1-%d]", o.MaxHosts)
	start := time.Now()
	names, err := Expand(expr, o)
	if err != nil {
		t.Fatalf("reference expansion %q: %v", expr, err)
	}
	if _, err := Expand(expr+",", o); err != nil {
		t.Fatalf("reference expansion %q: %v", expr+",", err)
	}
	checkRoundTrip(t, names)
	return time.Since(start)
}

func BenchmarkExpand100k(b *testing.B) {
	for b.Loop() {
		names, err := Expand("rack[1-100]-n[0001-1000]", nil)
		if err != nil || len(names) != 100_000 {
			b.Fatal(len(names), err)
		}
	}
}

func BenchmarkExpand100kList(b *testing.B) {
	names, _ := Expand("n[1-100000]", nil)
	expr := strings.Join(names, ",")
	b.ResetTimer()
	for b.Loop() {
		if _, err := Expand(expr, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFold100k(b *testing.B) {
	names, _ := Expand("rack[1-100]-n[0001-1000]", nil)
	b.ResetTimer()
	for b.Loop() {
		if got := Fold(names); got != "rack[1-100]-n[0001-1000]" {
			b.Fatal(got)
		}
	}
}

func BenchmarkFold100kSparse(b *testing.B) {
	names, _ := Expand("n[1-200000/2]", nil)
	b.ResetTimer()
	for b.Loop() {
		Fold(names)
	}
}

func BenchmarkSort100k(b *testing.B) {
	names, _ := Expand("rack[1-100]-n[0001-1000]", nil)
	r := rand.New(rand.NewPCG(5, 6))
	work := make([]string, len(names))
	b.Run("keyed", func(b *testing.B) {
		for b.Loop() {
			copy(work, names)
			r.Shuffle(len(work), func(i, j int) { work[i], work[j] = work[j], work[i] })
			Sort(work)
		}
	})
	b.Run("compare", func(b *testing.B) {
		for b.Loop() {
			copy(work, names)
			r.Shuffle(len(work), func(i, j int) { work[i], work[j] = work[j], work[i] })
			slices.SortFunc(work, Compare)
		}
	})
}
