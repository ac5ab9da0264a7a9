package sshd

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"github.com/devbox/devbox/internal/seqpacket"
)

// Helper processes run the devbox binary again, as the login user: from
// /proc/self/exe of the forked child, which is its own (a path into the
// server's /proc would be refused once the child has dropped privileges).
const selfExe = "/proc/self/exe"

// argv[1] of the devbox binary run as a helper.
const (
	sftpHelperArg = "__devbox_sftp"
	netHelperArg  = "__devbox_sshd_net"
)

// RunHelper runs the helper args name, if they name one, and returns its
// exit code; ok is false when args are not a helper's.
func RunHelper(args []string) (code int, ok bool) {
	if len(args) < 2 {
		return 0, false
	}
	switch args[1] {
	case sftpHelperArg:
		return sftpMain(), true
	case netHelperArg:
		return netMain(os.NewFile(3, "helper")), true
	}
	return 0, false
}

// sftpMain serves SFTP on standard input and output with the user's
// rights, in the session's working directory. Paths are the client's own:
// relative ones resolve against the working directory, and symlink
// targets are stored exactly as given.
func sftpMain() int {
	// Bulk transfers allocate a buffer per packet: reuse them, and let the
	// heap grow before collecting (the helper lives for one session).
	debug.SetGCPercent(400)
	srv, err := sftp.NewServer(struct {
		io.Reader
		io.WriteCloser
	}{os.Stdin, os.Stdout}, sftp.WithAllocator())
	if err != nil {
		return 1
	}
	if err := srv.Serve(); err != nil && err != io.EOF {
		return 1
	}
	return 0
}

// netMain serves dial, listen and agent requests on sock until it closes,
// then removes the agent sockets it made.
func netMain(sock *os.File) int {
	var mu sync.Mutex
	var agents []net.Listener
	defer func() {
		mu.Lock()
		for _, ln := range agents {
			ln.Close()
		}
		mu.Unlock()
	}()
	var send sync.Mutex
	for {
		msg, _, err := seqpacket.Recv(sock, maxHelperMsg)
		if err != nil {
			return 0
		}
		var req helperRequest
		if json.Unmarshal(msg, &req) != nil {
			return 1
		}
		go func() {
			f, reply := serveHelperRequest(req)
			if req.Op == "agent" && f != nil {
				mu.Lock()
				agents = append(agents, reply.ln)
				mu.Unlock()
			}
			data, _ := json.Marshal(reply.helperReply)
			if f != nil {
				defer f.Close()
			}
			send.Lock()
			seqpacket.Send(sock, data, f)
			send.Unlock()
		}()
	}
}

type helperOutcome struct {
	helperReply
	ln net.Listener // an agent's, kept until the helper ends
}

// serveHelperRequest does one request with this process's rights and
// returns the descriptor to pass back.
func serveHelperRequest(req helperRequest) (*os.File, helperOutcome) {
	out := helperOutcome{helperReply: helperReply{ID: req.ID}}
	fail := func(err error) (*os.File, helperOutcome) {
		out.Err = err.Error()
		return nil, out
	}
	type filer interface{ File() (*os.File, error) }
	var obj filer
	switch req.Op {
	case "dial":
		c, err := net.DialTimeout(req.Network, req.Addr, 10*time.Second)
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		obj = c.(filer)
	case "listen":
		ln, err := net.Listen(req.Network, req.Addr)
		if err != nil {
			return fail(err)
		}
		defer ln.Close()
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false) // the server's copy serves it
		}
		obj = ln.(filer)
	case "agent":
		ln, path, err := agentListener()
		if err != nil {
			return fail(err)
		}
		out.ln, out.Path = ln, path
		obj = ln.(*dirListener).Listener.(filer)
	default:
		return fail(os.ErrInvalid)
	}
	f, err := obj.File()
	if err != nil {
		return fail(err)
	}
	return f, out
}
