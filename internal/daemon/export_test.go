package daemon

import (
	"net"
	"time"
)

// SetPeerCred replaces how the daemon reads a client's credentials, for tests.
func SetPeerCred(o *Options, f func(net.Conn) (PeerCred, error)) { o.peerCred = f }

// SetSendTimeout shortens how long the daemon waits for a client that stopped reading.
func SetSendTimeout(o *Options, d time.Duration) { o.sendTimeout = d }

// SetGatewayBeat shortens how often the daemon checks its gateways.
func SetGatewayBeat(o *Options, d time.Duration) { o.gatewayBeat = d }
