// Package seqpacket passes messages, each with open files riding along, over
// a SOCK_SEQPACKET socket pair: the container's control socket between
// devbox and its init, and the SSH server's line to a helper that runs as
// the login user. A message is one datagram, so no framing is needed, and
// descriptors ride along as SCM_RIGHTS.
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
	if file == nil {
		return SendFiles(sock, msg, nil)
	}
	return SendFiles(sock, msg, []*os.File{file})
}

// MaxFiles is the most descriptors one message carries (the kernel's
// SCM_MAX_FD is 253).
const MaxFiles = 250

// SendFiles sends msg with the descriptors of files.
func SendFiles(sock *os.File, msg []byte, files []*os.File) error {
	if len(files) > MaxFiles {
		return errors.New("too many descriptors for one message")
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	return unix.Sendmsg(int(sock.Fd()), msg, oob, nil, 0)
}

// Recv receives one message of at most max bytes, and the file that came
// with it, if any (close-on-exec; extra descriptors are closed).
func Recv(sock *os.File, max int) ([]byte, *os.File, error) {
	msg, files, err := RecvFiles(sock, max)
	if err != nil || len(files) == 0 {
		return msg, nil, err
	}
	for _, f := range files[1:] {
		f.Close()
	}
	return msg, files[0], nil
}

// RecvFiles receives one message of at most max bytes and the files that
// came with it (close-on-exec).
func RecvFiles(sock *os.File, max int) ([]byte, []*os.File, error) {
	buf := make([]byte, max)
	oob := make([]byte, unix.CmsgSpace(4*MaxFiles))
	for {
		n, oobn, flags, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if n == 0 && oobn == 0 {
			return nil, nil, ErrClosed
		}
		files := filesOf(oob[:oobn])
		if flags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0 {
			for _, f := range files {
				f.Close()
			}
			return nil, nil, errors.New("message or descriptors truncated")
		}
		return buf[:n], files, nil
	}
}

func filesOf(oob []byte) []*os.File {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var files []*os.File
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "received"))
		}
	}
	return files
}
