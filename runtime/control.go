package runtime

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The parent and the init talk over a SOCK_SEQPACKET socket pair: one
// message a step, and a descriptor (a TTY's master) can ride along.

const maxMsg = 1 << 20

func sendMsg(f *os.File, msg string, fd *os.File) error {
	var oob []byte
	if fd != nil {
		oob = unix.UnixRights(int(fd.Fd()))
	}
	if err := unix.Sendmsg(int(f.Fd()), []byte(msg), oob, nil, 0); err != nil {
		return fmt.Errorf("control: send: %w", err)
	}
	return nil
}

func recvMsg(f *os.File) ([]byte, *os.File, error) {
	buf := make([]byte, maxMsg)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("control: receive: %w", err)
		}
		if n == 0 && oobn == 0 {
			return nil, nil, errors.New("control: closed")
		}
		var file *os.File
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err == nil && len(msgs) > 0 {
				if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) > 0 {
					file = os.NewFile(uintptr(fds[0]), "received")
				}
			}
		}
		return buf[:n], file, nil
	}
}

// socketPair returns the parent's and the init's ends of a control socket.
func socketPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "control"), os.NewFile(uintptr(fds[1]), "control-init"), nil
}
