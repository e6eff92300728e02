package console

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/reeflective/readline"
	"github.com/reeflective/readline/inputrc"

	"github.com/shoal-sh/shoal/internal/render"
)

// editor reads lines from the terminal with a line editor: emacs or vi keys (inputrc), history
// kept in a file, and completion of built-ins, host names, tags and local paths.
type editor struct {
	rl     *readline.Shell
	prompt string
}

// newEditor returns an editor for c. historyFile, when set, keeps the history across sessions.
func newEditor(c *console, historyFile string, historySize int) *editor {
	// inputrc files may hold "$if shoal" sections for the console alone.
	e := &editor{rl: readline.NewShell(inputrc.WithApp("shoal"))}
	e.rl.Prompt.Primary(func() string { return e.prompt })
	// The probe asks the terminal where the cursor is and reads the answer from stdin; keys typed
	// ahead that arrive in the same read as the answer are lost. Our prompt starts at column 0.
	e.rl.Config.Set("cursor-position-probe", false)
	setCompletionKeys(e.rl)
	setViChangeWord(e.rl)
	if historyFile != "" {
		if err := os.MkdirAll(filepath.Dir(historyFile), 0o700); err == nil {
			if err := trimHistory(historyFile, historySize); err != nil {
				c.errorf("%v", err)
			}
			e.rl.History.AddFromFile("history", historyFile)
		} else {
			c.errorf("keeping history: %v", err)
		}
	}
	e.rl.Completer = func(line []rune, cursor int) readline.Completions {
		s := string(line)
		pos := len(string(line[:min(cursor, len(line))]))
		// readline works out the word being completed itself, the same way complete does.
		_, cands := c.complete(s, pos)
		vals := make([]readline.Completion, len(cands))
		for i, cd := range cands {
			vals[i] = readline.Completion{Value: cd.value, Display: cd.value, Description: cd.desc, Tag: cd.tag}
		}
		comps := readline.CompleteRaw(vals).NoSpace('/')
		return comps
	}
	return e
}

// setViChangeWord makes vi mode's cw change to the end of the word, as readline and vi do
// (cw on a word is ce), where reeflective/readline's cw also deletes the blanks after it. The
// operators c, d and y are wrapped to note which one waits for its movement, and w, when it
// is the movement of a c that starts on a word, moves just past the word's end instead of to
// the next word. readline's own bindings of these keys are set whenever it loads its
// configuration, so these go in after it has.
func setViChangeWord(rl *readline.Shell) {
	cmds := rl.Keymap.Commands()
	change, del, yank, forward := cmds["vi-change-to"], cmds["vi-delete-to"], cmds["vi-yank-to"], cmds["vi-forward-word"]
	if change == nil || del == nil || yank == nil || forward == nil {
		return // another readline: leave its keys alone
	}
	changing := false
	rl.Keymap.Register(map[string]func(){
		"shoal-vi-change-to": func() { changing = true; change() },
		"shoal-vi-delete-to": func() { changing = false; del() },
		"shoal-vi-yank-to":   func() { changing = false; yank() },
		"shoal-vi-forward-word": func() {
			if !changing || rl.Keymap.Local() != "vi-opp" {
				forward()
				return
			}
			changing = false
			line, pos := []rune(*rl.Line()), rl.Cursor().Pos()
			if pos >= len(line) || unicode.IsSpace(line[pos]) {
				forward() // on blanks, cw changes them up to the next word
				return
			}
			rl.Cursor().Set(wordEnd(line, pos))
		},
	})
	for _, km := range []string{"vi", "vi-command", "vi-move"} {
		rl.Config.Bind(km, "c", "shoal-vi-change-to", false)
		rl.Config.Bind(km, "d", "shoal-vi-delete-to", false)
		rl.Config.Bind(km, "y", "shoal-vi-yank-to", false)
		rl.Config.Bind(km, "w", "shoal-vi-forward-word", false)
	}
}

// wordEnd returns the index just past the vi word (letters, digits and _, or a run of other
// non-blank characters) that holds line[pos].
func wordEnd(line []rune, pos int) int {
	isWord := func(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }
	word := isWord(line[pos])
	end := pos
	for end < len(line) && !unicode.IsSpace(line[end]) && isWord(line[end]) == word {
		end++
	}
	return end
}

// setCompletionKeys makes Tab work as in bash: it inserts what the candidates share and lists them
// (built-ins with their descriptions); Tab again walks the list. readline's own "complete" inserts
// the first candidate and hides the rest, so ":p" became ":ping" with no sign of ":put". The
// user's inputrc is read again afterwards, so a binding or setting there still wins.
func setCompletionKeys(rl *readline.Shell) {
	rl.Config.Set("menu-complete-display-prefix", true)
	for _, km := range []string{"emacs", "emacs-standard", "vi-insert"} {
		rl.Config.Bind(km, inputrc.Unescape(`\C-i`), "menu-complete", false)
	}
	_ = rl.Keymap.ReloadConfig(rl.Opts...)
}

func (e *editor) ReadLine(prompt string) (string, error) {
	e.prompt = prompt
	// readline redraws the line with a move down and an erase below, which at the bottom row
	// of the window (where the prompt is after every screenful of output) erases the prompt
	// itself, since it cannot ask the terminal where the cursor is (see above). A newline and a
	// move back up scroll one empty row into view below the prompt, and do nothing elsewhere.
	// Before them, as zsh's PROMPT_SP does, a row's worth of spaces and a carriage return take
	// the cursor to the start of a fresh row without erasing what a local command (!printf abc)
	// left unfinished on the current one: from column 0 the spaces stop at the row's end.
	if w := render.TerminalWidth(os.Stdout); w > 0 {
		fmt.Fprint(os.Stdout, strings.Repeat(" ", w)+"\r")
	}
	fmt.Fprint(os.Stdout, "\n\x1b[A")
	// In vi mode every line starts in insert mode, as in readline; reeflective/readline starts
	// a line in the mode the last one ended in, so typing after Esc-Enter ran vi commands.
	switch e.rl.Keymap.Main() {
	case "vi", "vi-command", "vi-move":
		e.rl.Keymap.SetMain("vi-insert")
	}
	line, err := e.rl.Readline()
	if errors.Is(err, readline.ErrInterrupt) {
		return "", errPromptInterrupt
	}
	return line, err
}

// Ask reads one answer in the terminal's line mode, so it stays out of the history.
func (e *editor) Ask(prompt string) (string, error) {
	fmt.Fprint(os.Stdout, prompt)
	var b []byte
	buf := make([]byte, 1)
	for len(b) < 1024 {
		n, err := os.Stdin.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			b = append(b, buf[0])
		}
		if err != nil {
			if len(b) > 0 {
				break
			}
			return "", err
		}
	}
	return strings.TrimRight(string(b), "\r"), nil
}

// trimHistory keeps only the last max lines of the history file (one JSON object per line);
// max ≤ 0 keeps everything. The file is replaced atomically.
func trimHistory(path string, max int) error {
	if max <= 0 {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("trimming history: %w", err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) <= max {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".history-*")
	if err != nil {
		return fmt.Errorf("trimming history: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(bytes.Join(lines[len(lines)-max:], nil)); err != nil {
		tmp.Close()
		return fmt.Errorf("trimming history: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("trimming history: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("trimming history: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("trimming history: %w", err)
	}
	return nil
}
