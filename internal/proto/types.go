package proto

import (
	"fmt"
	"sync"
)

// Version is the protocol version carried in every envelope and in hello.
const Version uint16 = 1

// Type identifies the body of an envelope. Wire values are never reordered or reused.
type Type uint16

// Daemon↔agent message types (1–63). See the package documentation for who sends which.
const (
	TypeHello      Type = 1
	TypePing       Type = 2
	TypePong       Type = 3
	TypeInfo       Type = 4
	TypeInfoResult Type = 5
	TypeExec       Type = 6
	TypeStarted    Type = 7
	TypeOutput     Type = 8
	TypeExit       Type = 9
	TypeAck        Type = 10
	TypeRead       Type = 11
	TypeReadChunk  Type = 12
	TypeWrite      Type = 13
	TypeWriteChunk Type = 14
	TypeWriteDone  Type = 15
	TypeWritten    Type = 16
	TypeKill       Type = 17
	TypeKilled     Type = 18
	TypeBusy       Type = 19
	TypeError      Type = 20
)

// The ranges of wire values, by who talks.
const (
	AgentTypeMin  Type = 1   // first daemon↔agent type
	AgentTypeMax  Type = 63  // last daemon↔agent type
	ClientTypeMin Type = 64  // first client↔daemon type
	ClientTypeMax Type = 127 // last client↔daemon type
)

// Capabilities announced by this build's agent in hello.
var AgentCapabilities = []string{"exec", "output-files", "redeliver", "ping", "info", "read", "write", "kill", "busy", "sudo", "script", "pty"}

type typeInfo struct {
	name    string
	newBody func() any
}

var (
	typesMu sync.RWMutex
	types   = map[Type]typeInfo{}
)

// Register records message type t with its name and a constructor of a pointer to its zero body.
// It panics when t is already registered or is 0, so collisions are found at init time.
func Register(t Type, name string, newBody func() any) {
	typesMu.Lock()
	defer typesMu.Unlock()
	if t == 0 {
		panic("proto: registering type 0")
	}
	if old, ok := types[t]; ok {
		panic(fmt.Sprintf("proto: type %d registered twice (%s, %s)", t, old.name, name))
	}
	types[t] = typeInfo{name: name, newBody: newBody}
}

// Known reports whether t is a registered message type.
func (t Type) Known() bool {
	typesMu.RLock()
	defer typesMu.RUnlock()
	_, ok := types[t]
	return ok
}

// String returns the wire name of t, such as "exec", or "type(N)" when unknown.
func (t Type) String() string {
	typesMu.RLock()
	defer typesMu.RUnlock()
	if ti, ok := types[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("type(%d)", uint16(t))
}

// NewBody returns a pointer to a zero body for type t, or an *UnknownTypeError.
func NewBody(t Type) (any, error) {
	typesMu.RLock()
	ti, ok := types[t]
	typesMu.RUnlock()
	if !ok {
		return nil, &UnknownTypeError{Type: t}
	}
	return ti.newBody(), nil
}

// Types returns every registered type, in no particular order.
func Types() []Type {
	typesMu.RLock()
	defer typesMu.RUnlock()
	out := make([]Type, 0, len(types))
	for t := range types {
		out = append(out, t)
	}
	return out
}

func init() {
	Register(TypeHello, "hello", func() any { return new(Hello) })
	Register(TypePing, "ping", func() any { return new(Ping) })
	Register(TypePong, "pong", func() any { return new(Pong) })
	Register(TypeInfo, "info", func() any { return new(InfoRequest) })
	Register(TypeInfoResult, "info-result", func() any { return new(Info) })
	Register(TypeExec, "exec", func() any { return new(Exec) })
	Register(TypeStarted, "started", func() any { return new(Started) })
	Register(TypeOutput, "output", func() any { return new(Output) })
	Register(TypeExit, "exit", func() any { return new(Exit) })
	Register(TypeAck, "ack", func() any { return new(Ack) })
	Register(TypeRead, "read", func() any { return new(Read) })
	Register(TypeReadChunk, "read-chunk", func() any { return new(ReadChunk) })
	Register(TypeWrite, "write", func() any { return new(Write) })
	Register(TypeWriteChunk, "write-chunk", func() any { return new(WriteChunk) })
	Register(TypeWriteDone, "write-done", func() any { return new(WriteDone) })
	Register(TypeWritten, "written", func() any { return new(Written) })
	Register(TypeKill, "kill", func() any { return new(Kill) })
	Register(TypeKilled, "killed", func() any { return new(Killed) })
	Register(TypeBusy, "busy", func() any { return new(Busy) })
	Register(TypeError, "error", func() any { return new(Error) })
}
