package fsutil

import "golang.org/x/sys/unix"

// SocketPeer returns the user and process at the other end of the Unix socket fd.
func SocketPeer(fd int) (uid, pid int, err error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, 0, err
	}
	return int(cred.Uid), int(cred.Pid), nil
}
