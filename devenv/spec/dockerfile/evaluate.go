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
	// Remote are an ADD's http(s) sources, copied after Sources, and
	// Checksum its --checksum (for its one URL).
	Remote   []RemoteFile
	Checksum string
	// Exclude are --exclude's patterns; Parents is --parents.
	Exclude []string
	Parents bool
	// Unpack is ADD --unpack: nil unpacks local archives, not downloads.
	Unpack *bool
	// Env is what a RUN sees: the stage's ENV and its ARGs with a value,
	// the later of the two where both set a name (BuildKit adds both to
	// the build state's environment; only ENV reaches the config).
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
// what a stage FROM it inherits besides: the build state's environment,
// with its ARGs, as BuildKit carries it over.
type Evaluated struct {
	Steps  []Step
	Config rootfs.Config
	env    []string
}

// evaluation is a stage's state as its instructions run.
type evaluation struct {
	s      *Stage
	lex    *shell.Lex
	cfg    rootfs.Config
	env    []string // the build state's: ENV and ARGs with a value
	cmdSet bool     // CMD was set in this stage
	steps  []Step
}

// Evaluate runs the stage's instructions over base, the config of the
// image it starts from, or over parent, the stage it starts from.
func (s *Stage) Evaluate(base rootfs.Config, parent *Evaluated) (*Evaluated, error) {
	e := &evaluation{s: s, lex: shell.NewLex(s.escape), cfg: base, env: base.Env}
	if parent != nil {
		e.cfg, e.env = parent.Config, parent.env
	}
	e.cfg.Env = slices.Clone(e.cfg.Env)
	e.env = slices.Clone(e.env)
	e.cfg.Labels = maps.Clone(e.cfg.Labels)
	e.cfg.ExposedPorts = slices.Clone(e.cfg.ExposedPorts)
	e.cfg.Volumes = slices.Clone(e.cfg.Volumes)
	triggers, err := e.triggers()
	if err != nil {
		return nil, err
	}
	for _, c := range append(triggers, s.commands...) {
		if err := e.apply(c); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", s.path, line(c.Location()), strings.ToUpper(c.Name()), err)
		}
	}
	return &Evaluated{Steps: e.steps, Config: e.cfg, env: e.env}, nil
}

// shell is what RUN, CMD and ENTRYPOINT in shell form run under: the
// config's SHELL, or /bin/sh -c.
func (e *evaluation) shell() []string {
	if len(e.cfg.Shell) > 0 {
		return slices.Clone(e.cfg.Shell)
	}
	return slices.Clone(defaultShell)
}

// vars are what ${X} sees, and a RUN: the build state's environment.
func (e *evaluation) vars() []string { return slices.Clone(e.env) }

