//go:build !linux

package agent

import (
	"errors"
	"os"

	"github.com/shoal-sh/shoal/internal/proto"
)

// openPTY is Linux's alone for now.
func openPTY(*proto.PTY) (master, slave *os.File, err error) {
	return nil, nil, errors.New("the agent gives commands a terminal on Linux only")
}
