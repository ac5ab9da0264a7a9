package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/devenv/spec/dockerfile"
	"github.com/devbox/devbox/rootfs"
	container "github.com/devbox/devbox/runtime"
)

// A dockerfile: base is planned as Docker builds it: the stages the
// target needs, in file order, each from its own base (an image, scratch
// or an earlier stage), each instruction that changes files a step keyed
// by its parent and everything it reads (its expanded text, environment,
// workdir, user; what a COPY copies: the context's content, or the key of
// the stage or the digest of the image it copies from).

// addDockerfile adds the steps of the Dockerfile that s's base names.
func (p *Plan) addDockerfile(s *spec.Spec, resolve Resolver) error {
	df, err := dockerfile.Parse(s.BaseRef.Name, s.Dockerfile.Args, s.Dockerfile.Target)
	if err != nil {
		return err
	}
	p.Dockerfile = df
	bc, err := openContext(s.Dockerfile.Context)
	if err != nil {
		return err
	}
	p.context = bc
	last := map[*dockerfile.Stage]int{}
	done := map[*dockerfile.Stage]*dockerfile.Evaluated{}
	for _, stage := range df.Stages {
		cfg, err := p.addFrom(s, stage, last, resolve)
		if err != nil {
			return err
		}
		ev, err := stage.Evaluate(cfg, done[stage.Parent])
		if err != nil {
			return err
		}
		for i := range ev.Steps {
			ds := &ev.Steps[i]
			canonical, img, err := p.dockerInput(s, df, ds, bc, last, resolve)
			if err != nil {
				return err
			}
			var mountFrom []int
			if ds.Kind == dockerfile.Run {
				var run []string
				if run, mountFrom, err = p.runInput(s, df, ds, bc, last); err != nil {
					return err
				}
				canonical = append(canonical, run...)
			}
			st := p.add(len(p.Steps)-1, StepDocker, summarize(ds.Text), canonical...)
			st.Docker, st.Image, st.Mounts = ds, img, mountFrom
			if ds.FromStage != nil {
				st.From = last[ds.FromStage]
			}
		}
		last[stage], done[stage] = len(p.Steps)-1, ev
	}
	p.Config = done[df.Target()].Config
	return nil
}

// addFrom adds a stage's base step and returns the image config it starts
// from (none for a stage FROM another, which inherits that one's).
func (p *Plan) addFrom(s *spec.Spec, stage *dockerfile.Stage, last map[*dockerfile.Stage]int, resolve Resolver) (rootfs.Config, error) {
	kind := StepFrom
	if len(p.Steps) == 0 {
		kind = StepBase
	}
	as := ""
	if stage.Name != "" {
		as = " AS " + stage.Name
	}
	switch {
	case stage.Parent != nil:
		st := p.add(-1, kind, "FROM "+stage.Parent.Label()+as, "stage="+p.Steps[last[stage.Parent]].Key)
		st.From = last[stage.Parent]
		return rootfs.Config{}, nil
	case stage.Base == "scratch":
		p.add(-1, kind, "FROM scratch"+as, "scratch")
		// BuildKit's empty image (dockerfile2llb emptyImage).
		return rootfs.Config{Env: []string{"PATH=" + container.DefaultPath}, WorkingDir: "/"}, nil
	}
	ref, err := baseRef(s, stage.Base)
	if err != nil {
		return rootfs.Config{}, fmt.Errorf("%s:%d: FROM %s: %w", stage.Path(), stage.Line, stage.Base, err)
	}
	img, err := resolve(ref)
	if err != nil {
		return rootfs.Config{}, err
	}
	canonical := "ref=" + ref.String()
	var cfg rootfs.Config
	if img != nil {
		canonical += "\nid=" + img.Digest
		cfg = img.Config
	}
	p.add(-1, kind, "FROM "+stage.Base+as, canonical).Image = img
	return cfg, nil
}

// baseRef parses an image a Dockerfile names; it must be an image (a
// registry reference, or oci:, docker-archive: …), not another Dockerfile.
func baseRef(s *spec.Spec, name string) (rootfs.Ref, error) {
	ref, err := rootfs.ParseRef(name, s.Dockerfile.Context)
	if err != nil {
		return ref, err
	}
	if ref.Kind == rootfs.KindDockerfile {
		return ref, fmt.Errorf("a Dockerfile cannot start from another")
	}
	ref.Insecure = s.Insecure
	return ref, nil
}

