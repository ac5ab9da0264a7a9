package runtime

import (
	"fmt"
	"os"

	"github.com/devbox/devbox/internal/seqpacket"
)

// The parent and the init talk over a SOCK_SEQPACKET socket pair: one
// message a step, and descriptors (the container's mounts, a TTY's
// master) can ride along.

const maxMsg = 1 << 20

func sendMsg(f *os.File, msg string, fd *os.File) error {
	if err := seqpacket.Send(f, []byte(msg), fd); err != nil {
		return fmt.Errorf("control: send: %w", err)
	}
	return nil
}

func recvMsg(f *os.File) ([]byte, *os.File, error) {
	msg, file, err := seqpacket.Recv(f, maxMsg)
	if err != nil {
		return nil, nil, fmt.Errorf("control: receive: %w", err)
	}
	return msg, file, nil
}

// socketPair returns the parent's and the init's ends of a control socket.
func socketPair() (parent, child *os.File, err error) { return seqpacket.Pair("control") }

func sendMsgFiles(f *os.File, msg string, files []*os.File) error {
	if err := seqpacket.SendFiles(f, []byte(msg), files); err != nil {
		return fmt.Errorf("control: send: %w", err)
	}
	return nil
}

func recvMsgFiles(f *os.File) ([]byte, []*os.File, error) {
	msg, files, err := seqpacket.RecvFiles(f, maxMsg)
	if err != nil {
		return nil, nil, fmt.Errorf("control: receive: %w", err)
	}
	return msg, files, nil
}
