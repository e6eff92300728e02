package sshx

import (
	"fmt"
	"os"

	"golang.org/x/term"
)

// TTYPrompt returns a PromptFunc that asks on the controlling terminal (/dev/tty), without echo.
// With no terminal it fails, and the key is skipped as under BatchMode.
func TTYPrompt() PromptFunc {
	return func(prompt string) ([]byte, error) {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("opening terminal: %w", err)
		}
		defer tty.Close()
		if _, err := fmt.Fprint(tty, prompt); err != nil {
			return nil, fmt.Errorf("writing prompt: %w", err)
		}
		pass, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return nil, fmt.Errorf("reading passphrase: %w", err)
		}
		return pass, nil
	}
}