// dockerInput is a Dockerfile step's canonical input, and the image a
// COPY --from copies from.
func (p *Plan) dockerInput(s *spec.Spec, df *dockerfile.File, ds *dockerfile.Step, bc *buildContext, last map[*dockerfile.Stage]int, resolve Resolver) ([]string, *rootfs.Image, error) {
	c := []string{"kind=" + ds.Kind, "args=" + strings.Join(ds.Args, "\x00"), "env=" + strings.Join(ds.Env, "\x00"),
		"workdir=" + ds.Workdir, "user=" + ds.User, "sources=" + strings.Join(ds.Sources, "\x00"), "dest=" + ds.Dest,
		"chown=" + ds.Chown, "chmod=" + ds.Chmod}
	flags, err := p.copyFlagsInput(ds)
	if err != nil {
		return nil, nil, fmt.Errorf("%s:%d: %s: %w", df.Path, ds.Line, ds.Kind, err)
	}
	c = append(c, flags...)
	// Heredocs' documents are what the step reads; the proxy args are not
	// in the key, as in BuildKit.
	for _, f := range ds.Inline {
		c = append(c, "inline="+f.Name+"\x00"+f.Data)
	}
	if ds.Pipe != nil {
		c = append(c, "pipe="+ds.Pipe.Name+"\x00"+ds.Pipe.Data)
	}
	var from *rootfs.Image
	switch {
	case ds.Kind != dockerfile.Copy && ds.Kind != dockerfile.Add:
	case len(ds.Sources) == 0: // only heredocs and downloads
	case ds.FromStage != nil:
		c = append(c, "from-stage="+p.Steps[last[ds.FromStage]].Key)
	case ds.From != "":
		ref, err := baseRef(s, ds.From)
		if err == nil {
			from, err = resolve(ref)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: COPY --from=%s: %w", df.Path, ds.Line, ds.From, err)
		}
		id := "unknown"
		if from != nil {
			id = from.Digest
		}
		c = append(c, "from-image="+ds.From+"@"+id)
	default:
		d, err := bc.stepDigest(ds)
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %s: %w", df.Path, ds.Line, ds.Kind, err)
		}
		c = append(c, "context="+d)
		if bc.ignore != nil {
			c = append(c, "dockerignore="+strings.Join(bc.patterns, "\x00"))
		}
	}
	return c, from, nil
}

// summarize is an instruction on one line, short enough for a header.
func summarize(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > 72 {
		return string(r[:71]) + "…"
	}
	return text
}

// buildContext is the directory COPY and ADD read, less what its
// .dockerignore leaves out.
type buildContext struct {
	dir      string
	ignore   *patternmatcher.PatternMatcher // nil: nothing left out
	patterns []string
}

