package builder

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
	container "github.com/devbox/devbox/runtime"
)

// ssh is RUN --mount=type=ssh: the agent's socket, relayed. The host's
// agent socket (the user's, 0600 in a 0700 directory) is nobody's in the
// build's user namespace and cannot be reached there; devbox listens on
// a socket of its own, owned as asked (0600, root's) in canonical ids,
// and copies each connection to the agent. An agent not given is an
// error if required, else no mount.
func (rm *runMounter) ssh(ctx context.Context, i int, m dockerfile.Mount) (*container.Mount, error) {
	agent := rm.o.SSH[m.ID]
	if agent == "" && m.ID == "default" {
		agent = os.Getenv("SSH_AUTH_SOCK")
	}
	if agent == "" {
		if m.Required {
			return nil, fmt.Errorf("SSH agent %q is required: give it with devbox build --ssh %s=SOCKET (default: $SSH_AUTH_SOCK)", m.ID, m.ID)
		}
		return nil, nil
	}
	probe, err := net.Dial("unix", agent)
	if err != nil {
		return nil, fmt.Errorf("SSH agent %q: %w", m.ID, err)
	}
	probe.Close()
	dir, err := rm.mountDir("ssh", i)
	if err != nil {
		return nil, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	// Bound through the directory's descriptor: the state root's path may
	// be longer than a socket address holds (108 bytes).
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "/proc/self/fd/" + strconv.Itoa(int(d.Fd())) + "/agent", Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("SSH agent relay: %w", err)
	}
	l.SetUnlinkOnClose(false)
	ctx, cancel := context.WithCancel(ctx)
	rm.cleanup = append(rm.cleanup, func() { cancel(); l.Close() })
	sock := filepath.Join(dir, "agent")
	if err := unix.Lchown(sock, int(m.UID), int(m.GID)); err != nil {
		return nil, err
	}
	if err := unix.Chmod(sock, m.Mode&0o7777); err != nil {
		return nil, err
	}
	go relayAgent(ctx, l, agent)
	return &container.Mount{Source: sock, Target: m.Target, Canonical: true}, nil
}

// relayAgent copies every connection l accepts to the agent socket and
// back, until ctx ends.
func relayAgent(ctx context.Context, l *net.UnixListener, agent string) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("unix", agent)
			if err != nil {
				return
			}
			defer up.Close()
			stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
			defer stop()
			done := make(chan struct{}, 2)
			go func() { io.Copy(up, c); up.(*net.UnixConn).CloseWrite(); done <- struct{}{} }()
			go func() { io.Copy(c, up); c.CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}
