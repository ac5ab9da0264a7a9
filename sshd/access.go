package sshd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gliderlabs/ssh"
	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/internal/seqpacket"
)

// netAccess dials and listens for one connection's login account, with
// that account's rights: forwards and agent sockets must reach only what
// the user could reach from a shell.
type netAccess interface {
	Dial(network, addr string) (net.Conn, error)
	Listen(network, addr string) (net.Listener, error)
	// AgentListener makes a socket only the user can use, for a forwarded
	// agent, and returns it with its path.
	AgentListener() (net.Listener, string, error)
}

// netAccessFor returns the connection's netAccess, starting it on first
// use: in-process for root, a helper process running as the user else.
// It is kept in the server, not in the connection's context: gliderlabs'
// Context.SetValue is not safe beside concurrent readers once channels
// are open.
func (s *Server) netAccessFor(ctx ssh.Context) (netAccess, error) {
	s.accessMu.Lock()
	defer s.accessMu.Unlock()
	id := ctx.SessionID()
	if a, ok := s.access[id]; ok {
		return a, nil
	}
	acct, err := lookupAccount(s.Config.User)
	if err != nil {
		return nil, err
	}
	var a netAccess = rootAccess{}
	var h *netHelper
	if acct.uid != 0 {
		if h, err = s.startNetHelper(acct); err != nil {
			return nil, fmt.Errorf("start helper as %s: %w", acct.name, err)
		}
		a = h
	}
	if s.access == nil {
		s.access = map[string]netAccess{}
	}
	s.access[id] = a
	go func() { // the connection's end
		<-ctx.Done()
		s.accessMu.Lock()
		delete(s.access, id)
		s.accessMu.Unlock()
		if h != nil {
			h.close()
		}
	}()
	return a, nil
}

// rootAccess is a root login's: the server's own rights.
type rootAccess struct{}

func (rootAccess) Dial(network, addr string) (net.Conn, error) {
	return net.DialTimeout(network, addr, 10*time.Second)
}

func (rootAccess) Listen(network, addr string) (net.Listener, error) {
	return net.Listen(network, addr)
}

func (rootAccess) AgentListener() (net.Listener, string, error) { return agentListener() }

// agentListener makes a private directory and an agent socket in it, as
// the calling process's user; the socket goes when the listener closes.
func agentListener() (net.Listener, string, error) {
	dir, err := os.MkdirTemp("/tmp", "ssh-")
	if err != nil {
		return nil, "", err
	}
	sock := filepath.Join(dir, fmt.Sprintf("agent.%d", os.Getpid()))
	ln, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return &dirListener{Listener: ln, dir: dir}, sock, nil
}

// dirListener removes its directory when closed.
type dirListener struct {
	net.Listener
	dir string
}

func (l *dirListener) Close() error {
	err := l.Listener.Close()
	os.RemoveAll(l.dir)
	return err
}

// maxHelperMsg bounds a helper request or reply.
const maxHelperMsg = 64 << 10

// helperRequest and helperReply are the net helper's protocol: one
// SOCK_SEQPACKET message each, the reply carrying a descriptor.
type helperRequest struct {
	ID      uint64 `json:"id"`
	Op      string `json:"op"` // dial, listen, agent
	Network string `json:"network,omitempty"`
	Addr    string `json:"addr,omitempty"`
}

type helperReply struct {
	ID   uint64 `json:"id"`
	Err  string `json:"err,omitempty"`
	Path string `json:"path,omitempty"` // an agent socket's
}

// netHelper is the server's side of a helper process that runs as the
// login user and dials and listens for it.
type netHelper struct {
	sock *os.File

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan helperResult
}

type helperResult struct {
	reply helperReply
	file  *os.File
}

func (s *Server) startNetHelper(acct *account) (*netHelper, error) {
	ours, theirs, err := seqpacket.Pair("helper")
	if err != nil {
		return nil, err
	}
	defer theirs.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		ours.Close()
		return nil, err
	}
	defer null.Close()
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   []string{},
		Files: []uintptr{null.Fd(), null.Fd(), os.Stderr.Fd(), theirs.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true, Credential: credential(acct)},
	}
	if _, _, err := s.Start(selfExe, []string{"devbox-net", netHelperArg}, attr); err != nil {
		ours.Close()
		return nil, err
	}
	h := &netHelper{sock: ours, waiting: map[uint64]chan helperResult{}}
	go h.readReplies()
	return h, nil
}

func (h *netHelper) readReplies() {
	defer h.failAll()
	for {
		msg, f, err := seqpacket.Recv(h.sock, maxHelperMsg)
		if err != nil {
			return
		}
		var r helperReply
		if json.Unmarshal(msg, &r) != nil {
			if f != nil {
				f.Close()
			}
			return
		}
		h.mu.Lock()
		ch := h.waiting[r.ID]
		delete(h.waiting, r.ID)
		h.mu.Unlock()
		if ch == nil {
			if f != nil {
				f.Close()
			}
			continue
		}
		ch <- helperResult{r, f}
	}
}

// failAll answers every waiting request once the helper is gone.
func (h *netHelper) failAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, ch := range h.waiting {
		ch <- helperResult{reply: helperReply{ID: id, Err: "helper exited"}}
	}
	h.waiting = nil
}

func (h *netHelper) call(req helperRequest) (*os.File, helperReply, error) {
	ch := make(chan helperResult, 1)
	h.mu.Lock()
	if h.waiting == nil {
		h.mu.Unlock()
		return nil, helperReply{}, errors.New("helper exited")
	}
	h.next++
	req.ID = h.next
	h.waiting[req.ID] = ch
	h.mu.Unlock()
	data, _ := json.Marshal(req)
	if err := seqpacket.Send(h.sock, data, nil); err != nil {
		return nil, helperReply{}, err
	}
	r := <-ch
	if r.reply.Err != "" {
		return nil, r.reply, errors.New(r.reply.Err)
	}
	if r.file == nil {
		return nil, r.reply, errors.New("helper sent no descriptor")
	}
	return r.file, r.reply, nil
}

func (h *netHelper) Dial(network, addr string) (net.Conn, error) {
	f, _, err := h.call(helperRequest{Op: "dial", Network: network, Addr: addr})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FileConn(f)
}

func (h *netHelper) Listen(network, addr string) (net.Listener, error) {
	f, _, err := h.call(helperRequest{Op: "listen", Network: network, Addr: addr})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FileListener(f)
}

func (h *netHelper) AgentListener() (net.Listener, string, error) {
	f, r, err := h.call(helperRequest{Op: "agent"})
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	return ln, r.Path, err
}

// close ends the helper: it removes what it made and exits. The shutdown
// also wakes readReplies, which a close alone would leave blocked.
func (h *netHelper) close() {
	unix.Shutdown(int(h.sock.Fd()), unix.SHUT_RDWR)
	h.sock.Close()
}
