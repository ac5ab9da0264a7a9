// Package seqpacket passes messages, each with at most one open file, over
// a SOCK_SEQPACKET socket pair: the container's control socket between
// devbox and its init, and the SSH server's line to a helper that runs as
// the login user. A message is one datagram, so no framing is needed, and
// a descriptor rides along as SCM_RIGHTS.
package seqpacket

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// ErrClosed is what Recv returns once the other end is gone.
var ErrClosed = errors.New("closed")

// Pair returns the two ends of a new socket pair, close-on-exec.
func Pair(name string) (a, b *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), name), os.NewFile(uintptr(fds[1]), name+"-peer"), nil
}

// Send sends msg, with file's descriptor if file is not nil.
func Send(sock *os.File, msg []byte, file *os.File) error {
	var oob []byte
	if file != nil {
		oob = unix.UnixRights(int(file.Fd()))
	}
	return unix.Sendmsg(int(sock.Fd()), msg, oob, nil, 0)
}

// Recv receives one message of at most max bytes, and the file that came
// with it, if any (close-on-exec; extra descriptors are closed).
func Recv(sock *os.File, max int) ([]byte, *os.File, error) {
	buf := make([]byte, max)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if n == 0 && oobn == 0 {
			return nil, nil, ErrClosed
		}
		return buf[:n], fileOf(oob[:oobn]), nil
	}
}

func fileOf(oob []byte) *os.File {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) == 0 {
		return nil
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	return os.NewFile(uintptr(fds[0]), "received")
}
