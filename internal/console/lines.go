package console

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shoal-sh/shoal/internal/show"
)

// errPromptInterrupt is what a lineReader returns when Ctrl-C is pressed at the prompt.
var errPromptInterrupt = errors.New("interrupted at the prompt")

// lineReader is where the console's lines come from.
type lineReader interface {
	// ReadLine shows prompt and returns the next line; io.EOF at the end of the input.
	ReadLine(prompt string) (string, error)
	// Ask shows prompt and reads one answer, which is kept out of the history.
	Ask(prompt string) (string, error)
}

// maxLine bounds a line read from a pipe.
const maxLine = 1 << 20

// scanReader reads lines from a pipe or file, echoing each with its prompt so the output reads
// like a transcript (except in the JSON modes, whose output is for programs).
type scanReader struct {
	sc   *bufio.Scanner
	echo *console
	// promptTo, when set, receives the prompt before each line is read instead of the echo after
	// it: a person types at a terminal while the output goes to a pipe or file.
	promptTo io.Writer
	started  bool
}

func (s *scanReader) ReadLine(prompt string) (string, error) {
	if !s.started {
		s.sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		s.started = true
	}
	if s.promptTo != nil {
		fmt.Fprint(s.promptTo, prompt)
	}
	if !s.sc.Scan() {
		if err := s.sc.Err(); err != nil {
			return "", err
		}
		return "", io.EOF
	}
	line := s.sc.Text()
	if c := s.echo; c != nil && s.promptTo == nil && c.mode != show.ModeJSON && c.mode != show.ModeJSONStream && strings.TrimSpace(line) != "" {
		fmt.Fprintf(c.out, "%s%s\n", prompt, line)
	}
	return line, nil
}

func (s *scanReader) Ask(prompt string) (string, error) {
	return s.ReadLine(prompt)
}
