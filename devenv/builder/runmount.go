package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
	"github.com/devbox/devbox/internal/state"
	container "github.com/devbox/devbox/runtime"
)

// A Dockerfile's RUN --mount, as BuildKit does it: nothing mounted is
// part of the step's layer, and what the container's root writes to a
// mount is written with its own ids. The trees devbox makes for a mount
// (a cache, a copy of a bind's source, a secret, an agent's relay
// socket) are stored in canonical ids, root's being 0, and mounted
// idmapped as the layers are (container.Mount.Canonical): the build's
// id range changes with every build, the cache stays.

// runMounter makes one RUN's mounts and undoes what must not outlive it
// (locks, copies, relays).
type runMounter struct {
	root state.Root
	b    *Result
	st   Step
	in   stepInputs
	tmp  string
	o    Options
	// env is what the RUN's environment gets: SSH_AUTH_SOCK, secrets
	// given as variables.
	env     []string
	cleanup []func()
}

// release undoes what prepare did, last first.
func (rm *runMounter) release() {
	for i := len(rm.cleanup) - 1; i >= 0; i-- {
		rm.cleanup[i]()
	}
	rm.cleanup = nil
}

// prepare makes the mounts; release undoes them, also after an error.
func (rm *runMounter) prepare(ctx context.Context, mounts []dockerfile.Mount) (runExtra, error) {
	var extra runExtra
	ssh := false
	for i, m := range mounts {
		var cm *container.Mount
		var err error
		switch m.Type {
		case dockerfile.MountTmpfs:
			cm = &container.Mount{Target: m.Target, Tmpfs: true, Size: m.Size}
		case dockerfile.MountCache:
			cm, err = rm.cache(i, m)
		case dockerfile.MountBind:
			cm, err = rm.bind(i, m)
		case dockerfile.MountSecret:
			cm, err = rm.secret(i, m)
		case dockerfile.MountSSH:
			if cm, err = rm.ssh(ctx, i, m); cm != nil && !ssh {
				// The first agent is the RUN's, as BuildKit sets it
				// (client/llb/exec.go).
				rm.env = append(rm.env, "SSH_AUTH_SOCK="+m.Target)
				ssh = true
			}
		default:
			err = fmt.Errorf("unknown mount type %q", m.Type)
		}
		if err != nil {
			return extra, fmt.Errorf("%s:%d: RUN --mount=type=%s,target=%s: %w", rm.dockerfilePath(), rm.st.Docker.Line, m.Type, m.Target, err)
		}
		if cm != nil {
			extra.mounts = append(extra.mounts, *cm)
		}
	}
	return extra, nil
}

func (rm *runMounter) dockerfilePath() string {
	if p := rm.b.Plan; p != nil && p.Dockerfile != nil {
		return p.Dockerfile.Path
	}
	return "Dockerfile"
}

// runNetwork is the build container's network for RUN --network: none
// has none; host is the host's (the plan refuses it unless the spec's
// network is the host's); the default is the build's own.
func runNetwork(n string) container.NetworkMode {
	switch n {
	case dockerfile.NetworkNone:
		return container.NetworkNone
	case dockerfile.NetworkHost:
		return container.NetworkHost
	}
	return ""
}

// mountDir is a new directory under the step's tmp for mount i's tree.
func (rm *runMounter) mountDir(kind string, i int) (string, error) {
	d := filepath.Join(rm.tmp, "mount-"+kind+"-"+strconv.Itoa(i))
	if err := os.Mkdir(d, 0o700); err != nil {
		return "", err
	}
	return d, nil
}

// bind is a copy of a bind's source, from the build context (files
// root's, .dockerignore applied, as BuildKit's context transfer resets
// owners) or from a stage's tree (owners kept). A copy, not the host path:
// a host file bound into a user namespace is nobody's (the bind rule),
// and rw writes are thrown away with it, as BuildKit's are.
func (rm *runMounter) bind(i int, m dockerfile.Mount) (*container.Mount, error) {
	dst, err := rm.mountDir("bind", i)
	if err != nil {
		return nil, err
	}
	target, err := rm.copySource(i, m, dst)
	if err != nil {
		return nil, err
	}
	return &container.Mount{Source: target, Target: m.Target, Readonly: m.ReadOnly, Canonical: true}, nil
}

