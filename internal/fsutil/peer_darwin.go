package fsutil

import "golang.org/x/sys/unix"

// SocketPeer returns the user and process at the other end of the Unix socket fd.
func SocketPeer(fd int) (uid, pid int, err error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, 0, err
	}
	pid, err = unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	if err != nil {
		pid = 0 // the user is what is checked; the pid only names the client in the log
	}
	return int(cred.Uid), pid, nil
}
