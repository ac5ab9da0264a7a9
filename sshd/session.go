package sshd

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// session is one "session" channel: a shell, a command or a subsystem.
type session struct {
	srv  *Server
	ctx  ssh.Context // the connection's
	conn *gossh.ServerConn
	ch   gossh.Channel

	mu      sync.Mutex
	env     []string // accepted client env (LANG, LC_*, TERM)
	term    string
	winsize *pty.Winsize
	master  *os.File // the pty's master, once started with one
	wantPty bool
	pid     int // the process group leader, once started
	started bool
	agent   string // SSH_AUTH_SOCK, when forwarding was asked for
	cleanup []func()
}

func (s *Server) handleSession(_ *ssh.Server, conn *gossh.ServerConn, newChan gossh.NewChannel, ctx ssh.Context) {
	ch, reqs, err := newChan.Accept()
	if err != nil {
		return
	}
	sess := &session{srv: s, ctx: ctx, conn: conn, ch: ch}
	s.sessions.Store(sess, struct{}{})
	defer func() {
		s.sessions.Delete(sess)
		sess.close()
	}()
	for req := range reqs {
		ok := sess.request(req)
		if req.WantReply {
			req.Reply(ok, nil)
		}
	}
}

// request handles one channel request and says whether it succeeded. It
// never blocks on the session's process: window changes and signals must
// get through at any time (gliderlabs/ssh's own session handler can
// deadlock on a window change sent before the shell starts).
func (sess *session) request(req *gossh.Request) bool {
	switch req.Type {
	case "pty-req":
		var p struct {
			Term          string
			Cols, Rows    uint32
			Width, Height uint32
			Modes         string
		}
		if gossh.Unmarshal(req.Payload, &p) != nil {
			return false
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		if sess.started {
			return false
		}
		sess.wantPty, sess.term = true, p.Term
		sess.winsize = &pty.Winsize{Rows: uint16(p.Rows), Cols: uint16(p.Cols), X: uint16(p.Width), Y: uint16(p.Height)}
		return true
	case "window-change":
		var p struct{ Cols, Rows, Width, Height uint32 }
		if gossh.Unmarshal(req.Payload, &p) != nil {
			return false
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		sess.winsize = &pty.Winsize{Rows: uint16(p.Rows), Cols: uint16(p.Cols), X: uint16(p.Width), Y: uint16(p.Height)}
		if sess.master != nil {
			pty.Setsize(sess.master, sess.winsize)
		}
		return true
	case "env":
		var p struct{ Name, Value string }
		if gossh.Unmarshal(req.Payload, &p) != nil || !acceptedEnv(p.Name) {
			return false
		}
		sess.mu.Lock()
		sess.env = append(sess.env, p.Name+"="+p.Value)
		sess.mu.Unlock()
		return true
	case "shell":
		return sess.begin(nil, "")
	case "exec":
		var p struct{ Command string }
		if gossh.Unmarshal(req.Payload, &p) != nil {
			return false
		}
		return sess.begin(&p.Command, "")
	case "subsystem":
		var p struct{ Name string }
		if gossh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
			return false
		}
		return sess.begin(nil, p.Name)
	case "signal":
		var p struct{ Signal string }
		if gossh.Unmarshal(req.Payload, &p) != nil {
			return false
		}
		sig := unix.SignalNum("SIG" + p.Signal)
		sess.mu.Lock()
		pid := sess.pid
		sess.mu.Unlock()
		if sig == 0 || pid == 0 {
			return false
		}
		return unix.Kill(-pid, sig) == nil // the whole process group, as a terminal would
	case "auth-agent-req@openssh.com":
		return sess.forwardAgent() == nil
	}
	return false
}

// acceptedEnv: like OpenSSH's default AcceptEnv, a client may only set
// the locale and the terminal type.
func acceptedEnv(name string) bool {
	return name == "LANG" || name == "TERM" || strings.HasPrefix(name, "LC_")
}

// begin starts the session's program: the user's login shell, a command
// run by the shell, or the SFTP server.
func (sess *session) begin(command *string, subsystem string) bool {
	sess.mu.Lock()
	if sess.started {
		sess.mu.Unlock()
		return false
	}
	sess.started = true
	sess.mu.Unlock()
	acct, err := lookupAccount(sess.srv.Config.User)
	if err != nil {
		fmt.Fprintf(sess.ch.Stderr(), "devbox: %v\r\n", err)
		return false
	}
	if subsystem == "sftp" {
		go sess.serveSFTP(acct)
		return true
	}
	shell := acct.shell
	if sess.srv.Config.Shell != "" {
		shell = sess.srv.Config.Shell
	}
	if _, err := os.Stat(shell); shell == "" || err != nil {
		shell = "/bin/sh"
	}
	sess.mu.Lock()
	interactive := sess.wantPty
	sess.mu.Unlock()
	var args []string
	switch {
	case command == nil && interactive && sess.srv.Config.Attach != "" && posixShell(shell):
		// The attach script, then the login shell in its place.
		args = []string{filepath.Base(shell), "-c", sess.srv.Config.Attach + "\nexec \"$0\" -l", shell}
	case command == nil:
		args = []string{"-" + filepath.Base(shell)} // a login shell, as OpenSSH starts it
	default:
		args = []string{filepath.Base(shell), "-c", *command}
	}
	if err := sess.startProcess(acct, shell, args); err != nil {
		fmt.Fprintf(sess.ch.Stderr(), "devbox: %v\r\n", err)
		sess.exit(1, "")
		return true // the request was taken; the session ends with status 1
	}
	return true
}

// posixShell says shell runs a POSIX script given with -c and takes -l,
// as the attach script needs (fish or csh do not).
func posixShell(shell string) bool {
	switch filepath.Base(shell) {
	case "sh", "bash", "dash", "ash", "zsh", "ksh", "mksh":
		return true
	}
	return false
}

// environ is the process's environment, built as OpenSSH builds it.
func (sess *session) environ(acct *account, shell, tty string) []string {
	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, kv := range sess.srv.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	set("HOME", acct.home)
	set("USER", acct.name)
	set("LOGNAME", acct.name)
	set("SHELL", shell)
	set("MAIL", "/var/mail/"+acct.name)
	local, remote := sess.conn.LocalAddr(), sess.conn.RemoteAddr()
	rh, rp := hostPort(remote)
	lh, lp := hostPort(local)
	set("SSH_CLIENT", fmt.Sprintf("%s %s %s", rh, rp, lp))
	set("SSH_CONNECTION", fmt.Sprintf("%s %s %s %s", rh, rp, lh, lp))
	if tty != "" {
		set("SSH_TTY", tty)
		set("TERM", sess.term)
	}
	if sess.agent != "" {
		set("SSH_AUTH_SOCK", sess.agent)
	}
	for _, kv := range sess.env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

func hostPort(a net.Addr) (string, string) {
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return "127.0.0.1", "0" // a unix socket (devbox exec)
	}
	return h, p
}

func (sess *session) workdir(acct *account) string {
	if d := sess.srv.Config.Workdir; d != "" {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	if fi, err := os.Stat(acct.home); err == nil && fi.IsDir() {
		return acct.home
	}
	return "/"
}

// credential is acct's uid, gid and groups. Where the user namespace
// denies setgroups (rootless with one id, whose map an unprivileged
// process may only write so), groups are left as they are: root's none.
func credential(acct *account) *syscall.Credential {
	return &syscall.Credential{Uid: uint32(acct.uid), Gid: uint32(acct.gid), Groups: acct.groups, NoSetGroups: setgroupsDenied()}
}

func setgroupsDenied() bool {
	data, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(data)) == "deny"
}

func (sess *session) startProcess(acct *account, shell string, args []string) error {
	sess.mu.Lock()
	wantPty, winsize := sess.wantPty, sess.winsize
	sess.mu.Unlock()
	attr := &syscall.ProcAttr{
		Dir: sess.workdir(acct),
		Sys: &syscall.SysProcAttr{Setsid: true, Credential: credential(acct)},
	}
	if wantPty {
		return sess.startWithPty(acct, shell, args, attr, winsize)
	}
	var closeAfter []*os.File
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			closeAfter = append(closeAfter, r, w)
			setPipeSize(r, 1<<20)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return err
	}
	outR, outW, err := pipe()
	if err != nil {
		return err
	}
	errR, errW, err := pipe()
	if err != nil {
		return err
	}
	attr.Env = sess.environ(acct, shell, "")
	attr.Files = []uintptr{inR.Fd(), outW.Fd(), errW.Fd()}
	pid, status, err := sess.srv.Start(shell, args, attr)
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		for _, f := range closeAfter {
			f.Close()
		}
		return fmt.Errorf("start %s: %w", shell, err)
	}
	sess.setPid(pid)
	go func() {
		io.Copy(inW, sess.ch)
		inW.Close() // the client's EOF becomes the command's
	}()
	out, errp := startPump(sess.ch, outR), startPump(sess.ch.Stderr(), errR)
	go func() {
		ws := <-status
		drain(out, errp)
		outR.Close()
		errR.Close()
		sess.exitStatus(ws)
	}()
	return nil
}

