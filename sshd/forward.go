package sshd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// handleStreamLocal serves direct-streamlocal@openssh.com: `ssh -L
// port:/path/to/socket`, which VS Code uses for its server's socket.
func (s *Server) handleStreamLocal(_ *ssh.Server, _ *gossh.ServerConn, newChan gossh.NewChannel, ctx ssh.Context) {
	var p struct {
		SocketPath string
		Reserved0  string
		Reserved1  uint32
	}
	if err := gossh.Unmarshal(newChan.ExtraData(), &p); err != nil {
		newChan.Reject(gossh.ConnectionFailed, "bad direct-streamlocal request")
		return
	}
	s.dialAndJoin(ctx, newChan, "unix", p.SocketPath)
}

// dialAndJoin connects to the channel's destination with the login user's
// rights, then accepts the channel and joins the two; a destination that
// refuses is a rejection.
func (s *Server) dialAndJoin(ctx ssh.Context, newChan gossh.NewChannel, network, addr string) {
	if s.Config.NoForwarding {
		newChan.Reject(gossh.Prohibited, "forwarding is turned off for this environment")
		return
	}
	access, err := s.netAccessFor(ctx)
	if err != nil {
		newChan.Reject(gossh.ConnectionFailed, err.Error())
		return
	}
	c, err := access.Dial(network, addr)
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

// forwardAgent makes a socket in the container, owned by the login user
// and made with its rights, whose connections go to the client's agent,
// and puts it in the session's SSH_AUTH_SOCK.
func (sess *session) forwardAgent() error {
	if sess.srv.Config.NoAgentForwarding {
		return errors.New("agent forwarding is turned off")
	}
	access, err := sess.srv.netAccessFor(sess.ctx)
	if err != nil {
		return err
	}
	ln, sock, err := access.AgentListener()
	if err != nil {
		return err
	}
	sess.mu.Lock()
	sess.agent = sock
	sess.cleanup = append(sess.cleanup, func() { ln.Close() })
	sess.mu.Unlock()
	go acceptToClient(ln, sess.conn, "auth-agent@openssh.com", func(net.Conn) []byte { return nil })
	return nil
}

// acceptToClient serves ln until it closes: each connection accepted goes
// back to the client as a new channel of chanType (agent forwarding,
// ssh -R), with payload describing it.
func acceptToClient(ln net.Listener, conn gossh.Conn, chanType string, payload func(net.Conn) []byte) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			ch, reqs, err := conn.OpenChannel(chanType, payload(c))
			if err != nil {
				c.Close()
				return
			}
			go gossh.DiscardRequests(reqs)
			joinChannel(ch, c)
		}()
	}
}

// handleDirectTCPIP serves direct-tcpip (ssh -L, ssh -D). gliderlabs/ssh's
// own handler closes both ways as soon as one side ends, which cuts off
// the reply to a client that half-closes (sends EOF) first.
func (s *Server) handleDirectTCPIP(_ *ssh.Server, _ *gossh.ServerConn, newChan gossh.NewChannel, ctx ssh.Context) {
	var p struct {
		DestAddr   string
		DestPort   uint32
		OriginAddr string
		OriginPort uint32
	}
	if err := gossh.Unmarshal(newChan.ExtraData(), &p); err != nil {
		newChan.Reject(gossh.ConnectionFailed, "bad direct-tcpip request")
		return
	}
	s.dialAndJoin(ctx, newChan, "tcp", net.JoinHostPort(p.DestAddr, fmt.Sprint(p.DestPort)))
}

// forwards serves tcpip-forward and cancel-tcpip-forward (ssh -R): a
// listener in the container, made with the login user's rights (so only
// root gets ports below 1024), whose connections go back to the client as
// forwarded-tcpip channels.
type forwards struct {
	srv       *Server
	mu        sync.Mutex
	listeners map[string]net.Listener // by connection id + address
}

func (f *forwards) handle(ctx ssh.Context, _ *ssh.Server, req *gossh.Request) (bool, []byte) {
	conn, ok := ctx.Value(ssh.ContextKeyConn).(*gossh.ServerConn)
	if !ok {
		return false, nil
	}
	var p struct {
		BindAddr string
		BindPort uint32
	}
	if err := gossh.Unmarshal(req.Payload, &p); err != nil {
		return false, nil
	}
	addr := net.JoinHostPort(p.BindAddr, fmt.Sprint(p.BindPort))
	key := string(conn.SessionID()) + addr
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listeners == nil {
		f.listeners = map[string]net.Listener{}
	}
	if req.Type == "cancel-tcpip-forward" {
		if ln, ok := f.listeners[key]; ok {
			ln.Close()
			delete(f.listeners, key)
		}
		return true, nil
	}
	if f.srv.Config.NoForwarding {
		return false, nil
	}
	access, err := f.srv.netAccessFor(ctx)
	if err != nil {
		return false, nil
	}
	ln, err := access.Listen("tcp", addr)
	if err != nil {
		return false, nil
	}
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	f.listeners[key] = ln
	go func() { // the forward ends with its connection
		conn.Wait()
		ln.Close()
		f.mu.Lock()
		delete(f.listeners, key)
		f.mu.Unlock()
	}()
	go acceptToClient(ln, conn, "forwarded-tcpip", func(c net.Conn) []byte {
		oh, op, _ := net.SplitHostPort(c.RemoteAddr().String())
		opn, _ := strconv.Atoi(op)
		return gossh.Marshal(struct {
			DestAddr   string
			DestPort   uint32
			OriginAddr string
			OriginPort uint32
		}{p.BindAddr, port, oh, uint32(opn)})
	})
	if p.BindPort == 0 {
		return true, gossh.Marshal(struct{ Port uint32 }{port})
	}
	return true, nil
}
