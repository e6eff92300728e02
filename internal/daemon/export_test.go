package daemon

import "net"

// SetPeerCred replaces how the daemon reads a client's credentials, for tests.
func SetPeerCred(o *Options, f func(net.Conn) (PeerCred, error)) { o.peerCred = f }
