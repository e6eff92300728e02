package sshx

import (
	"errors"
	"net"
	"testing"
)

func TestErrorTextSaysItOnce(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Host: "b1", Op: "connecting to 127.0.0.1:1", Class: ErrRefused,
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}},
			"b1: connecting to 127.0.0.1:1: connect: connection refused"},
		{&Error{Host: "b1", Op: "connecting to 127.0.0.1:1", Class: ErrTimeout, Err: errors.New("i/o deadline")},
			"b1: connecting to 127.0.0.1:1: timed out: i/o deadline"},
		{&Error{Host: "b1", Op: "logging in", Err: errors.New("no keys")},
			"b1: logging in: no keys"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
		if tt.err.Class != nil && !errors.Is(tt.err, tt.err.Class) {
			t.Errorf("%q: errors.Is(err, class) = false", tt.err)
		}
	}
}
