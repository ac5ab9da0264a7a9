package dockerfile

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/devbox/devbox/rootfs"
)

// Step kinds: the instructions that change files.
const (
	Run     = "RUN"
	Copy    = "COPY"
	Add     = "ADD"
	Workdir = "WORKDIR"
)

// Step is an instruction that changes files, expanded, with the state it
// runs in.
type Step struct {
	Line int
	Kind string
	// Text is the instruction as written, for the build's header.
	Text string
	// Args is a RUN's argv: the shell and the command, or the exec form.
	Args []string
	// Sources and Dest are a COPY's or ADD's; Dest is absolute, and ends
	// in "/" when it names a directory to copy into.
	Sources []string
	Dest    string
	// Inline are a COPY's or ADD's heredoc sources, after Sources.
	Inline []InlineFile
	// Pipe is a RUN heredoc with a shebang, which Args runs from
	// PipesDir.
	Pipe *InlineFile
	// From is COPY --from: FromStage when it names a stage, else an image
	// reference; "" copies from the build context.
	From      string
	FromStage *Stage
	Chown     string
	Chmod     string
	// Env is what a RUN sees: the stage's ENV, then the build args in
	// scope that ENV does not set.
	Env []string
	// ProxyEnv are the proxy build args a RUN sees besides (where Env
	// does not set them); not part of the step's identity.
	ProxyEnv []string
	Workdir  string
	// User is USER as written (name or id, with an optional group).
	User string
	// Mounts are a RUN's --mount flags; Network its --network mode ("",
	// NetworkNone or NetworkHost).
	Mounts  []Mount
	Network string
}

// defaultShell is what RUN, CMD and ENTRYPOINT in shell form run under
// until SHELL says otherwise.
var defaultShell = []string{"/bin/sh", "-c"}

// Evaluated is a stage evaluated: its steps, the config it ends with, and
// what a stage FROM it inherits besides (its build args and SHELL, as
// BuildKit carries them over).
type Evaluated struct {
	Steps  []Step
	Config rootfs.Config
	args   map[string]string
	shell  []string
}

// evaluation is a stage's state as its instructions run.
type evaluation struct {
	s      *Stage
	lex    *shell.Lex
	cfg    rootfs.Config
	args   map[string]string // ARGs in scope with a value
	shell  []string
	cmdSet bool // CMD was set in this stage
	steps  []Step
}

// Evaluate runs the stage's instructions over base, the config of the
// image it starts from, or over parent, the stage it starts from.
func (s *Stage) Evaluate(base rootfs.Config, parent *Evaluated) (*Evaluated, error) {
	e := &evaluation{s: s, lex: shell.NewLex(s.escape), cfg: base, args: map[string]string{}, shell: defaultShell}
	if parent != nil {
		e.cfg, e.args, e.shell = parent.Config, maps.Clone(parent.args), parent.shell
	}
	e.cfg.Env = slices.Clone(e.cfg.Env)
	e.cfg.Labels = maps.Clone(e.cfg.Labels)
	e.cfg.ExposedPorts = slices.Clone(e.cfg.ExposedPorts)
	if e.cfg.WorkingDir == "" {
		e.cfg.WorkingDir = "/"
	}
	for _, c := range s.commands {
		if err := e.apply(c); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", s.path, line(c.Location()), strings.ToUpper(c.Name()), err)
		}
	}
	return &Evaluated{Steps: e.steps, Config: e.cfg, args: e.args, shell: e.shell}, nil
}

// vars are what ${X} sees: the build args in scope, then ENV over them.
func (e *evaluation) vars() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(e.args)) {
		out = append(out, k+"="+e.args[k])
	}
	return append(out, e.cfg.Env...)
}

// runEnv is what a RUN sees: ENV, then the build args ENV does not set.
func (e *evaluation) runEnv() []string {
	out := slices.Clone(e.cfg.Env)
	for _, k := range slices.Sorted(maps.Keys(e.args)) {
		if !slices.ContainsFunc(e.cfg.Env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") }) {
			out = append(out, k+"="+e.args[k])
		}
	}
	return out
}

func (e *evaluation) expand(word string) (string, error) {
	v, _, err := e.lex.ProcessWord(word, shell.EnvsFromSlice(e.vars()))
	return v, err
}

