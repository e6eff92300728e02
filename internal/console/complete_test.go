package console

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestComplete(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "file.txt"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden"), nil, 0o644)
	c := &console{opt: Options{
		HostNames: func() []string { return []string{"web01", "web02", "db1"} },
		TagNames:  func() []string { return []string{"web", "db"} },
	}}
	tests := []struct {
		line     string
		wantWord string
		want     []string
	}{
		{":ta", ":ta", []string{":target"}},
		{":q", ":q", []string{":quit"}},
		{":target w", "w", []string{"web01", "web02"}},
		{":target web01,d", "web01,d", []string{"web01,db1"}},
		{":add @", "@", []string{"@all", "@db", "@web"}},
		{":remove web01!@w", "web01!@w", []string{"web01!@web"}},
		{":output s", "s", []string{"stream"}},
		{":help pi", "pi", []string{"ping"}},
		{":put " + dir + "/f", dir + "/f", []string{dir + "/file.txt"}},
		{":put " + dir + "/s", dir + "/s", []string{dir + "/sub/"}},
		{":put " + dir + "/.h", dir + "/.h", []string{dir + "/.hidden"}},
		{"!cat " + dir + "/fi", dir + "/fi", []string{dir + "/file.txt"}},
		{"cat " + dir + "/fi", dir + "/fi", []string{dir + "/file.txt"}},
		{"uptim", "uptim", nil},
		{":timeout 1", "1", nil},
	}
	for _, tt := range tests {
		word, cands := c.complete(tt.line, len(tt.line))
		var got []string
		for _, cd := range cands {
			got = append(got, cd.value)
		}
		slices.Sort(got)
		if word != tt.wantWord || !slices.Equal(got, tt.want) {
			t.Errorf("complete(%q) = %q, %q; want %q, %q", tt.line, word, got, tt.wantWord, tt.want)
		}
	}
}

func TestTrimHistory(t *testing.T) {
	p := filepath.Join(t.TempDir(), "history")
	var all string
	for i := range 10 {
		all += `{"block":"cmd` + string(rune('0'+i)) + `"}` + "\n"
	}
	os.WriteFile(p, []byte(all), 0o600)
	if err := trimHistory(p, 3); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := `{"block":"cmd7"}` + "\n" + `{"block":"cmd8"}` + "\n" + `{"block":"cmd9"}` + "\n"; string(b) != want {
		t.Errorf("got %q; want %q", b, want)
	}
	if err := trimHistory(filepath.Join(t.TempDir(), "none"), 3); err != nil {
		t.Errorf("missing file: %v", err)
	}
}
