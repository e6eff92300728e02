// Package sshx is shoal's in-process SSH client: it resolves hosts through ssh_config, checks host
// keys against known_hosts strictly, authenticates with ssh-agent and identity files, follows
// ProxyJump hops, and runs commands whose stdin and stdout carry the agent protocol.
//
// It is built on golang.org/x/crypto/ssh so that one daemon can hold thousands of connections in
// one process; it imports no other shoal package.
package sshx
