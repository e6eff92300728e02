package sshx

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HostConfig is the resolved ssh_config of one host, as `ssh -G` resolves it.
type HostConfig struct {
	Alias               string
	HostName            string
	User                string
	Port                int
	IdentityFiles       []string // expanded paths, in order
	CertificateFiles    []string // expanded paths, in order
	IdentitiesOnly      bool
	ProxyJump           []string // hops as written ("[user@]host[:port]"), first hop first; nil for none
	ProxyCommand        string   // as written, tokens unexpanded; "" for none
	ConnectTimeout      time.Duration
	UserKnownHostsFiles []string // expanded paths
	// GlobalKnownHostsFiles are checked after UserKnownHostsFiles; keys are never added to them.
	GlobalKnownHostsFiles []string
	// HostKeyAlias, when set, is the name host keys are looked up and recorded under.
	HostKeyAlias string
	// IdentityAgent is the agent socket ("" for SSH_AUTH_SOCK, "none" for no agent).
	IdentityAgent string
	// StrictHostKeyChecking is "yes", "accept-new" or "ask" (which shoal treats as "yes": it
	// never prompts). "no" and "off" are read as "accept-new": shoal never accepts a changed key.
	StrictHostKeyChecking string
	ServerAliveInterval   time.Duration
	ServerAliveCountMax   int
	HashKnownHosts        bool // keys added under accept-new are written hashed
	BatchMode             bool // never ask for a password or passphrase
	PasswordAuth          bool // PasswordAuthentication
	KbdInteractiveAuth    bool // KbdInteractiveAuthentication
	PasswordPrompts       int  // NumberOfPasswordPrompts
	// AddressFamily is "tcp", "tcp4" or "tcp6".
	AddressFamily string
	BindAddress   string // local address to connect from; "" for any
	// SendEnv are the patterns of local environment variables sent to the host; SetEnv the
	// NAME=VALUE pairs sent besides. sshd keeps those its AcceptEnv names.
	SendEnv, SetEnv []string
	// KexAlgorithms, Ciphers and MACs are what ssh_config asks for, less what the built-in
	// client does not implement; nil when ssh_config leaves them at the default.
	KexAlgorithms, Ciphers, MACs []string
	// ForwardAgent is "" for no forwarding, "yes" for the agent the client uses, or the
	// socket of the agent to forward.
	ForwardAgent string

	// Unsupported, when not nil, is an option the built-in client cannot honour.
	Unsupported *ConfigError

	dump []string // ssh -G lines of the options above
}

// Dump returns the options shoal reads in `ssh -G`'s format: one "key value" line each, keys
// lowercase, in ssh -G's order.
func (h *HostConfig) Dump() string { return strings.Join(h.dump, "\n") + "\n" }

// Addr returns HostName:Port.
func (h *HostConfig) Addr() string {
	return joinHostPort(h.HostName, h.Port)
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// parseHop splits a ProxyJump hop "[user@]host[:port]" or "ssh://[user@]host[:port]".
func parseHop(hop string) (user, host string, port int, err error) {
	hop = strings.TrimPrefix(hop, "ssh://")
	if i := strings.LastIndex(hop, "@"); i >= 0 {
		user, hop = hop[:i], hop[i+1:]
	}
	host = hop
	if strings.HasPrefix(hop, "[") {
		end := strings.Index(hop, "]")
		if end < 0 {
			return "", "", 0, fmt.Errorf("bad ProxyJump hop %q", hop)
		}
		host = hop[1:end]
		hop = hop[end+1:]
		if strings.HasPrefix(hop, ":") {
			port, err = strconv.Atoi(hop[1:])
		}
	} else if i := strings.LastIndex(hop, ":"); i >= 0 && strings.Count(hop, ":") == 1 {
		host = hop[:i]
		port, err = strconv.Atoi(hop[i+1:])
	}
	if err != nil || host == "" || port < 0 || port > 65535 {
		return "", "", 0, fmt.Errorf("bad ProxyJump hop %q", hop)
	}
	return user, host, port, nil
}

// Key identifies the connection h describes: two HostConfigs with the same Key reach the same
// account by the same way, with the same credentials and host key checks.
func (h *HostConfig) Key() string {
	unsupported := ""
	if h.Unsupported != nil {
		unsupported = h.Unsupported.Error()
	}
	return fmt.Sprintf("%#v", []any{h.Alias, h.HostName, h.User, h.Port, h.IdentityFiles, h.CertificateFiles,
		h.IdentitiesOnly, h.ProxyJump, h.ProxyCommand, h.ConnectTimeout, h.UserKnownHostsFiles,
		h.GlobalKnownHostsFiles, h.HostKeyAlias, h.IdentityAgent, h.StrictHostKeyChecking,
		h.ServerAliveInterval, h.ServerAliveCountMax, h.HashKnownHosts, h.BatchMode, h.PasswordAuth,
		h.KbdInteractiveAuth, h.PasswordPrompts, h.AddressFamily, h.BindAddress, h.SendEnv, h.SetEnv, h.ForwardAgent, h.KexAlgorithms, h.Ciphers, h.MACs, unsupported})
}

// environment returns the variables to send to the host, name and value: the local ones
// SendEnv names, then SetEnv's.
func (h *HostConfig) environment() [][2]string {
	var out [][2]string
	if len(h.SendEnv) > 0 {
		for _, kv := range os.Environ() {
			name, value, _ := strings.Cut(kv, "=")
			if slices.ContainsFunc(h.SendEnv, func(p string) bool { return matchPattern(name, p) }) {
				out = append(out, [2]string{name, value})
			}
		}
	}
	for _, kv := range h.SetEnv {
		name, value, _ := strings.Cut(kv, "=")
		out = append(out, [2]string{name, value})
	}
	return out
}
