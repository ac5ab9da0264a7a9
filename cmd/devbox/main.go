package main

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"

	"github.com/devbox/devbox/devenv"
	container "github.com/devbox/devbox/runtime"
	"github.com/devbox/devbox/runtime/rootless"
	"github.com/devbox/devbox/sshd"
)

// init keeps the main goroutine on the main thread, so that no other
// goroutine ever runs there: runtime throws away threads that joined a
// namespace when their goroutine ends, and Go cannot throw away the main
// thread (it would park it, still in the namespace). runc does the same.
func init() { goruntime.LockOSThread() }

func main() {
	// Rootless: the child waits here for its user namespace's maps.
	rootless.Enter()
	// The same binary is the container's init: runtime decides by argv.
	if container.IsInit() {
		os.Exit(container.InitMain(devenv.ServeSSH))
	}
	// ... and the SSH server's helpers, which run as the login user.
	if code, ok := sshd.RunHelper(os.Args); ok {
		os.Exit(code)
	}
	if rootless.Needed() && !ownNamespaces(os.Args[1:]) {
		code, err := rootless.Reexec()
		if err != nil {
			fmt.Fprintln(os.Stderr, "devbox: "+err.Error())
		}
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:]))
}

// ownNamespaces reports a command that runs rootless as it is, without a
// user namespace: help, version, and what only writes the user's files
// (init, templates); and `devbox serve`, the entrypoint of a pushed image,
// which runs as whatever user the image's runtime gives it, in namespaces
// that are not ours to make.
func ownNamespaces(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" {
			return true
		}
	}
	if len(args) == 0 {
		return true
	}
	switch args[0] {
	case "help", "version", "init", "templates", "serve", "completion":
		return true
	}
	return false
}

// Exit codes of the command-line contract.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is a mistake in how devbox was called (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCodeError carries a command's own exit status through (exec, run).
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitWith makes a command's exit code devbox's.
func exitWith(code int, err error) error {
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCodeError{code}
	}
	return nil
}

func run(args []string) int {
	a := newApp(os.Stdout, os.Stderr)
	cmd := a.rootCommand()
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return exitOK
	}
	var ec exitCodeError
	if errors.As(err, &ec) {
		return ec.code
	}
	fmt.Fprintln(os.Stderr, "devbox: "+err.Error())
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		fmt.Fprintln(os.Stderr, "Run 'devbox --help' for usage.")
		return exitUsage
	}
	return exitError
}

// isCobraUsage recognises the errors cobra makes itself, which are not typed.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
