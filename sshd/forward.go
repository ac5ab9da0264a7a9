package sshd

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// handleStreamLocal serves direct-streamlocal@openssh.com: `ssh -L
// port:/path/to/socket`, which VS Code uses for its server's socket.
func (s *server) handleStreamLocal(_ *ssh.Server, _ *gossh.ServerConn, newChan gossh.NewChannel, _ ssh.Context) {
	var p struct {
		SocketPath string
		Reserved0  string
		Reserved1  uint32
	}
	if err := gossh.Unmarshal(newChan.ExtraData(), &p); err != nil {
		newChan.Reject(gossh.ConnectionFailed, "bad direct-streamlocal request")
		return
	}
	c, err := net.Dial("unix", p.SocketPath)
	if err != nil {
		newChan.Reject(gossh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := newChan.Accept()
	if err != nil {
		c.Close()
		return
	}
	go gossh.DiscardRequests(reqs)
	joinChannel(ch, c)
}

// joinChannel copies between a channel and a connection both ways,
// passing half-closes on, until both sides are done.
func joinChannel(ch gossh.Channel, c net.Conn) {
	defer ch.Close()
	defer c.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		io.Copy(ch, c)
		ch.CloseWrite()
	}()
	go func() {
		defer wg.Done()
		io.Copy(c, ch)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	wg.Wait()
}

// forwardAgent makes a socket in the container whose connections go to
// the client's agent, and puts it in the session's SSH_AUTH_SOCK.
func (sess *session) forwardAgent() error {
	acct, err := lookupAccount(sess.srv.cfg.User)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("/tmp", "ssh-")
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, fmt.Sprintf("agent.%d", os.Getpid()))
	ln, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	os.Chown(dir, acct.uid, acct.gid)
	os.Chown(sock, acct.uid, acct.gid)
	sess.mu.Lock()
	sess.agent = sock
	sess.cleanup = append(sess.cleanup, func() { ln.Close(); os.RemoveAll(dir) })
	sess.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				ch, reqs, err := sess.conn.OpenChannel("auth-agent@openssh.com", nil)
				if err != nil {
					c.Close()
					return
				}
				go gossh.DiscardRequests(reqs)
				joinChannel(ch, c)
			}()
		}
	}()
	return nil
}
