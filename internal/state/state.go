// Package state keeps the daemon's private state file and writes files atomically.
//
// The state file records, per host, where the agent is installed, its hash and
// version, and when the host was last seen. It is JSON, mode 0600, and always
// replaced whole (temp file, rename), so a reader sees either the old or the new
// file, never half of one; a crash may lose the last update (see WriteFile).
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/shoal-sh/shoal/internal/fsutil"
)

// FileMode is the mode of every file this package writes.
const FileMode fs.FileMode = 0o600

// DirMode is the mode of directories this package creates.
const DirMode fs.FileMode = 0o700

// Host is what the daemon remembers about one host.
type Host struct {
	Transport    string    `json:"transport,omitempty"`
	AgentPath    string    `json:"agent_path,omitempty"`
	AgentHash    string    `json:"agent_hash,omitempty"`
	AgentVersion string    `json:"agent_version,omitempty"`
	LastSeen     time.Time `json:"last_seen,omitzero"`
	LastState    string    `json:"last_state,omitempty"`
}

// File is the content of the state file.
type File struct {
	Version int             `json:"version"`
	Updated time.Time       `json:"updated,omitzero"`
	Hosts   map[string]Host `json:"hosts"`
	// Runs are the runs in flight, by run id: a daemon that starts after a crash
	// reconnects to their hosts and files the results the agents kept under them.
	Runs map[uint64]Run `json:"runs,omitempty"`
}

// Run is a run in flight: what its record in the result history needs, and its hosts.
type Run struct {
	Command  string             `json:"command"`
	Started  time.Time          `json:"started"`
	Identity string             `json:"identity,omitempty"`
	UID      int                `json:"uid"`
	Cert     string             `json:"cert,omitempty"`
	Config   json.RawMessage    `json:"config,omitempty"` // the client's configuration, for resolving its hosts
	Hosts    map[string]RunHost `json:"hosts"`
}

// RunHost is one host of a run in flight.
type RunHost struct {
	RequestID uint64 `json:"request_id,omitempty"` // the agent's id of the command, once it started
	Reported  bool   `json:"reported,omitempty"`   // its result went to the client
}

// Clone returns a copy of r that shares nothing with it.
func (r Run) Clone() Run {
	r.Hosts = maps.Clone(r.Hosts)
	return r
}

// fileVersion is the state file format version written by this build.
const fileVersion = 1

// Load reads the state file at path; a missing file is an empty state.
// A state file another user owns or may write is refused (*fsutil.PrivateError): it
// says where the agents are and which hosts to reconnect to.
func Load(path string) (*File, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{Version: fileVersion, Hosts: map[string]Host{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state file: %w", err)
	}
	defer fh.Close()
	if err := fsutil.CheckPrivateFile(fh, path, "the state file"); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(fh)
	if err != nil {
		return nil, fmt.Errorf("reading state file: %w", err)
	}
	f := new(File)
	if err := json.Unmarshal(data, f); err != nil {
		return nil, fmt.Errorf("decoding state file %s: %w", path, err)
	}
	if f.Hosts == nil {
		f.Hosts = map[string]Host{}
	}
	return f, nil
}

// Save writes f to path atomically with mode 0600, creating the directory (0700) if needed.
func (f *File) Save(path string) error {
	f.Version = fileVersion
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding state file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), DirMode); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	return WriteFile(path, append(data, '\n'), FileMode)
}

// Names returns the host names in f, sorted.
func (f *File) Names() []string {
	out := make([]string, 0, len(f.Hosts))
	for h := range f.Hosts {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// WriteFile atomically replaces name with data, with mode perm, without fsync
// (fsutil.ReplaceFile): the state file and the result history are conveniences a crash
// may roll back (the audit log is the record). A reader sees the old content or the new.
func WriteFile(name string, data []byte, perm fs.FileMode) error {
	return fsutil.ReplaceFile(name, data, perm)
}