func openContext(dir string) (*buildContext, error) {
	bc := &buildContext{dir: dir}
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if os.IsNotExist(err) {
		return bc, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	bc.patterns = patterns
	if bc.ignore, err = patternmatcher.New(patterns); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return bc, nil
}

// ignored says .dockerignore leaves rel (slash-separated, relative to the
// context) out.
func (bc *buildContext) ignored(rel string) bool {
	if bc.ignore == nil || rel == "." || rel == "" {
		return false
	}
	ok, err := bc.ignore.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// match is what a COPY source names in the context, less .dockerignore.
func (bc *buildContext) match(src string) ([]match, error) {
	return matchIn(bc.dir, src, bc.ignored)
}

// match is a file a COPY source names: its name as matched (a link keeps
// its own) and its path, resolved inside the tree.
type match struct {
	name, path string
	// filter is what --parents and --exclude keep of a directory (nil:
	// all of it); remote is a download's (nil: a local file).
	filter *copyFilter
	remote *remoteFile
}

// matchIn is what src (a path, or a pattern with * ? [) names in the tree
// at root. Every component is resolved inside root, links included, so
// that nothing outside it is read ("../x" is "x", as in BuildKit; a link
// to / is root). A pattern may match nothing (BuildKit's empty wildcard);
// a path must exist. ignored leaves matches out by their relative path.
func matchIn(root, src string, ignored func(rel string) bool) ([]match, error) {
	rel := strings.TrimPrefix(path.Clean("/"+src), "/")
	cands := []string{""}
	pattern := false
	for _, comp := range strings.Split(rel, "/") {
		var next []string
		for _, c := range cands {
			if !strings.ContainsAny(comp, "*?[\\") {
				next = append(next, path.Join(c, comp))
				continue
			}
			pattern = true
			dir, err := securejoin.SecureJoin(root, c)
			if err != nil {
				continue
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if ok, err := path.Match(comp, e.Name()); err != nil {
					return nil, fmt.Errorf("%s: %w", src, err)
				} else if ok {
					next = append(next, path.Join(c, e.Name()))
				}
			}
		}
		cands = next
	}
	var out []match
	for _, c := range cands {
		p, err := securejoin.SecureJoin(root, c)
		if err != nil {
			return nil, err
		}
		if _, err := os.Lstat(p); err != nil || (ignored != nil && ignored(path.Clean(c))) {
			if !pattern {
				return nil, fmt.Errorf("%s: not found", src)
			}
			continue
		}
		out = append(out, match{name: path.Base(path.Clean("/" + c)), path: p})
	}
	return out, nil
}

func (bc *buildContext) rel(p string) string {
	r, err := filepath.Rel(bc.dir, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}

// digest is the content of what sources name: each file's path, mode,
// link target and bytes (not times or owners, which COPY does not keep).
func (bc *buildContext) digest(sources []string) (string, error) {
	return bc.stepDigest(&dockerfile.Step{Sources: sources})
}

// stepDigest is the content of what a COPY's or ADD's local sources name,
// less what --parents and --exclude leave out.
func (bc *buildContext) stepDigest(ds *dockerfile.Step) (string, error) {
	h := sha256.New()
	for _, src := range ds.Sources {
		matches, err := sourceMatches(ds, src, bc.match)
		if err != nil {
			return "", err
		}
		for _, m := range matches {
			fmt.Fprintf(h, "%s\x00", m.name)
			if m.filter != nil && isDir(m.path) {
				err = bc.hashFiltered(h, m)
			} else {
				err = bc.hashTree(h, m.path)
			}
			if err != nil {
				return "", err
			}
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func (bc *buildContext) hashTree(h io.Writer, top string) error {
	return filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != top && bc.ignored(bc.rel(p)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return bc.hashEntry(h, p, fi)
	})
}

// hashEntry hashes one file, directory or link: its path in the context,
// mode, and target or bytes.
func (bc *buildContext) hashEntry(h io.Writer, p string, fi fs.FileInfo) error {
	fmt.Fprintf(h, "%s\x00%o\x00", bc.rel(p), fi.Mode())
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(p)
		if err != nil {
			return err
		}
		io.WriteString(h, t)
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		io.WriteString(h, strconv.FormatInt(fi.Size(), 10)+"\x00")
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
	}
	_, err := h.Write([]byte{0})
	return err
}

// dockerfileNotes says what devbox does differently from docker run with
// what the Dockerfile asks.
func dockerfileNotes(w io.Writer, s *spec.Spec, p *Plan) {
	df, cfg := p.Dockerfile, p.Config
	if len(df.UnusedArgs) > 0 {
		fmt.Fprintf(w, "warning: %s declares no ARG %s\n", df.Path, strings.Join(df.UnusedArgs, ", "))
	}
	cmd := strings.Join(append(slices.Clone(cfg.Entrypoint), cfg.Cmd...), " ")
	if strings.Contains(cmd, "sshd") {
		fmt.Fprintf(w, "note: %s starts sshd (%s); devbox serves SSH itself and does not run it\n", df.Path, cmd)
	}
	if len(cfg.ExposedPorts) > 0 && len(s.Ports) == 0 {
		fmt.Fprintf(w, "note: %s exposes %s; devbox publishes only the spec's ports (ports = [\"8080:80\"]) and its SSH port\n",
			df.Path, strings.Join(cfg.ExposedPorts, " "))
	}
}