func (sess *session) startWithPty(acct *account, shell string, args []string, attr *syscall.ProcAttr, ws *pty.Winsize) error {
	master, slave, err := pty.Open() // the container's /dev/ptmx: its own devpts
	if err != nil {
		return fmt.Errorf("open pty: %w", err)
	}
	if ws != nil {
		pty.Setsize(master, ws)
	}
	// The slave belongs to the user, as login(1) would leave it; by its
	// descriptor, never by a path someone in the container could swap.
	slave.Chown(acct.uid, 5) // group tty
	attr.Env = sess.environ(acct, shell, slave.Name())
	attr.Files = []uintptr{slave.Fd(), slave.Fd(), slave.Fd()}
	attr.Sys.Setctty = true
	attr.Sys.Ctty = 0
	pid, status, err := sess.srv.Start(shell, args, attr)
	slave.Close()
	if err != nil {
		master.Close()
		return fmt.Errorf("start %s: %w", shell, err)
	}
	sess.mu.Lock()
	sess.master = master
	if sess.winsize != nil && sess.winsize != ws { // changed while starting
		pty.Setsize(master, sess.winsize)
	}
	sess.mu.Unlock()
	sess.setPid(pid)
	// Bytes go through untouched: no \n → \r\n rewriting (the terminal's
	// line discipline does what is needed), so tmux and vim render right.
	go io.Copy(master, sess.ch)
	out := startPump(sess.ch, master)
	go func() {
		st := <-status
		drain(out)
		master.Close()
		sess.exitStatus(st)
	}()
	return nil
}

