package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/creack/pty"
	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/devbox/devbox/devenv"
	devspec "github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/sshd"
)

func (a *app) envs() *devenv.Envs { return devenv.NewEnvs(a.root) }

// envName is NAME if given, else the name of the spec in -f.
func (a *app) envName(args []string) (string, error) {
	if len(args) > 0 && args[0] != "" {
		// Its name, or a devcontainer.json's "name" (its title).
		return a.envs().Resolve(args[0])
	}
	spec, err := a.loadSpec()
	if err != nil {
		return "", fmt.Errorf("no NAME given and %w", err)
	}
	return spec.Name, nil
}

func (a *app) upCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "up [-f SPEC]",
		Short: "Build if needed, start the environment and wait until SSH answers",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			spec, store, err := a.specAndStore()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			pr := newProgress(a.stderr)
			start := time.Now()
			env, err := a.envs().Up(ctx, store, spec, devenv.UpOptions{Build: a.buildOptions(pr)})
			pr.Wait()
			switch {
			case errors.Is(err, devenv.ErrRunning):
				a.printf("%s is already running (pid %d)\n", env.Name, env.Pid)
			case err != nil:
				return err
			default:
				a.printf("%s is up in %s\n", env.Name, time.Since(start).Round(time.Millisecond))
			}
			a.printf("  ssh %s@%s -p %d\n  devbox ssh %s\n", env.User, hostOf(env.SSHAddress), env.SSHPort, env.Name)
			for _, p := range env.Ports {
				a.printf("  port %s\n", p)
			}
			return nil
		},
	}
}

func hostOf(addr string) string {
	if addr == "" || addr == "0.0.0.0" || addr == "127.0.0.1" {
		return "localhost"
	}
	return addr
}

func (a *app) downCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "down [NAME]",
		Short: "Stop an environment (its writable layer is kept)",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			name, err := a.envName(args)
			if err != nil {
				return err
			}
			env, err := a.envs().Down(name, timeout)
			if err != nil {
				return err
			}
			a.printf("%s is %s\n", env.Name, env.Status)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "time to wait after SIGTERM before SIGKILL")
	return cmd
}

func (a *app) rmCommand() *cobra.Command {
	var timeout time.Duration
	var volumes bool
	cmd := &cobra.Command{
		Use:   "rm [--volumes] [NAME]",
		Short: "Stop an environment and delete its writable layers and host key (and its named volumes with --volumes)",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			name, err := a.envName(args)
			if err != nil {
				return err
			}
			if err := a.envs().Rm(name, timeout, volumes); err != nil {
				return err
			}
			a.printf("removed %s\n", name)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "time to wait after SIGTERM before SIGKILL")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "also delete the named volumes it mounts (its services' too)")
	return cmd
}

