package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/devbox/devbox/devenv"
	container "github.com/devbox/devbox/runtime"
)

func (a *app) runCommand() *cobra.Command {
	var tty bool
	cmd := &cobra.Command{
		Use:   "run [-f SPEC] [-t] -- CMD...",
		Short: "Run a command in a one-shot container of the spec's environment",
		Long: `Run CMD in a new container of the spec's environment with a throw-away
writable layer. Standard input and output are attached; -t gives CMD a
terminal. devbox exits with CMD's exit code (128+N if killed by signal N).`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			spec, store, err := a.specAndStore()
			if err != nil {
				return err
			}
			fwd := newSignalForwarder()
			defer fwd.stop()
			ctx := fwd.ctx
			pr := newProgress(a.stderr)
			o := devenv.RunOptions{Args: args, TTY: tty, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
			o.Build = a.buildOptions(pr)
			var rows, cols uint16
			if tty {
				o.Env = append(o.Env, "TERM="+cmp.Or(os.Getenv("TERM"), "xterm"))
				if ws, err := pty.GetsizeFull(os.Stdin); err == nil {
					rows, cols = ws.Rows, ws.Cols
				}
				o.Stdin, o.Stdout = nil, nil
			}
			o.Rows, o.Cols = rows, cols
			c, err := devenv.Run(ctx, store, spec, o)
			var se *container.StartError
			if errors.As(err, &se) {
				fmt.Fprintln(a.stderr, "devbox: "+se.Msg)
				return exitCodeError{se.Code}
			}
			if err != nil {
				return err
			}
			fwd.attach(c)
			if tty {
				restore := attachTTY(c)
				defer restore()
			}
			return exitWith(c.Wait())
		},
	}
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	return cmd
}

// signalForwarder catches SIGINT, SIGTERM, SIGHUP and SIGQUIT from the
// start: before the container runs they cancel ctx (the build or pull
// stops), once it runs they go to it. A signal that arrives while the
// container is starting is kept and delivered as soon as it exists, so
// none is lost in between.
type signalForwarder struct {
	ctx     context.Context
	cancel  context.CancelFunc
	sigs    chan os.Signal
	mu      sync.Mutex
	c       *container.Container
	pending []os.Signal
}

func newSignalForwarder() *signalForwarder {
	ctx, cancel := context.WithCancel(context.Background())
	f := &signalForwarder{ctx: ctx, cancel: cancel, sigs: make(chan os.Signal, 8)}
	signal.Notify(f.sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	go func() {
		for s := range f.sigs {
			f.mu.Lock()
			if f.c != nil {
				f.c.Signal(s)
			} else {
				f.pending = append(f.pending, s)
				f.cancel()
			}
			f.mu.Unlock()
		}
	}()
	return f
}

// attach sends signals to c from now on, and those that came before.
func (f *signalForwarder) attach(c *container.Container) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.c = c
	for _, s := range f.pending {
		c.Signal(s)
	}
	f.pending = nil
}

func (f *signalForwarder) stop() {
	signal.Stop(f.sigs)
	f.cancel()
}

// attachTTY connects this terminal to the container's: raw mode, both
// directions, and window size changes.
func attachTTY(c *container.Container) (restore func()) {
	restore = func() {}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			restore = func() { term.Restore(int(os.Stdin.Fd()), st) }
		}
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		go func() {
			for range winch {
				pty.InheritSize(os.Stdin, c.TTY)
			}
		}()
	}
	go io.Copy(c.TTY, os.Stdin)
	done := make(chan struct{})
	go func() { io.Copy(os.Stdout, c.TTY); close(done) }()
	c.OnCleanup(func() { <-done })
	return restore
}