func (sess *session) setPid(pid int) {
	sess.mu.Lock()
	sess.pid = pid
	sess.mu.Unlock()
}

// exitStatus reports how the process ended, as exit-status or, for a
// signal, exit-signal; then the channel closes.
func (sess *session) exitStatus(ws unix.WaitStatus) {
	if ws.Signaled() {
		name := strings.TrimPrefix(unix.SignalName(ws.Signal()), "SIG")
		sess.exit(-1, name)
		return
	}
	sess.exit(ws.ExitStatus(), "")
}

func (sess *session) exit(code int, signal string) {
	if signal != "" {
		sess.ch.SendRequest("exit-signal", false, gossh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Message    string
			Lang       string
		}{Signal: signal}))
	} else {
		sess.ch.SendRequest("exit-status", false, gossh.Marshal(struct{ Status uint32 }{uint32(code)}))
	}
	sess.ch.CloseWrite()
	sess.ch.Close()
}

// hangup ends the session's processes, as a closing terminal would.
func (sess *session) hangup() {
	sess.mu.Lock()
	pid := sess.pid
	sess.mu.Unlock()
	if pid > 0 {
		unix.Kill(-pid, unix.SIGHUP)
		unix.Kill(-pid, unix.SIGCONT)
	}
	sess.ch.Close()
}

// close releases what the session holds once its channel is gone. Its
// processes are left running: a server started in the background (VS
// Code's is) outlives the session that started it.
func (sess *session) close() {
	sess.mu.Lock()
	cleanup := sess.cleanup
	sess.cleanup = nil
	sess.mu.Unlock()
	for _, f := range cleanup {
		f()
	}
	sess.ch.Close()
}

// serveSFTP serves the SFTP subsystem in a helper process running as the
// user, as OpenSSH runs sftp-server: files are read and written with the
// user's rights, and paths resolve against the session's working
// directory as the kernel resolves them.
func (sess *session) serveSFTP(acct *account) {
	if err := sess.startProcess(acct, selfExe, []string{"devbox-sftp", sftpHelperArg}); err != nil {
		fmt.Fprintf(sess.ch.Stderr(), "devbox: sftp: %v\r\n", err)
		sess.exit(1, "")
	}
}

// setPipeSize enlarges a pipe: with the default 64 KiB, its reader is
// woken every couple of SFTP packets, and bulk transfers go through here.
// Through SyscallConn, as Fd would make the pipe blocking and disable the
// read deadline drain relies on.
func setPipeSize(f *os.File, size int) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size) })
	}
}
