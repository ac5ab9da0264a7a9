package devenv

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/devbox/devbox/devenv/spec"
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
	created := e.dir(s.Name).File("created")
	_, err := os.Stat(created)
	first := err != nil
	var todo []spec.Command
	if first {
		todo = append(append(append(todo, l.OnCreate...), l.UpdateContent...), l.PostCreate...)
	}
	todo = append(todo, l.PostStart...)
	if len(todo) == 0 {
		return markCreated(created, first)
	}
	client, err := e.Dial(env)
	if err != nil {
		return err
	}
	defer client.Close()
	for _, c := range todo {
		sess, err := client.NewSession()
		if err != nil {
			return err
		}
		sess.Stdout, sess.Stderr = out, out
		line := shellLine(c.Argv())
		fmt.Fprintf(out, "devcontainer: %s\n", line)
		err = sess.Run(line)
		sess.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", line, err)
		}
	}
	return markCreated(created, first)
}

func markCreated(path string, first bool) error {
	if !first {
		return nil
	}
	return os.WriteFile(path, nil, 0o600)
}

// shellLine is argv as one shell command line.
func shellLine(argv []string) string {
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		return argv[2]
	}
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// attachScript is the postAttach commands as one script.
func attachScript(cmds []spec.Command) string {
	var lines []string
	for _, c := range cmds {
		lines = append(lines, shellLine(c.Argv()))
	}
	return strings.Join(lines, "\n")
}
