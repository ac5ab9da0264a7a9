package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devbox/devbox/devenv"
	"github.com/devbox/devbox/devenv/builder"
	devspec "github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/rootfs"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// app holds what every command shares: the global flags and the outputs.
type app struct {
	root   string // state root
	debug  bool
	file   string // spec path
	locked bool   // --locked: the build must be what devbox.lock says
	// buildArgs are --build-arg KEY=VALUE, for a dockerfile: base.
	buildArgs []string
	// secretFlags and sshFlags are --secret and --ssh, read into secrets
	// and ssh by loadSpec.
	secretFlags, sshFlags []string
	secrets               map[string]builder.Secret
	ssh                   map[string]string
	stdout                io.Writer
	stderr                io.Writer
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{stdout: stdout, stderr: stderr}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "devbox",
		Short: "Reproducible, SSH-reachable development environments from a devbox.toml",
		Long: `devbox turns a devbox.toml (base image, packages, Node.js, npm registry,
mounts, ports) into a cached root filesystem and runs it as a namespaced
container whose init serves SSH. No daemon, no Dockerfile.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          usageArgs(cobra.NoArgs),
		RunE:          helpOnly,
	}
	root.PersistentFlags().StringVar(&a.root, "root", devenv.DefaultStateRoot(), "state directory (layers, builds, environments)")
	root.PersistentFlags().BoolVar(&a.debug, "debug", false, "print debugging output")
	// The state root is made absolute once, before any command: its paths
	// go to containers and are used after changes of directory.
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		abs, err := filepath.Abs(a.root)
		if err != nil {
			return fmt.Errorf("--root %s: %w", a.root, err)
		}
		a.root = abs
		return nil
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(
		a.initCommand(),
		a.templatesCommand(),
		a.withBuildArgs(a.withFile(a.planCommand())),
		a.withFile(a.configCommand()),
		a.withBuildArgs(a.withLocked(a.withFile(a.buildCommand()))),
		a.withFile(a.lockCommand()),
		a.cacheCommand(),
		a.withBuildArgs(a.withLocked(a.withFile(a.upCommand()))),
		a.withFile(a.downCommand()),
		a.withFile(a.rmCommand()),
		a.psCommand(),
		a.doctorCommand(),
		a.withFile(a.execCommand()),
		a.withFile(a.sshCommand()),
		a.withFile(a.sshConfigCommand()),
		a.logsCommand(),
		a.withBuildArgs(a.withLocked(a.withFile(a.runCommand()))),
		a.imageCommand(),
		a.volumeCommand(),
		a.pushCommand(),
		a.kubeCommand(),
		a.serveCommand(),
		a.versionCommand(),
	)
	return root
}

// helpOnly is the action of a command that only groups others: cobra
// would print help for unknown arguments and exit 0 without it.
func helpOnly(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// usageArgs makes cobra's argument checks usage errors (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// withFile gives cmd the -f/--file flag. It is not a root flag because
// `logs -f` means follow, as in docker and tail.
func (a *app) withFile(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().StringVarP(&a.file, "file", "f", devspec.FileName, "path of the spec")
	return cmd
}

// withLocked gives a command that builds the --locked flag.
func (a *app) withLocked(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().BoolVar(&a.locked, "locked", false, "fail, with the difference, if the build would change devbox.lock")
	return cmd
}

// withBuildArgs gives a command that builds the --build-arg flag.
func (a *app) withBuildArgs(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().StringArrayVar(&a.buildArgs, "build-arg", nil, "KEY=VALUE for the Dockerfile's ARG KEY (a dockerfile: base), over [dockerfile] args")
	return a.withSecrets(cmd)
}

// loadSpec reads the spec named by -f, with the --build-arg values.
func (a *app) loadSpec() (*devspec.Spec, error) {
	a.debugf("spec %s, state root %s", a.file, a.root)
	if err := a.parseSecrets(); err != nil {
		return nil, err
	}
	s, err := devspec.Load(a.file)
	if err != nil || len(a.buildArgs) == 0 {
		return s, err
	}
	if s.BaseRef.Kind != rootfs.KindDockerfile {
		return nil, usageError{fmt.Errorf("--build-arg: %s's base is not a Dockerfile", s.File)}
	}
	if s.Dockerfile.Args == nil {
		s.Dockerfile.Args = map[string]string{}
	}
	for _, kv := range a.buildArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("--build-arg %q: want KEY=VALUE", kv)}
		}
		s.Dockerfile.Args[k] = v
	}
	return s, nil
}

// specDirFile is the spec path inside dir.
func specDirFile(dir string) string { return filepath.Join(dir, devspec.FileName) }

func (a *app) printf(format string, args ...any) { fmt.Fprintf(a.stdout, format, args...) }

func (a *app) debugf(format string, args ...any) {
	if a.debug {
		fmt.Fprintf(a.stderr, "debug: "+format+"\n", args...)
	}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print devbox's version",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			a.printf("devbox %s\n", version)
			return nil
		},
	}
}

// openStoreIfExists opens the layer store without creating one; the
// result may be nil, which every query treats as empty.
func (a *app) openStoreIfExists() (*rootfs.Store, error) {
	return rootfs.OpenExisting(a.root)
}

// specAndStore loads the spec of -f and opens the layer store: what every
// command that builds or starts something needs first.
func (a *app) specAndStore() (*devspec.Spec, *rootfs.Store, error) {
	spec, err := a.loadSpec()
	if err != nil {
		return nil, nil, err
	}
	store, err := rootfs.Open(a.root)
	if err != nil {
		return nil, nil, err
	}
	return spec, store, nil
}

// printJSON prints v indented, for --json output.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
