package sshx

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"

	"golang.org/x/crypto/ssh"
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

// AskpassPrompt returns a PromptFunc that runs program with the prompt as its one argument and
// takes the first line it prints, as ssh runs SSH_ASKPASS.
func AskpassPrompt(program string) PromptFunc {
	return func(prompt string) ([]byte, error) {
		out, err := exec.Command(program, prompt).Output()
		if err != nil {
			return nil, fmt.Errorf("running askpass program %s: %w", program, err)
		}
		line, _, _ := bytes.Cut(out, []byte("\n"))
		return bytes.TrimSuffix(line, []byte("\r")), nil
	}
}

// secrets asks for passwords and keyboard-interactive answers, each prompt once for the life of
// a Dialer: every host that asks the same question gets the same answer. Answers live in memory
// only.
type secrets struct {
	// mu protects answers; it is held while prompting, so a question is asked once.
	mu      sync.Mutex
	answers map[string]string
}

func (s *secrets) ask(prompt PromptFunc, question string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.answers[question]; ok {
		return a, nil
	}
	b, err := prompt(question)
	if err != nil {
		return "", err
	}
	if s.answers == nil {
		s.answers = map[string]string{}
	}
	s.answers[question] = string(b)
	clear(b)
	return s.answers[question], nil
}

// interactiveAuth returns the password and keyboard-interactive methods for h, when
// ssh_config allows them and there is a way to ask.
func (d *Dialer) interactiveAuth(h *HostConfig) []ssh.AuthMethod {
	if d.Prompt == nil || h.BatchMode || h.PasswordPrompts == 0 {
		return nil
	}
	var out []ssh.AuthMethod
	if h.KbdInteractiveAuth {
		out = append(out, ssh.RetryableAuthMethod(ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			answers := make([]string, len(questions))
			for i, q := range questions {
				a, err := d.secrets.ask(d.Prompt, fmt.Sprintf("(%s) %s", h.User, q))
				if err != nil {
					return nil, err
				}
				answers[i] = a
			}
			return answers, nil
		}), 1))
	}
	if h.PasswordAuth {
		out = append(out, ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
			return d.secrets.ask(d.Prompt, fmt.Sprintf("Password for %s: ", h.User))
		}), 1))
	}
	return out
}
