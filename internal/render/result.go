package render

import (
	"strings"

	"github.com/shoal-sh/shoal/internal/proto"
)

// Options are the caller's decisions about how to render.
type Options struct {
	// Color enables ANSI colours; decide it with ColorEnabled.
	Color bool
	// MaxLines, when > 0, caps the lines Gather shows of each group's stdout and of its
	// stderr; a note counts the lines left out, followed by MoreHint (how to see them all).
	// A terminal needs it: 16 MiB of output takes minutes to scroll past. 0 shows everything.
	MaxLines int
	// MaxBytes, when > 0, caps the bytes Gather shows of each group's stdout and of its
	// stderr in the same way; a line far longer than what is left is cut.
	MaxBytes int
	MoreHint string
	// NoPrefix makes Stream write output lines without the host column (clush -N); the line
	// that says how a host ended keeps it.
	NoPrefix bool
}

// hasExitCode reports whether r.ExitCode is a real exit status.
func hasExitCode(r *proto.HostResult) bool {
	return (r.Status == proto.StatusOK || r.Status == proto.StatusFailed) && r.Signal == ""
}

// ran reports whether the command is known to have run on the host, so its
// output (even empty) is worth showing.
func ran(r *proto.HostResult) bool {
	switch r.Status {
	case proto.StatusUnreachable, proto.StatusRefused, proto.StatusError:
		return len(r.Stdout) > 0 || len(r.Stderr) > 0 || r.PID != 0
	}
	return true
}

// signalName normalises a signal to the "SIGKILL" form; numbers and odd names pass through.
func signalName(s string) string {
	if s == "" || strings.HasPrefix(s, "SIG") {
		return s
	}
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return s
		}
	}
	return "SIG" + s
}

// errText returns the error message of r without a leading "host: " and with
// the host's own name replaced by "<host>", so that hosts failing the same way
// share one message.
func errText(host, err string) string {
	if host == "" || err == "" {
		return err
	}
	err = strings.TrimPrefix(err, host+": ")
	if !strings.Contains(err, host) {
		return err
	}
	var b strings.Builder
	for {
		i := strings.Index(err, host)
		if i < 0 {
			b.WriteString(err)
			return b.String()
		}
		j := i + len(host)
		if (i == 0 || !isNameByte(err[i-1])) && (j == len(err) || !isNameByte(err[j])) {
			b.WriteString(err[:i])
			b.WriteString("<host>")
		} else {
			b.WriteString(err[:j])
		}
		err = err[j:]
	}
}

// GroupError returns err as hosts failing the same way share it: without a leading "host: " and
// with the host's own name replaced by "<host>". ShowError makes it readable again.
func GroupError(host, err string) string { return errText(host, err) }

// hostPlaceholder stands for each host's own name in a message that groups share.
const hostPlaceholder = "<host>"

// ShowError returns msg, made by GroupError, as shown next to hosts: a "<host>: " that starts the
// message or one of its ": "-separated parts is dropped, since the hosts are named beside it
// ("refused: <host>: connecting to …" becomes "refused: connecting to …"), and with a single host
// any "<host>" left is that host's name again.
func ShowError(msg string, hosts []string) string {
	msg = strings.TrimPrefix(msg, hostPlaceholder+": ")
	for range len(msg) {
		s := strings.ReplaceAll(msg, ": "+hostPlaceholder+": ", ": ")
		if s == msg {
			break
		}
		msg = s
	}
	if len(hosts) == 1 {
		msg = strings.ReplaceAll(msg, hostPlaceholder, hosts[0])
	}
	return msg
}

// shownError is the error of r as shown next to r's host alone.
func shownError(r *proto.HostResult) string {
	return ShowError(errText(r.Host, r.Err), []string{r.Host})
}

// isNameByte reports whether c can be part of a host name, so a match of the
// host inside a longer name is not replaced.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

// outcome is the short label for how a result ended: "exit 3", "killed by
// SIGKILL", "timed out"; empty for a clean exit 0.
func outcome(r *proto.HostResult) string {
	sig := signalName(r.Signal)
	switch r.Status {
	case proto.StatusOK:
		return ""
	case proto.StatusFailed:
		if sig != "" {
			return "killed by " + sig
		}
		return "exit " + itoa(r.ExitCode)
	case proto.StatusTimeout:
		if sig != "" {
			return "timed out (" + sig + ")"
		}
		return "timed out"
	case proto.StatusCancelled:
		if sig != "" {
			return "cancelled (" + sig + ")"
		}
		return "cancelled"
	case "":
		return "no status"
	}
	return string(r.Status)
}
