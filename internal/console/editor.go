package console

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/reeflective/readline"
)

// editor reads lines from the terminal with a line editor: emacs or vi keys (inputrc), history
// kept in a file, and completion of built-ins, host names, tags and local paths.
type editor struct {
	rl     *readline.Shell
	prompt string
}

// newEditor returns an editor for c. historyFile, when set, keeps the history across sessions.
func newEditor(c *console, historyFile string) *editor {
	e := &editor{rl: readline.NewShell()}
	e.rl.Prompt.Primary(func() string { return e.prompt })
	// The probe asks the terminal where the cursor is and reads the answer from stdin; keys typed
	// ahead that arrive in the same read as the answer are lost. Our prompt starts at column 0.
	e.rl.Config.Set("cursor-position-probe", false)
	if historyFile != "" {
		if err := os.MkdirAll(filepath.Dir(historyFile), 0o700); err == nil {
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

func (e *editor) ReadLine(prompt string) (string, error) {
	e.prompt = prompt
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
