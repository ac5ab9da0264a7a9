package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/spf13/cobra"

	"github.com/devbox/devbox/devenv/builder"
	"github.com/devbox/devbox/devenv/convert"
	"github.com/devbox/devbox/devenv/lock"
	devspec "github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/rootfs"
	"github.com/devbox/devbox/templates"
)

func (a *app) initCommand() *cobra.Command {
	var tmpl, from string
	var force bool
	cmd := &cobra.Command{
		Use:   "init [--template T | --from FILE] [DIR]",
		Short: "Write a devbox.toml from a template, a Dockerfile or a devcontainer.json",
		Long: `Write DIR/devbox.toml (DIR defaults to the current directory) from a template
(see 'devbox templates'), or convert a Dockerfile or a devcontainer.json
(--from): what maps cleanly is written, and each line that did not map is
printed. Either file can also be used as it is: base = "dockerfile:PATH", or
devbox up in a workspace with a devcontainer.json.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if from != "" && c.Flags().Changed("template") {
				return usageError{errors.New("--from and --template are exclusive")}
			}
			content, source, err := a.initContent(tmpl, from, dir)
			if err != nil {
				return err
			}
			path := specDirFile(dir)
			if err := writeNew(path, content, force); err != nil {
				return err
			}
			a.printf("wrote %s from %s\n", path, source)
			return nil
		},
	}
	cmd.Flags().StringVarP(&tmpl, "template", "t", templates.Default, "template to start from")
	cmd.Flags().StringVar(&from, "from", "", "convert this Dockerfile or devcontainer.json")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing devbox.toml")
	return cmd
}

// initContent is the devbox.toml init writes: a template's, or from's
// conversion (checked as a spec, the lines that did not map printed).
func (a *app) initContent(tmpl, from, dir string) ([]byte, string, error) {
	if from == "" {
		t, err := templates.Get(tmpl)
		if err != nil {
			return nil, "", usageError{err}
		}
		return t.Content, "template " + t.Name, nil
	}
	conv := convert.Dockerfile
	if devspec.IsDevcontainer(from) {
		conv = convert.Devcontainer
	}
	r, err := conv(from)
	if err != nil {
		return nil, "", fmt.Errorf("init --from %s: %w", from, err)
	}
	for _, u := range r.Unmapped {
		fmt.Fprintf(a.stderr, "not mapped: %s\n", u)
	}
	abs, _ := filepath.Abs(specDirFile(dir))
	if _, err := devspec.Parse(abs, r.Spec); err != nil {
		return nil, "", fmt.Errorf("init --from %s: the converted spec does not hold: %w", from, err)
	}
	return r.Spec, from, nil
}

// writeNew writes a new file at path; an existing one only with force.
func writeNew(path string, content []byte, force bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("init: %s already exists (use --force to overwrite)", path)
	}
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return fmt.Errorf("init: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	return nil
}

func (a *app) templatesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "templates",
		Short: "List the templates 'devbox init' can write",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			for _, t := range templates.List() {
				fmt.Fprintf(w, "%s\t%s\n", t.Name, t.Description)
			}
			return w.Flush()
		},
	}
}

func (a *app) configCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "config [-f SPEC]",
		Short: "Print the spec as devbox reads it, as a devbox.toml: a devcontainer.json and its compose files converted, defaults filled in",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			return toml.NewEncoder(a.stdout).Encode(spec)
		},
	}
}

func (a *app) planCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "plan [-f SPEC]",
		Short: "Print the build steps of a spec, their cache keys and whether each is built",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			store, err := a.openStoreIfExists()
			if err != nil {
				return err
			}
			plan, err := builder.NewPlan(spec, func(ref rootfs.Ref) (*rootfs.Image, error) {
				img, _ := store.Image(ref)
				return img, nil
			}, nil)
			if err != nil {
				return err
			}
			for i, st := range plan.Steps {
				status := "not built"
				switch {
				case !st.Layered() && st.From >= 0:
					status = "a stage"
				case (!st.Layered() && st.Image != nil) || (st.Layered() && store.HasBuild(st.Key)):
					status = "built"
				}
				a.printf("[%d/%d] %-8s %s  %s  %s\n", i+1, len(plan.Steps), st.Kind, st.Key[:12], status, st.Summary)
			}
			return nil
		},
	}
}

func (a *app) buildCommand() *cobra.Command {
	var noCache, check bool
	var output string
	cmd := &cobra.Command{
		Use:   "build [-f SPEC] [--no-cache] [--check] [--output type=docker,dest=FILE[,name=REF]]",
		Short: "Build the spec's environment, reusing cached steps",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			start := time.Now()
			var out rootfs.Output
			if output != "" {
				var err error
				if out, err = rootfs.ParseOutput(output); err != nil {
					return usageError{err}
				}
			}
			stdout := a.stdout
			if out.Dest == "-" {
				// The image goes to standard output; what the build says, to
				// standard error.
				a.stdout = a.stderr
			}
			spec, _, b, err := a.build(func(o *builder.Options) { o.NoCache, o.Check = noCache, check })
			if err != nil {
				return err
			}
			if output != "" {
				if err := a.writeOutput(spec, b, out, stdout); err != nil {
					return err
				}
			}
			a.printf("built %s (%d steps, top %s) in %s\n", spec.Name, len(b.Plan.Steps), b.Plan.Top()[:12], time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "rebuild every step")
	cmd.Flags().BoolVar(&check, "check", false, "build every step twice, ignoring the caches, and fail on the first whose two layers differ")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the Dockerfile's image: type=docker,dest=FILE[,name=REF] (docker load) or type=tar,dest=FILE (its files); dest=- is stdout")
	return cmd
}

// writeOutput writes the image a dockerfile: base built (its target
// stage, as docker build makes it) where out says.
func (a *app) writeOutput(spec *devspec.Spec, b *builder.Result, out rootfs.Output, stdout io.Writer) error {
	if b.Plan.Dockerfile == nil {
		return fmt.Errorf("--output: %s's base is not a Dockerfile; `devbox push` publishes an environment", spec.File)
	}
	if out.Name == "" {
		out.Name = spec.Name + ":latest"
	}
	ctx, cancel := signalContext()
	defer cancel()
	return rootfs.WriteOutput(ctx, b.Target, b.Plan.Config, out, stdout)
}

func (a *app) cacheCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Share built steps through a registry ([cache] image in the spec)",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  helpOnly,
	}
	push := &cobra.Command{
		Use:   "push [-f SPEC]",
		Short: "Build the spec and publish each step's layer to its cache repository",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			spec, store, b, err := a.build(func(*builder.Options) {})
			if err != nil {
				return err
			}
			if spec.Cache.Image == "" {
				return fmt.Errorf("%s has no [cache] image to push to", spec.File)
			}
			ctx, cancel := signalContext()
			defer cancel()
			steps := b.Plan.Layered()
			for i, st := range steps {
				pushed, err := store.PushBuild(ctx, spec.Cache.Image, st.Key, rootfs.PullOptions{})
				if err != nil {
					return err
				}
				state := "present"
				if pushed {
					state = "pushed"
				}
				a.printf("[%d/%d] %s … %s\n", i+1, len(steps), st.Summary, state)
			}
			return nil
		},
	}
	cmd.AddCommand(a.withFile(push))
	return cmd
}

// build builds the spec named by -f with the options set changes.
func (a *app) build(set func(*builder.Options)) (*devspec.Spec, *rootfs.Store, *builder.Result, error) {
	spec, store, err := a.specAndStore()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := signalContext()
	defer cancel()
	pr := newProgress(a.stderr)
	o := a.buildOptions(pr)
	set(&o)
	b, err := builder.Run(ctx, store, spec, o)
	pr.Wait()
	if err == nil {
		spec = b.Spec
	}
	return spec, store, b, err
}

// buildOptions shows a build's steps on stderr and its commands' output
// as it comes.
func (a *app) buildOptions(pr *progress) builder.Options {
	o := builder.Options{Pull: pullOptions(pr), Out: a.stderr, Stdout: os.Stderr, Stderr: os.Stderr, Log: pr.Log, Secrets: a.secrets, SSH: a.ssh}
	if a.locked {
		o.Lock = builder.LockLocked
	}
	return o
}

func (a *app) lockCommand() *cobra.Command {
	var update bool
	cmd := &cobra.Command{
		Use:   "lock [-f SPEC] [--update]",
		Short: "Write devbox.lock: what the spec resolves to (base digest, Node, packages, layers)",
		Long: `Build the spec and write devbox.lock beside it, as build and up do. With
--update, resolve the packages and Node afresh instead of installing what the
lock pins, and print what changed. Commit devbox.lock, like go.sum.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			spec, _, b, err := a.build(func(o *builder.Options) {
				if update {
					o.Lock = builder.LockUpdate
				}
			})
			if err != nil {
				return err
			}
			a.printf("%s: build %s\n", lock.Path(spec.File), b.Lock.Build[:12])
			return nil
		},
	}
	cmd.Flags().BoolVar(&update, "update", false, "resolve packages and Node afresh, ignoring the lock")
	return cmd
}