func (a *app) psCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ps [--json]",
		Short: "List environments: name, status, pid, ports, base, uptime",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			envs, err := a.envs().List()
			if err != nil {
				return err
			}
			if asJSON {
				if envs == nil {
					envs = []*devenv.Env{}
				}
				return a.printJSON(envs)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSTATUS\tPID\tPORTS\tBASE\tUPTIME")
			for _, e := range envs {
				pid, up, ports := "-", "-", "-"
				if e.Status == "running" {
					pid, up = fmt.Sprint(e.Pid), time.Since(e.Started).Round(time.Second).String()
					ps := []string{fmt.Sprintf("%s:%d->22/ssh", e.SSHAddress, e.SSHPort)}
					for _, p := range e.Ports {
						ps = append(ps, p.String())
					}
					ports = strings.Join(ps, ",")
				}
				name := e.Name
				if e.Title != "" && e.Title != e.Name {
					name += fmt.Sprintf(" (%q)", e.Title) // quoted: free text
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", name, e.Status, pid, ports, orDash(e.Base), up)
				a.printServices(w, e)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printServices prints a line for each of env's services under it:
// NAME/SERVICE, its state (with its health, checked now), pid, ports.
func (a *app) printServices(w io.Writer, env *devenv.Env) {
	for _, svc := range env.Services {
		state, pid := svc.Status, "-"
		if svc.Status == "running" {
			pid = fmt.Sprint(svc.Pid)
			if h := a.envs().Health(env, svc); h != "" {
				state += " (" + h + ")"
			}
		}
		var ports []string
		for _, p := range svc.Ports {
			ports = append(ports, p.String())
		}
		fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\t%s\t%s\n", env.Name, svc.Name, state, pid, orDash(strings.Join(ports, ",")), "-", "-")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runningEnv returns a running environment or a clear error.
func (a *app) runningEnv(name string) (*devenv.Env, error) {
	name, err := a.envs().Resolve(name)
	if err != nil {
		return nil, err
	}
	env, err := a.envs().Get(name)
	if err != nil {
		return nil, err
	}
	if env.Status != "running" {
		return nil, fmt.Errorf("%s is not running (devbox up)", name)
	}
	return env, nil
}

func (a *app) execCommand() *cobra.Command {
	var tty bool
	var service string
	cmd := &cobra.Command{
		Use:   "exec [-t] [--service SVC] NAME -- CMD...",
		Short: "Run a command in a running environment; its exit code passes through",
		Args:  usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(_ *cobra.Command, args []string) error {
			// Flags end at NAME, so a "--" after it is still in args.
			if args[1] == "--" {
				args = append(args[:1], args[2:]...)
			}
			if len(args) < 2 {
				return usageError{errors.New("exec: no command given")}
			}
			env, err := a.runningEnv(args[0])
			if err != nil {
				return err
			}
			dial := a.envs().Dial
			if service != "" {
				dial = func(env *devenv.Env) (*gossh.Client, error) { return a.envs().DialService(env, service) }
			}
			client, err := dial(env)
			if err != nil {
				return fmt.Errorf("exec: %w", err)
			}
			defer client.Close()
			c := sshd.Command{Args: args[1:], TTY: tty, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
			sigs := make(chan os.Signal, 4)
			if tty {
				c.Term = cmp.Or(os.Getenv("TERM"), "xterm")
				c.Rows, c.Cols = 24, 80
				if ws, err := pty.GetsizeFull(os.Stdin); err == nil {
					c.Rows, c.Cols = int(ws.Rows), int(ws.Cols)
				}
				if term.IsTerminal(int(os.Stdin.Fd())) {
					if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
						defer term.Restore(int(os.Stdin.Fd()), st)
					}
				}
				resize := make(chan [2]int, 1)
				winch := make(chan os.Signal, 1)
				signal.Notify(winch, syscall.SIGWINCH)
				go func() {
					for range winch {
						if ws, err := pty.GetsizeFull(os.Stdin); err == nil {
							resize <- [2]int{int(ws.Rows), int(ws.Cols)}
						}
					}
				}()
				c.Resize = resize
			} else {
				signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
				c.Signals = sigs
			}
			return exitWith(sshd.Run(client, c))
		},
	}
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	cmd.Flags().StringVar(&service, "service", "", "run in the environment's service `NAME` instead")
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// sshArgs are the OpenSSH client options that reach an environment with
// devbox's key and its pinned host key.
func (a *app) sshArgs(env *devenv.Env) []string {
	envs := a.envs()
	return []string{
		"-i", envs.ClientKeyPath(),
		"-p", fmt.Sprint(env.SSHPort),
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + envs.KnownHostsPath(env.Name),
		"-o", "StrictHostKeyChecking=yes",
		"-l", env.User,
		hostOf(env.SSHAddress),
	}
}

func (a *app) sshCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ssh [NAME] [-- SSH-ARGS...]",
		Short: "Open an SSH session into an environment with devbox's own key",
		Args:  usageArgs(cobra.ArbitraryArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			var name []string
			if cmd.ArgsLenAtDash() != 0 && len(args) > 0 {
				name, args = args[:1], args[1:]
			}
			n, err := a.envName(name)
			if err != nil {
				return err
			}
			env, err := a.runningEnv(n)
			if err != nil {
				return err
			}
			bin, err := exec.LookPath("ssh")
			if err != nil {
				return errors.New("the OpenSSH client is not installed (apt-get install openssh-client)")
			}
			argv := append([]string{"ssh"}, a.sshArgs(env)...)
			argv = append(argv, args...)
			return syscall.Exec(bin, argv, os.Environ())
		},
	}
}

func (a *app) sshConfigCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ssh-config [NAME]",
		Short: "Print a Host block for ~/.ssh/config (VS Code, JetBrains)",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			var names []string
			if len(args) == 1 {
				names = args
			} else if n, err := a.envName(nil); err == nil {
				names = []string{n}
			} else {
				envs, err := a.envs().List()
				if err != nil {
					return err
				}
				for _, e := range envs {
					names = append(names, e.Name)
				}
			}
			for _, n := range names {
				env, err := a.runningEnv(n)
				if err != nil {
					return err
				}
				envs := a.envs()
				a.printf("Host devbox-%s\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n\n",
					env.Name, hostOf(env.SSHAddress), env.SSHPort, env.User, envs.ClientKeyPath(), envs.KnownHostsPath(env.Name))
			}
			return nil
		},
	}
}

func (a *app) logsCommand() *cobra.Command {
	var follow bool
	var service string
	cmd := &cobra.Command{
		Use:   "logs [-f] NAME",
		Short: "Print an environment's log",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			_, err := a.envs().Get(args[0])
			if err != nil {
				return err
			}
			path := a.envs().LogPath(args[0])
			if service != "" {
				if path, err = a.envs().ServiceLogPath(args[0], service); err != nil {
					return err
				}
			}
			f, err := os.Open(path)
			if errors.Is(err, fs.ErrNotExist) && service != "" {
				return fmt.Errorf("%s has no service %q that ever started", args[0], service)
			}
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(a.stdout, f); err != nil {
				return err
			}
			if !follow {
				return nil
			}
			ctx, cancel := signalContext()
			defer cancel()
			for ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
				if _, err := io.Copy(a.stdout, f); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing as the log grows")
	cmd.Flags().StringVar(&service, "service", "", "print the log of the environment's service `NAME`")
	cmd.Flags().StringVar(&a.file, "file", devspec.FileName, "path of the spec")
	return cmd
}
