package proto

// Reason says why a host did not run a request, or did not run it to its end: the one
// failure taxonomy of the transports, the host sessions, the daemon and its clients. A
// Reason is finer than the Status it gives (Reason.Status): an authentication failure
// and a changed host key are both unreachable, and scripts tell them apart by the
// reason. It travels as its string and is the `reason` of `--json` output
// (docs/json.md), so values are never renamed. The empty Reason is none known.
type Reason string

// The reasons. The first group is about reaching the host and starting its agent, the
// second about the agent and its session.
const (
	ReasonUnreachable    Reason = "unreachable"        // the network (no route, no such name, a TCP error other than refused), or no hello from the agent in time
	ReasonConnectFailed  Reason = "connect_failed"     // connecting failed another way: the ssh program did not start, an SSH error of no known kind
	ReasonConnRefused    Reason = "connection_refused" // the host refused the TCP connection
	ReasonConnectTimeout Reason = "connect_timeout"    // connecting, the SSH handshake or starting the agent took too long
	ReasonAuthFailed     Reason = "auth_failed"        // the host accepted none of the credentials offered
	ReasonHostKeyUnknown Reason = "host_key_unknown"   // the host's key is not in known_hosts, and the policy forbids adding it
	ReasonHostKeyChanged Reason = "host_key_changed"   // the host's key differs from known_hosts: a reinstalled host, or an attack
	ReasonNoAgentBinary  Reason = "no_agent_binary"    // there is no agent binary for the host's OS and architecture
	ReasonInstallFailed  Reason = "install_failed"     // uploading or starting the agent failed

	ReasonBusy           Reason = "busy"            // the agent's queue was full
	ReasonCommandTimeout Reason = "command_timeout" // the command ran past its timeout and was stopped
	ReasonLost           Reason = "lost"            // the connection to the agent was lost during the request
	ReasonProtocol       Reason = "protocol"        // the agent broke the protocol, or its version or binary is not the expected one
	ReasonRemote         Reason = "remote"          // the agent reported an error for the request
	ReasonClosed         Reason = "closed"          // the host session was closed (the daemon is stopping)
)

// reasons holds, for each Reason, the words error messages use for it (they predate the
// reasons, and people and tests read them) and the Status it gives.
var reasons = map[Reason]struct {
	phrase string
	status Status
}{
	"":                   {"error", StatusError},
	ReasonUnreachable:    {"unreachable", StatusUnreachable},
	ReasonConnectFailed:  {"error", StatusUnreachable},
	ReasonConnRefused:    {"refused", StatusUnreachable},
	ReasonConnectTimeout: {"timeout", StatusUnreachable},
	ReasonAuthFailed:     {"auth failed", StatusUnreachable},
	ReasonHostKeyUnknown: {"host key unknown", StatusUnreachable},
	ReasonHostKeyChanged: {"host key changed", StatusUnreachable},
	ReasonNoAgentBinary:  {"no agent binary", StatusError},
	ReasonInstallFailed:  {"install failed", StatusError},
	ReasonBusy:           {"refused", StatusRefused},
	ReasonCommandTimeout: {"timeout", StatusTimeout},
	ReasonLost:           {"lost", StatusError},
	ReasonProtocol:       {"protocol error", StatusError},
	ReasonRemote:         {"remote error", StatusError},
	ReasonClosed:         {"closed", StatusError},
}

// Phrase returns the words error messages use for r, as in "h1: auth failed: …"; a
// Reason this build does not know is its own phrase.
func (r Reason) Phrase() string {
	if x, ok := reasons[r]; ok {
		return x.phrase
	}
	return string(r)
}

// Status returns the status a host failing for r ends with: unreachable for the
// reasons of reaching it, refused when busy, timeout for a command timeout, and error
// for the rest (and for a Reason this build does not know).
func (r Reason) Status() Status {
	if x, ok := reasons[r]; ok {
		return x.status
	}
	return StatusError
}