// copySource copies m's source into dst and returns the copy's path:
// dst itself for a directory, dst/NAME for a file.
func (rm *runMounter) copySource(i int, m dockerfile.Mount, dst string) (string, error) {
	copyFrom := func(src *copySource) (string, error) {
		p, err := securejoin.SecureJoin(src.root, m.Source)
		if err != nil {
			return "", err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || (src.ignored(p) && m.Source != "/") {
			return "", fmt.Errorf("source %s: not found", m.Source)
		}
		cp := &copier{src: src, root: dst}
		if src.context != nil {
			cp.owner = &[2]int{0, 0}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			name := path.Base(m.Source)
			return filepath.Join(dst, name), cp.entry(p, "/"+name)
		}
		return dst, cp.dirInto(p, st)
	}
	if m.FromStage == nil {
		bc := rm.b.Plan.context
		return copyFrom(&copySource{root: bc.dir, context: bc})
	}
	var out string
	err := onMerged(rm.in.mounts[i], rm.tmp, "mount-from-"+strconv.Itoa(i)+"-", func(root string) error {
		var err error
		out, err = copyFrom(&copySource{root: root})
		return err
	})
	return out, err
}

// secret is a file of the secret's value for the run's time, mode and
// owner as asked (0400, root's), never in a layer; with env= the value
// is also (or only) the RUN's variable. A secret not given is an error
// if required, else no mount.
func (rm *runMounter) secret(i int, m dockerfile.Mount) (*container.Mount, error) {
	value, ok, err := secretValue(rm.o.Secrets, m.ID)
	if err != nil {
		return nil, err
	}
	if !ok {
		if m.Required {
			return nil, fmt.Errorf("secret %q is required: give it with devbox build --secret id=%s,src=FILE (or env=VAR)", m.ID, m.ID)
		}
		return nil, nil
	}
	if m.Env != "" {
		rm.env = append(rm.env, m.Env+"="+string(value))
	}
	if m.Target == "" {
		return nil, nil
	}
	dir, err := rm.mountDir("secret", i)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "secret")
	rm.cleanup = append(rm.cleanup, func() { os.Remove(p) })
	if err := os.WriteFile(p, value, 0o400); err != nil {
		return nil, err
	}
	if err := os.Chown(p, int(m.UID), int(m.GID)); err != nil {
		return nil, err
	}
	if err := os.Chmod(p, os.FileMode(m.Mode&0o7777)); err != nil {
		return nil, err
	}
	return &container.Mount{Source: p, Target: m.Target, Readonly: true, Canonical: true}, nil
}

// secretValue is secret id's value, read from its file or variable.
func secretValue(secrets map[string]Secret, id string) ([]byte, bool, error) {
	sec, ok := secrets[id]
	if !ok {
		return nil, false, nil
	}
	if sec.Env != "" {
		v, ok := os.LookupEnv(sec.Env)
		if !ok {
			return nil, false, fmt.Errorf("secret %q: $%s is not set", id, sec.Env)
		}
		return []byte(v), true, nil
	}
	data, err := os.ReadFile(sec.Src)
	if err != nil {
		return nil, false, fmt.Errorf("secret %q: %w", id, err)
	}
	return data, true, nil
}

// mountStubs are the mount targets, and the directories above them, that
// the layers below do not have: the runtime makes them in the writable
// layer to mount on, and removeStubs takes them out again.
func mountStubs(lower []string, upper string, mounts []dockerfile.Mount) []string {
	var out []string
	for _, m := range mounts {
		if m.Target == "" {
			continue
		}
		for p := path.Clean(m.Target); p != "/"; p = path.Dir(p) {
			rel := p[1:]
			if existsInLayers(lower, rel) {
				break
			}
			if _, err := os.Lstat(filepath.Join(upper, rel)); err == nil {
				break
			}
			out = append(out, rel)
		}
	}
	return out
}

// removeStubs removes the stubs the run left empty, keeping their
// parents' times, as BuildKit's MountStubsCleaner (executor/stubs.go,
// recursive since client/llb sets RemoveMountStubsRecursive) does: a
// mount leaves nothing in the layer but what the RUN wrote beside it.
func removeStubs(upper string, stubs []string) error {
	for _, rel := range stubs {
		p, err := securejoin.SecureJoin(upper, rel)
		if err != nil {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if fi.IsDir() {
			if ents, err := os.ReadDir(p); err != nil || len(ents) > 0 {
				continue
			}
		} else if !fi.Mode().IsRegular() || fi.Size() != 0 {
			continue
		}
		parent := filepath.Dir(p)
		var st unix.Stat_t
		if err := unix.Lstat(parent, &st); err != nil {
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("mount point %s: %w", rel, err)
		}
		ts := []unix.Timespec{st.Atim, st.Mtim}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, parent, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}