// apply runs one instruction.
func (e *evaluation) apply(c instructions.Command) error {
	if x, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := x.Expand(e.expand); err != nil {
			return err
		}
	}
	switch c := c.(type) {
	case *instructions.ArgCommand:
		e.arg(c)
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			e.cfg.Env = setEnv(e.cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if e.cfg.Labels == nil {
			e.cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			e.cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		if e.cfg.Labels == nil {
			e.cfg.Labels = map[string]string{}
		}
		e.cfg.Labels["maintainer"] = c.Maintainer
	case *instructions.WorkdirCommand:
		e.cfg.WorkingDir = e.abs(c.Path)
		e.add(c, Step{Kind: Workdir, Dest: e.cfg.WorkingDir})
	case *instructions.UserCommand:
		e.cfg.User = c.User
	case *instructions.ShellCommand:
		e.shell = slices.Clone(c.Shell)
	case *instructions.ExposeCommand:
		return e.expose(c.Ports)
	case *instructions.CmdCommand:
		e.cfg.Cmd = e.cmdLine(c.ShellDependantCmdLine)
		e.cmdSet = true
	case *instructions.EntrypointCommand:
		e.cfg.Entrypoint = e.cmdLine(c.ShellDependantCmdLine)
		// As in BuildKit: a new entrypoint drops a CMD from the base,
		// not one this stage set.
		if !e.cmdSet {
			e.cfg.Cmd = nil
		}
	case *instructions.RunCommand:
		return e.run(c)
	case *instructions.CopyCommand:
		return e.copy(c)
	case *instructions.AddCommand:
		return e.addFiles(c)
	case *instructions.StopSignalCommand, *instructions.VolumeCommand:
		// Nothing for devbox to do: it stops environments itself, and a
		// volume is a mount the spec declares.
	case *instructions.HealthCheckCommand:
		return fmt.Errorf("not supported: devbox serves SSH and has no health checks; remove it")
	case *instructions.OnbuildCommand:
		return fmt.Errorf("not supported: devbox builds the image here; put the instruction in the Dockerfile that uses it")
	default:
		return fmt.Errorf("not supported")
	}
	return nil
}

// arg declares build args: a --build-arg value, else the default, else
// the meta ARG's value; one with none of them stays unset.
func (e *evaluation) arg(c *instructions.ArgCommand) {
	for _, kv := range c.Args {
		if v, ok := e.s.buildArg[kv.Key]; ok {
			e.args[kv.Key] = v
		} else if kv.Value != nil {
			e.args[kv.Key] = *kv.Value
		} else if v, ok := e.s.meta[kv.Key]; ok {
			e.args[kv.Key] = v
		}
	}
}

// cmdLine is a CMD's or ENTRYPOINT's argv.
func (e *evaluation) cmdLine(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(slices.Clone(e.shell), strings.Join(c.CmdLine, " "))
	}
	return slices.Clone(c.CmdLine)
}

func (e *evaluation) run(c *instructions.RunCommand) error {
	network, err := runFlags(c)
	if err != nil {
		return err
	}
	mounts, err := e.mounts(c)
	if err != nil {
		return err
	}
	args, pipe, err := e.runArgs(c)
	if err != nil {
		return err
	}
	e.add(c, Step{Kind: Run, Args: args, Pipe: pipe, Env: e.runEnv(), ProxyEnv: proxyEnv(e.s.buildArg), Mounts: mounts, Network: network})
	return nil
}

func (e *evaluation) copy(c *instructions.CopyCommand) error {
	switch {
	case c.Parents:
		return fmt.Errorf("--parents is not supported")
	case len(c.ExcludePatterns) > 0:
		return fmt.Errorf("--exclude is not supported")
	}
	inline, err := e.inlineFiles(c.SourceContents)
	if err != nil {
		return err
	}
	st := Step{Kind: Copy, Sources: c.SourcePaths, Inline: inline, Dest: e.dest(c.DestPath), From: c.From, Chown: c.Chown, Chmod: c.Chmod}
	if c.From != "" {
		st.FromStage = stageByRef(e.s.all, e.s.byName, c.From, e.s.Number)
		_, numeric := strconv.Atoi(c.From)
		if st.FromStage == nil && (e.s.byName[strings.ToLower(c.From)] != nil || numeric == nil) {
			return fmt.Errorf("--from=%s names this stage or a later one (invalid stage index)", c.From)
		}
	}
	e.add(c, st)
	return nil
}

func (e *evaluation) addFiles(c *instructions.AddCommand) error {
	switch {
	case c.Checksum != "" || c.KeepGitDir != nil:
		return fmt.Errorf("ADD from a URL or git is not supported; download in a RUN step")
	case len(c.ExcludePatterns) > 0:
		return fmt.Errorf("--exclude is not supported")
	}
	inline, err := e.inlineFiles(c.SourceContents)
	if err != nil {
		return err
	}
	for _, src := range c.SourcePaths {
		if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
			return fmt.Errorf("%s: ADD from a URL or git is not supported; download in a RUN step (with a checksum)", src)
		}
	}
	e.add(c, Step{Kind: Add, Sources: c.SourcePaths, Inline: inline, Dest: e.dest(c.DestPath), Chown: c.Chown, Chmod: c.Chmod})
	return nil
}

// add records a step with the stage's state.
func (e *evaluation) add(c instructions.Command, st Step) {
	st.Line = line(c.Location())
	if s, ok := c.(fmt.Stringer); ok {
		st.Text = s.String()
	}
	st.Workdir = e.cfg.WorkingDir
	st.User = e.cfg.User
	e.steps = append(e.steps, st)
}

// abs resolves p against the workdir.
func (e *evaluation) abs(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(e.cfg.WorkingDir, p)
}

// dest is a COPY's destination, absolute, keeping a trailing slash.
func (e *evaluation) dest(p string) string {
	d := e.abs(p)
	if strings.HasSuffix(p, "/") || p == "." || strings.HasSuffix(p, "/.") {
		if d != "/" {
			d += "/"
		}
	}
	return d
}

// setEnv sets k in env, in place if present.
func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
