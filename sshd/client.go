package sshd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// DialUnix connects to an environment's SSH server over its Unix socket
// as user, with devbox's client key, checking the host key.
func DialUnix(socket, user string, key gossh.Signer, hostKey gossh.PublicKey) (*gossh.Client, error) {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, err
	}
	conn, chans, reqs, err := gossh.NewClientConn(c, "devbox", &gossh.ClientConfig{
		User:            user,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(key)},
		HostKeyCallback: gossh.FixedHostKey(hostKey),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return gossh.NewClient(conn, chans, reqs), nil
}

// Command is a command to run over SSH.
type Command struct {
	Args   []string
	TTY    bool
	Term   string
	Rows   int
	Cols   int
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Signals are passed on to the remote command while it runs.
	Signals <-chan os.Signal
	// Resize carries terminal size changes (rows, cols).
	Resize <-chan [2]int
}

// Run runs cmd and returns its exit code (128+N for a signal N).
func Run(client *gossh.Client, cmd Command) (int, error) {
	sess, err := client.NewSession()
	if err != nil {
		return 1, err
	}
	defer sess.Close()
	sess.Stdout, sess.Stderr = cmd.Stdout, cmd.Stderr
	if cmd.TTY {
		if err := sess.RequestPty(cmd.Term, cmd.Rows, cmd.Cols, gossh.TerminalModes{}); err != nil {
			return 1, err
		}
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return 1, err
	}
	go func() {
		if cmd.Stdin != nil {
			io.Copy(stdin, cmd.Stdin)
		}
		stdin.Close()
	}()
	if err := sess.Start(ShellQuote(cmd.Args)); err != nil {
		return 1, err
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	for {
		select {
		case sig := <-cmd.Signals:
			if s, ok := sig.(interface{ String() string }); ok {
				sess.Signal(gossh.Signal(signalName(s.String())))
			}
		case sz := <-cmd.Resize:
			sess.WindowChange(sz[0], sz[1])
		case err := <-done:
			var ee *gossh.ExitError
			switch {
			case err == nil:
				return 0, nil
			case errors.As(err, &ee):
				if ee.Signal() != "" {
					return 128 + signalNumber(ee.Signal()), nil
				}
				return ee.ExitStatus(), nil
			}
			return 1, err
		}
	}
}

// ShellQuote joins args into one command line for the remote shell.
func ShellQuote(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			quoted[i] = a
			continue
		}
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

var signalNames = map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "ABRT": 6, "FPE": 8, "KILL": 9, "SEGV": 11, "PIPE": 13, "ALRM": 14, "TERM": 15, "USR1": 10, "USR2": 12}

func signalNumber(name string) int {
	if n, ok := signalNames[name]; ok {
		return n
	}
	return 0
}

// signalName maps Go's signal names ("interrupt") to SSH's ("INT").
func signalName(s string) string {
	switch s {
	case "interrupt":
		return "INT"
	case "terminated":
		return "TERM"
	case "hangup":
		return "HUP"
	case "quit":
		return "QUIT"
	}
	return strings.ToUpper(fmt.Sprint(s))
}
