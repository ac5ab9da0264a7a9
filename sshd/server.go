package sshd

import (
	"context"
	"errors"
	"log"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// Config is what an environment's server serves: who may log in, how,
// and what their sessions get.
type Config struct {
	// User is the account logins are for.
	User string `json:"user"`
	// AuthorizedKeys are authorized_keys lines; devbox's own client key
	// is among them.
	AuthorizedKeys []string `json:"authorized_keys"`
	// PasswordHash is a crypt(3) hash; empty turns password login off.
	PasswordHash string `json:"password_hash,omitempty"`
	// Env is the container's environment (image and spec), PATH included:
	// sessions start from it, as OpenSSH's start from its login.conf.
	Env []string `json:"env"`
	// Workdir is where sessions start (the user's home if empty).
	Workdir string `json:"workdir,omitempty"`
	// Shell overrides the user's login shell.
	Shell string `json:"shell,omitempty"`
	// NoForwarding refuses TCP and Unix-socket forwarding (-L, -R, -D);
	// NoAgentForwarding refuses agent forwarding (-A).
	NoForwarding      bool `json:"no_forwarding,omitempty"`
	NoAgentForwarding bool `json:"no_agent_forwarding,omitempty"`
	// Attach is a shell script run before each interactive login shell,
	// in it (a devcontainer.json's postAttachCommand).
	Attach string `json:"attach,omitempty"`
}

// StartFunc starts a session's process and returns its pid and a channel
// for its wait status. The container's init passes one that forks from
// its reduced-capability thread and reaps through its own reaper.
type StartFunc func(path string, args []string, attr *syscall.ProcAttr) (pid int, status <-chan unix.WaitStatus, err error)

// Server is an SSH server for one environment. Set its fields, then call
// Serve for each listener; Shutdown ends it. The zero value is usable but
// refuses to serve: it needs a HostKey and a way to log in.
type Server struct {
	Config  Config
	HostKey gossh.Signer
	// Start starts session processes; nil forks them with
	// syscall.ForkExec and waits for each itself.
	Start StartFunc
	// Log gets what goes wrong in sessions; nil logs to standard error.
	Log *log.Logger

	once     sync.Once
	initErr  error
	accessMu sync.Mutex
	access   map[string]netAccess // by session id: each connection's
	srv      *ssh.Server
	auth     *authenticator
	sessions sync.Map // *session → struct{}
}

// ErrServerClosed is what Serve returns after Shutdown.
var ErrServerClosed = ssh.ErrServerClosed

// Serve accepts connections on ln until Shutdown. It may be called for
// several listeners at once.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.setup(); err != nil {
		return err
	}
	return s.srv.Serve(ln)
}

// setup makes the server from its fields, once.
func (s *Server) setup() error {
	s.once.Do(func() { s.initErr = s.init() })
	return s.initErr
}

func (s *Server) init() error {
	if s.HostKey == nil {
		return errors.New("sshd: no host key")
	}
	auth, err := newAuthenticator(s.Config)
	if err != nil {
		return err
	}
	s.auth = auth
	if s.Log == nil {
		s.Log = log.New(os.Stderr, "sshd: ", log.LstdFlags)
	}
	if s.Start == nil {
		s.Start = forkExec
	}
	fwd := &forwards{srv: s}
	s.srv = &ssh.Server{
		Version:     Version,
		HostSigners: []ssh.Signer{s.HostKey},
		ChannelHandlers: map[string]ssh.ChannelHandler{
			"session":                        s.recovered(s.handleSession),
			"direct-tcpip":                   s.recovered(s.handleDirectTCPIP),
			"direct-streamlocal@openssh.com": s.recovered(s.handleStreamLocal),
		},
		RequestHandlers: map[string]ssh.RequestHandler{
			"tcpip-forward":        fwd.handle,
			"cancel-tcpip-forward": fwd.handle,
		},
		PublicKeyHandler: auth.publicKey,
		ConnCallback:     auth.accept,
		ServerConfigCallback: func(ctx ssh.Context) *gossh.ServerConfig {
			c := &gossh.ServerConfig{MaxAuthTries: maxAuthTries, Config: gossh.Config{Ciphers: otherCiphers}}
			if p, ok := ctx.Value(preambleKey).(*preamble); ok {
				c.Ciphers = p.serverCiphers()
			}
			return c
		},
	}
	if auth.passwordHash != "" {
		s.srv.PasswordHandler = auth.password
	}
	return nil
}

// forkExec is the StartFunc of a server that is not a container's init:
// it waits for each process itself.
func forkExec(path string, args []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
	pid, err := syscall.ForkExec(path, args, attr)
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
				break
			}
		}
		ch <- ws
	}()
	return pid, ch, nil
}

// recovered keeps a panic in one channel's handler from taking the
// server, and every other session, down.
func (s *Server) recovered(h ssh.ChannelHandler) ssh.ChannelHandler {
	return func(srv *ssh.Server, conn *gossh.ServerConn, ch gossh.NewChannel, ctx ssh.Context) {
		defer func() {
			if r := recover(); r != nil {
				s.Log.Printf("panic in %s channel handler: %v\n%s", ch.ChannelType(), r, debug.Stack())
				conn.Close()
			}
		}()
		h(srv, conn, ch, ctx)
	}
}

// Shutdown closes the listeners and connections and hangs up every
// session's processes; connections still open when ctx ends are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	s.sessions.Range(func(k, _ any) bool {
		k.(*session).hangup()
		return true
	})
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, ssh.ErrServerClosed) {
		return s.srv.Close()
	}
	return nil
}

// ServeAll serves every listener until ctx ends, then shuts down within a
// second; ready is called once all are being served.
func (s *Server) ServeAll(ctx context.Context, listeners []net.Listener, ready func()) error {
	if err := s.setup(); err != nil {
		return err
	}
	for _, ln := range listeners {
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, ErrServerClosed) {
				s.Log.Printf("serve %s: %v", ln.Addr(), err)
			}
		}()
	}
	ready()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.Shutdown(sctx)
}
