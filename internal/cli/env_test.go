package cli

import (
	"maps"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	got, err := parseEnvFile([]byte("# c\n\nA=1\nexport B='two words'\nC=\"q\"\nD=a=b\nE=\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "q", "D": "a=b", "E": ""}
	if !maps.Equal(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
	for _, bad := range []string{"NOEQUALS\n", "1A=x\n", "A B=x\n"} {
		if _, err := parseEnvFile([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add([]byte("A=1\n# x\nexport B='y'\n"))
	f.Add([]byte("=\n\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseEnvFile(b)
		if err != nil {
			return
		}
		for k := range m {
			if _, _, err := parseEnvPair(k + "=v"); err != nil {
				t.Errorf("name %q accepted from the file but not by --env: %v", k, err)
			}
		}
	})
}