func (e *evaluation) expand(word string) (string, error) {
	v, _, err := e.lex.ProcessWord(word, shell.EnvsFromSlice(e.env))
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
			e.env = setEnv(e.env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if e.cfg.Labels == nil {
			e.cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			e.cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		e.cfg.Author = c.Maintainer
	case *instructions.WorkdirCommand:
		e.cfg.WorkingDir = e.abs(c.Path)
		e.add(c, Step{Kind: Workdir, Dest: e.cfg.WorkingDir})
	case *instructions.UserCommand:
		e.cfg.User = c.User
	case *instructions.ShellCommand:
		e.cfg.Shell = slices.Clone(c.Shell)
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
	case *instructions.StopSignalCommand:
		return e.stopSignal(c)
	case *instructions.VolumeCommand:
		return e.volume(c)
	case *instructions.HealthCheckCommand:
		e.healthcheck(c)
	case *instructions.OnbuildCommand:
		e.cfg.OnBuild = append(e.cfg.OnBuild, c.Expression)
	default:
		return fmt.Errorf("not supported")
	}
	return nil
}

// arg declares build args: a --build-arg value, else the default, else
// the meta ARG's value; one with none of them stays unset. A value goes
// into the build state's environment, over an ENV of the same name set
// before it (BuildKit's dispatchArg).
func (e *evaluation) arg(c *instructions.ArgCommand) {
	for _, kv := range c.Args {
		if v, ok := e.s.buildArg[kv.Key]; ok {
			e.env = setEnv(e.env, kv.Key, v)
		} else if kv.Value != nil {
			e.env = setEnv(e.env, kv.Key, *kv.Value)
		} else if v, ok := e.s.meta[kv.Key]; ok {
			e.env = setEnv(e.env, kv.Key, v)
		}
	}
}

// cmdLine is a CMD's or ENTRYPOINT's argv.
func (e *evaluation) cmdLine(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(e.shell(), strings.Join(c.CmdLine, " "))
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
	e.add(c, Step{Kind: Run, Args: args, Pipe: pipe, Env: e.vars(), ProxyEnv: proxyEnv(e.s.buildArg), Mounts: mounts, Network: network})
	return nil
}

// copy is a COPY. --link is accepted and changes nothing: devbox's step
// is already a layer of its own, diffed from the ones below. It differs
// from BuildKit's --link (a copy onto an empty layer merged over the
// stage: dispatchCopy's llb.Merge) only where the destination's path goes
// through a link to a directory: devbox follows it inside the image
// (copier.entry), as COPY without --link does, where the merged layer's
// real directory would hide the link.
func (e *evaluation) copy(c *instructions.CopyCommand) error {
	if err := checkExclude(c.ExcludePatterns); err != nil {
		return err
	}
	if err := checkCopySources(c.SourcePaths); err != nil {
		return err
	}
	// BuildKit's toCommand: --from is not expanded, and says so.
	if v, _, err := e.lex.ProcessWord(c.From, shell.EnvsFromSlice(nil)); err != nil || v != c.From {
		return fmt.Errorf("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")
	}
	inline, err := e.inlineFiles(c.SourceContents)
	if err != nil {
		return err
	}
	st := Step{Kind: Copy, Sources: c.SourcePaths, Inline: inline, Dest: e.dest(c.DestPath), From: c.From, Chown: c.Chown, Chmod: c.Chmod,
		Exclude: c.ExcludePatterns, Parents: c.Parents}
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

// addFiles is an ADD: local sources as COPY's (archives unpacked), URLs
// downloaded on the host; git sources are refused.
func (e *evaluation) addFiles(c *instructions.AddCommand) error {
	if err := checkExclude(c.ExcludePatterns); err != nil {
		return err
	}
	if c.Checksum != "" {
		if err := checkChecksum(c.Checksum, c.SourcePaths); err != nil {
			return err
		}
	}
	local, remote, err := addSources(c.SourcePaths)
	if err != nil {
		return err
	}
	inline, err := e.inlineFiles(c.SourceContents)
	if err != nil {
		return err
	}
	// --keep-git-dir means something to git sources only, as in
	// BuildKit, and those are refused above.
	e.add(c, Step{Kind: Add, Sources: local, Remote: remote, Checksum: c.Checksum, Inline: inline, Dest: e.dest(c.DestPath),
		Chown: c.Chown, Chmod: c.Chmod, Exclude: c.ExcludePatterns, Unpack: c.Unpack})
	return nil
}

// add records a step with the stage's state.
func (e *evaluation) add(c instructions.Command, st Step) {
	st.Line = line(c.Location())
	if s, ok := c.(fmt.Stringer); ok {
		st.Text = s.String()
	}
	st.Workdir = e.workdir()
	st.User = e.cfg.User
	e.steps = append(e.steps, st)
}

// abs resolves p against the workdir.
func (e *evaluation) abs(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(e.workdir(), p)
}

// workdir is where steps run: WORKDIR, or / where neither the image nor
// the stage set one (the config keeps "", as Docker's does).
func (e *evaluation) workdir() string {
	if e.cfg.WorkingDir == "" {
		return "/"
	}
	return e.cfg.WorkingDir
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
