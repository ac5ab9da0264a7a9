package devenv

import (
	"fmt"
	"io"
	"os"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/sshd"
)

// A devcontainer.json's lifecycle commands run in the running
// environment as its SSH user, in its workdir, over devbox's own
// connection: onCreate, updateContent and postCreate once (at the first
// up, again after rm), postStart at every up that starts it. One that
// fails fails the up, which stops the environment: the same up again
// runs them again. postAttach is the SSH server's (sshd.Config.Attach).

// runLifecycle runs what this start of env owes.
func (e *Envs) runLifecycle(env *Env, s *spec.Spec, out io.Writer) error {
	l := s.Lifecycle
	created := e.dir(s.Name).Created()
	_, err := os.Stat(created)
	var create []spec.Command
	if err != nil {
		create = append(append(append(create, l.OnCreate...), l.UpdateContent...), l.PostCreate...)
	}
	if len(create)+len(l.PostStart) == 0 {
		return os.WriteFile(created, nil, 0o600)
	}
	client, err := e.Dial(env)
	if err != nil {
		return err
	}
	defer client.Close()
	run := func(cmds []spec.Command) error {
		for _, c := range cmds {
			if err := runCommand(client, c, out); err != nil {
				return err
			}
		}
		return nil
	}
	if err := run(create); err != nil {
		return err
	}
	// Created once the create commands ran, whatever postStart does.
	if err := os.WriteFile(created, nil, 0o600); err != nil {
		return err
	}
	return run(l.PostStart)
}

// runCommand runs c over client: a string under /bin/sh -c (whatever the
// user's login shell), an array as it is.
func runCommand(client *gossh.Client, c spec.Command, out io.Writer) error {
	sess, err := client.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	sess.Stdout, sess.Stderr = out, out
	line := shellLine(c.Argv())
	fmt.Fprintf(out, "devcontainer: %s\n", line)
	if err := sess.Run("exec " + sshd.ShellQuote([]string{"/bin/sh", "-c", line})); err != nil {
		return fmt.Errorf("%s: %w", line, err)
	}
	return nil
}

// shellLine is argv as one shell command line; /bin/sh -c LINE is LINE.
func shellLine(argv []string) string {
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		return argv[2]
	}
	return sshd.ShellQuote(argv)
}

// attachScript is the postAttach commands as one script.
func attachScript(cmds []spec.Command) string {
	var lines []string
	for _, c := range cmds {
		lines = append(lines, shellLine(c.Argv()))
	}
	return strings.Join(lines, "\n")
}
