package agent

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"

	"github.com/shoal-sh/shoal/internal/proto"
)

func TestSudoReason(t *testing.T) {
	for _, tt := range []struct{ msg, want string }{
		{"a password is required", proto.SudoPasswordRequired},
		{"sorry, you must have a tty to run sudo", proto.SudoNoTTY},
		{"a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper", proto.SudoNoTTY},
		{"user x is not in the sudoers file.", proto.SudoRefused},
	} {
		if got := sudoReason(tt.msg); got != tt.want {
			t.Errorf("sudoReason(%q): got %q; want %q", tt.msg, got, tt.want)
		}
	}
}

// TestAskpassServesOnce checks that the askpass socket gives the password limit times, then
// nothing, calling over, and leaves nothing behind.
func TestAskpassServesOnce(t *testing.T) {
	var overs atomic.Int32
	a, err := startAskpass([]byte("pw"), 1, func() { overs.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		c, err := net.Dial("unix", a.socket())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if got := read(); got != "pw" {
		t.Errorf("first: got %q; want pw", got)
	}
	if got := read(); got != "" || overs.Load() != 1 {
		t.Errorf("second: got %q, over called %d times; want nothing and once", got, overs.Load())
	}
	dir := a.dir
	a.close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the askpass directory %s is still there", dir)
	}
}
