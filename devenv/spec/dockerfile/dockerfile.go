package dockerfile

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// File is a parsed Dockerfile.
type File struct {
	Path string
	// Stages are those the target needs, in file order; the last is the
	// target.
	Stages []*Stage
	// UnusedArgs are build args that no ARG declares.
	UnusedArgs []string
}

// Target is the stage the file builds.
func (f *File) Target() *Stage { return f.Stages[len(f.Stages)-1] }

// Stage is one FROM and its instructions.
type Stage struct {
	// Name is the stage's AS name (lower case), or "".
	Name string
	// Number is its index in the file, as COPY --from=N names it.
	Number int
	Line   int
	// Base is the image FROM names, expanded, when Parent is nil;
	// "scratch" is the empty image.
	Base string
	// Parent is the stage FROM names, if it names one.
	Parent *Stage

	path     string
	all      []*Stage
	byName   map[string]*Stage
	escape   rune
	commands []instructions.Command
	buildArg map[string]string
	meta     map[string]string // meta ARGs (before the first FROM) with a value
	metaDecl map[string]bool
}

// Path is the Dockerfile's.
func (s *Stage) Path() string { return s.path }

// Label is how the build names the stage.
func (s *Stage) Label() string {
	if s.Name != "" {
		return s.Name
	}
	return strconv.Itoa(s.Number)
}

// MaxSize bounds a Dockerfile as a spec is bounded (1 MiB): it comes
// from a cloned repository, and could be /dev/zero.
const MaxSize = 1 << 20

// readBounded reads at most MaxSize bytes of path, refusing more without
// reading on.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dockerfile: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("dockerfile: %w", err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: over %d bytes (1 MiB), more than a Dockerfile ever needs", path, MaxSize)
	}
	return data, nil
}

// Parse reads the Dockerfile at path. buildArgs override ARG defaults;
// target names the stage to build ("" for the last).
func Parse(path string, buildArgs map[string]string, target string) (*File, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", path)
	}
	f := &File{Path: path}
	used := map[string]bool{}
	lex := shell.NewLex(res.EscapeToken)
	meta, metaDecl, err := globalArgs(path, lex, metaArgs, buildArgs, used)
	if err != nil {
		return nil, err
	}
	all := make([]*Stage, len(stages))
	byName := map[string]*Stage{}
	for i, st := range stages {
		s := &Stage{Name: strings.ToLower(st.Name), Number: i, Line: line(st.Location), path: path, escape: res.EscapeToken,
			commands: st.Commands, buildArg: buildArgs, meta: meta, metaDecl: metaDecl}
		if err := checkPlatform(lex, st.Platform, meta); err != nil {
			return nil, lineErr(path, st.Location, err)
		}
		base, _, err := lex.ProcessWord(st.BaseName, envOf(meta))
		if err != nil {
			return nil, lineErr(path, st.Location, err)
		}
		if p, ok := byName[strings.ToLower(base)]; ok {
			s.Parent = p
		} else {
			s.Base = base
		}
		for _, c := range st.Commands {
			if a, ok := c.(*instructions.ArgCommand); ok {
				for _, kv := range a.Args {
					used[kv.Key] = true
				}
			}
		}
		all[i] = s
		if s.Name != "" {
			byName[s.Name] = s
		}
	}
	for _, s := range all {
		s.all, s.byName = all, byName
	}
	tgt := all[len(all)-1]
	if target != "" {
		if tgt = byName[strings.ToLower(target)]; tgt == nil {
			return nil, fmt.Errorf("%s: no stage named %q", path, target)
		}
	}
	if f.Stages, err = needed(all, byName, tgt); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(buildArgs)) {
		if !used[k] && !IsProxyArg(k) {
			f.UnusedArgs = append(f.UnusedArgs, k)
		}
	}
	return f, nil
}

// globalArgs are the values of the ARGs before the first FROM (and the
// predefined platform ones), and which were declared; it marks them used.
func globalArgs(path string, lex *shell.Lex, metaArgs []instructions.ArgCommand, buildArgs map[string]string, used map[string]bool) (meta map[string]string, decl map[string]bool, err error) {
	meta, decl = platformArgs(), map[string]bool{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			used[kv.Key] = true
			decl[kv.Key] = true
			if v, ok := buildArgs[kv.Key]; ok {
				meta[kv.Key] = v
			} else if kv.Value != nil {
				v, _, err := lex.ProcessWord(*kv.Value, envOf(meta))
				if err != nil {
					return nil, nil, lineErr(path, a.Location(), err)
				}
				meta[kv.Key] = v
			}
		}
	}
	return meta, decl, nil
}

// needed are the stages tgt builds on (FROM) or copies from, and tgt, in
// file order.
func needed(all []*Stage, byName map[string]*Stage, tgt *Stage) ([]*Stage, error) {
	want := map[*Stage]bool{}
	var visit func(s *Stage) error
	visit = func(s *Stage) error {
		if want[s] {
			return nil
		}
		want[s] = true
		if s.Parent != nil {
			if err := visit(s.Parent); err != nil {
				return err
			}
		}
		for _, c := range s.commands {
			var froms []string
			switch c := c.(type) {
			case *instructions.CopyCommand:
				froms = []string{c.From}
			case *instructions.RunCommand:
				froms = runMountFroms(c)
			}
			for _, from := range froms {
				if dep := stageByRef(all, byName, from, s.Number); from != "" && dep != nil {
					if err := visit(dep); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := visit(tgt); err != nil {
		return nil, err
	}
	var out []*Stage
	for _, s := range all {
		if want[s] {
			out = append(out, s)
		}
	}
	return out, nil
}

// stageByRef is the stage before stage number before that ref (a name or
// a number) names, or nil when it names an image.
func stageByRef(all []*Stage, byName map[string]*Stage, ref string, before int) *Stage {
	if s, ok := byName[strings.ToLower(ref)]; ok && s.Number < before {
		return s
	}
	if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < before {
		return all[n]
	}
	return nil
}

// platformArgs are BuildKit's predefined platform args, for this host:
// devbox builds for the machine it runs on.
func platformArgs() map[string]string {
	arch := goruntime.GOARCH
	m := map[string]string{}
	for _, side := range []string{"TARGET", "BUILD"} {
		m[side+"PLATFORM"], m[side+"OS"], m[side+"ARCH"], m[side+"VARIANT"] = "linux/"+arch, "linux", arch, ""
	}
	return m
}

// checkPlatform accepts FROM --platform only for this host's platform.
func checkPlatform(lex *shell.Lex, platform string, meta map[string]string) error {
	if platform == "" {
		return nil
	}
	p, _, err := lex.ProcessWord(platform, envOf(meta))
	if err != nil {
		return err
	}
	if p != meta["BUILDPLATFORM"] {
		return fmt.Errorf("FROM --platform=%s: devbox builds for this host (%s) only", p, meta["BUILDPLATFORM"])
	}
	return nil
}

func envOf(m map[string]string) shell.EnvGetter {
	var env []string
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	return shell.EnvsFromSlice(env)
}

func line(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

func lineErr(path string, loc []parser.Range, err error) error {
	return fmt.Errorf("%s:%d: %w", path, line(loc), err)
}
