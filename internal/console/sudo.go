package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/hostlist"
	"github.com/shoal-sh/shoal/internal/proto"
)

// AskpassEnv names the program a script gives for the sudo password (as SUDO_ASKPASS): it is
// run once, with the prompt as its argument, and prints the password.
const AskpassEnv = "SHOAL_ASKPASS"

// Sudo runs commands through sudo as User and asks for the password once, only when some
// host's sudo wants one, then reuses it for every host and command.
type Sudo struct {
	User string
	// Ask gets the password, given a prompt; nil means AskPassword.
	Ask func(prompt string) ([]byte, error)
	// Retry asks once more when hosts refuse the password (the console).
	Retry bool
	// Notes receives what the person should know (hosts that refused the password).
	Notes io.Writer

	password []byte
}

// Forget drops the password kept for later commands.
func (su *Sudo) Forget() {
	clear(su.password)
	su.password = nil
}

// Prepare sets req to run through sudo. Without a password kept from before, it first asks
// every host whether its sudo wants one (one round trip, running nothing), and asks the
// person only when some host does; a password just given is checked on those hosts before
// the command runs, so a typo is one clear error per host and not a command half run.
func (su *Sudo) Prepare(ctx context.Context, sess client.Session, req *client.RunRequest) error {
	req.SudoUser = su.User
	if su.password != nil {
		req.SudoPassword = su.password
		return nil
	}
	need, err := su.check(ctx, sess, req, nil, proto.SudoPasswordRequired)
	if err != nil || len(need) == 0 {
		return err
	}
	tries := 1
	if su.Retry {
		tries = 2
	}
	for try := 0; try < tries; try++ {
		prompt := fmt.Sprintf("[sudo] password for %s on %s: ", su.User, hostlist.Fold(need))
		pw, err := su.ask(prompt)
		if err != nil {
			return err
		}
		wrong, err := su.check(ctx, sess, req, pw, proto.SudoPasswordIncorrect)
		if err != nil {
			clear(pw)
			return err
		}
		su.password = pw
		if len(wrong) == 0 {
			break
		}
		if try+1 < tries {
			fmt.Fprintf(su.notes(), "sudo: the password was refused on %s; try again\n", hostlist.Fold(wrong))
			su.Forget()
			need = wrong
			continue
		}
		// The command runs; the hosts that refused the password say so, one line each.
	}
	req.SudoPassword = su.password
	return nil
}

func (su *Sudo) notes() io.Writer {
	if su.Notes != nil {
		return su.Notes
	}
	return io.Discard
}

func (su *Sudo) ask(prompt string) ([]byte, error) {
	if su.Ask != nil {
		return su.Ask(prompt)
	}
	return AskPassword(prompt)
}

// check runs a sudo check on req's hosts and returns those whose check ended for reason.
func (su *Sudo) check(ctx context.Context, sess client.Session, req *client.RunRequest, pw []byte, reason string) ([]string, error) {
	creq := client.RunRequest{Hosts: req.Hosts, Command: "true", Identity: req.Identity, Fanout: req.Fanout,
		Timeout: req.Timeout, SudoUser: su.User, SudoPassword: pw, SudoCheck: true}
	run, err := sess.Run(ctx, creq)
	if err != nil {
		return nil, fmt.Errorf("asking the hosts about sudo: %w", err)
	}
	var out []string
	for ev := range run.Events {
		if ev.Kind == proto.EventDone && ev.Result != nil && ev.Result.Sudo == reason {
			out = append(out, ev.Host)
		}
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	slices.SortFunc(out, hostlist.Compare)
	return out, nil
}

// AskPassword gets a password: from the program in $SHOAL_ASKPASS when set (run once, the
// prompt as its argument), else from the terminal without echo.
func AskPassword(prompt string) ([]byte, error) {
	if prog := os.Getenv(AskpassEnv); prog != "" {
		cmd := exec.Command(prog, prompt)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("running %s %s: %w", AskpassEnv, prog, err)
		}
		pw := []byte(strings.TrimSuffix(strings.TrimSuffix(string(out), "\n"), "\r"))
		clear(out)
		return pw, nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, errors.New("sudo wants a password and there is no terminal to ask it on: set " + AskpassEnv + " to a program that prints it")
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	pw, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, fmt.Errorf("reading the password: %w", err)
	}
	return pw, nil
}
