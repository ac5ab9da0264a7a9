package dockerfile

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// Mount types of RUN --mount.
const (
	MountBind   = "bind"
	MountCache  = "cache"
	MountTmpfs  = "tmpfs"
	MountSecret = "secret"
	MountSSH    = "ssh"
)

// Network modes of RUN --network; "" is the default, the build's.
const (
	NetworkNone = "none"
	NetworkHost = "host"
)

// Mount is a RUN --mount, expanded, with BuildKit's defaults filled in
// (frontend/dockerfile/dockerfile2llb/convert_runmount.go,
// convert_secrets.go, convert_ssh.go).
type Mount struct {
	Type string
	// Target is absolute (a relative one is the workdir's, as in
	// BuildKit); "" for a secret only in Env.
	Target string
	// Source is a bind's or cache's path in what it mounts from (the
	// context, or From), clean and absolute: "/" is all of it.
	Source string
	// From is a bind's or cache's stage as written, FromStage the stage.
	From      string
	FromStage *Stage
	// ID names a cache (default: the target), a secret or an SSH agent
	// (default: "default").
	ID string
	// Sharing is a cache's: shared, private or locked.
	Sharing  string
	ReadOnly bool
	// Size bounds a tmpfs (0: no bound of its own).
	Size int64
	// Mode, UID and GID are a cache directory's (0755, 0:0), a secret
	// file's (0400) or an agent socket's (0600).
	Mode     uint32
	UID, GID uint32
	Required bool
	// Env is the variable a secret is given in, besides or instead of a
	// file.
	Env string
}

// runFlags checks a RUN's flags other than --mount: --network's mode
// (host is the builder's to allow or refuse, it knows the spec),
// --security=insecure refused.
func runFlags(c *instructions.RunCommand) (network string, err error) {
	for _, f := range c.FlagsUsed {
		if f != "mount" && f != "network" && f != "security" {
			return "", fmt.Errorf("--%s is not supported: devbox runs each step in a plain build container", f)
		}
	}
	if instructions.GetSecurity(c) == instructions.SecurityInsecure {
		return "", fmt.Errorf("--security=insecure is refused: devbox is secure by default and gives no build step more privileges than a build container has")
	}
	switch n := instructions.GetNetwork(c); n {
	case instructions.NetworkNone, instructions.NetworkHost:
		return n, nil
	}
	return "", nil
}

// mounts are the RUN's --mount flags, checked and with their defaults.
func (e *evaluation) mounts(c *instructions.RunCommand) ([]Mount, error) {
	var out []Mount
	nssh := 0
	for _, im := range instructions.GetMounts(c) {
		m, err := e.mount(im)
		if err != nil {
			return nil, fmt.Errorf("--mount=type=%s: %w", im.Type, err)
		}
		if m.Type == MountSSH && m.Target == "" {
			// BuildKit's client/llb/exec.go numbers them so.
			m.Target = "/run/buildkit/ssh_agent." + strconv.Itoa(nssh)
		}
		if m.Type == MountSSH {
			nssh++
		}
		for _, o := range out {
			if m.Target != "" && o.Target == m.Target {
				return nil, fmt.Errorf("--mount target %s is mounted twice", m.Target)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// mount is one --mount.
func (e *evaluation) mount(im *instructions.Mount) (Mount, error) {
	m := Mount{Type: string(im.Type), ReadOnly: im.ReadOnly, Size: im.SizeLimit, Required: im.Required,
		Sharing: string(im.CacheSharing), ID: im.CacheID, From: im.From}
	if im.Target != "" {
		m.Target = e.abs(im.Target)
	}
	if im.Env != nil {
		m.Env = *im.Env
	}
	switch m.Type {
	case MountBind, MountCache, MountTmpfs:
		if m.Target == "" {
			m.Target = e.abs(".")
		}
		if m.Target == "/" {
			return m, fmt.Errorf("invalid mount target %q", m.Target)
		}
		if m.Env != "" {
			return m, fmt.Errorf("env= is a secret's")
		}
	}
	switch m.Type {
	case MountCache:
		return e.cacheMount(m, im)
	case MountBind:
		m.Source = path.Clean("/" + im.Source)
		return m, e.mountFrom(&m)
	case MountTmpfs:
		if im.From != "" || im.Source != "" {
			return m, fmt.Errorf("a tmpfs has no from= or source=")
		}
	case MountSecret:
		return secretMount(m, im)
	case MountSSH:
		if im.Source != "" || im.From != "" {
			return m, fmt.Errorf("an ssh mount has no source= or from=")
		}
		if m.ID == "" {
			m.ID = "default"
		}
		m.Mode, m.UID, m.GID = fileInfo(im, 0o600)
	}
	return m, nil
}

// cacheMount fills in a cache's defaults: its id is its target, it is
// shared, its directory 0755 root's.
func (e *evaluation) cacheMount(m Mount, im *instructions.Mount) (Mount, error) {
	if m.ID == "" {
		m.ID = path.Clean(im.Target) // as written, as BuildKit keys it
	}
	if m.Sharing == "" {
		m.Sharing = string(instructions.MountSharingShared)
	}
	m.Mode, m.UID, m.GID = fileInfo(im, 0o755)
	m.Source = path.Clean("/" + im.Source)
	if m.From == "" && m.Source != "/" {
		return m, fmt.Errorf("source= needs from=: a cache starts empty")
	}
	return m, e.mountFrom(&m)
}

// secretMount is a secret's id (id=, else source=, else the target's
// base name) and its file: /run/secrets/ID unless target= or env= says.
func secretMount(m Mount, im *instructions.Mount) (Mount, error) {
	if im.Source != "" {
		m.ID = im.Source
	}
	if m.ID == "" {
		if im.Target == "" {
			return m, fmt.Errorf("one of id=, source= or target= is required")
		}
		m.ID = path.Base(im.Target)
	}
	if m.Target == "" && im.Env == nil {
		m.Target = "/run/secrets/" + path.Base(m.ID)
	}
	m.Mode, m.UID, m.GID = fileInfo(im, 0o400)
	return m, nil
}

// fileInfo is mode=, uid= and gid=, defaults mode and 0:0.
func fileInfo(im *instructions.Mount, mode uint32) (uint32, uint32, uint32) {
	var uid, gid uint32
	if im.Mode != nil {
		mode = uint32(*im.Mode)
	}
	if im.UID != nil {
		uid = uint32(*im.UID)
	}
	if im.GID != nil {
		gid = uint32(*im.GID)
	}
	return mode, uid, gid
}

// mountFrom resolves from= to an earlier stage; "" is the build context
// (a bind) or nothing (a cache).
func (e *evaluation) mountFrom(m *Mount) error {
	if m.From == "" {
		return nil
	}
	m.FromStage = stageByRef(e.s.all, e.s.byName, m.From, e.s.Number)
	if m.FromStage != nil {
		return nil
	}
	_, numeric := strconv.Atoi(m.From)
	if e.s.byName[strings.ToLower(m.From)] != nil || numeric == nil {
		return fmt.Errorf("from=%s names this stage or a later one (invalid stage index)", m.From)
	}
	return fmt.Errorf("from=%s: mounting an image is not supported; name a stage FROM it (FROM %s AS src) and mount from=src", m.From, m.From)
}

// runMountFroms are the stages a RUN's mounts name with from=, for the
// stages a target needs. The mounts are read with their words as written
// (from= cannot hold a variable); a mount that does not parse so is
// reported when the stage is evaluated.
func runMountFroms(c *instructions.RunCommand) []string {
	if err := c.Expand(func(w string) (string, error) { return w, nil }); err != nil {
		return nil
	}
	var out []string
	for _, m := range instructions.GetMounts(c) {
		if m.From != "" && (m.Type == instructions.MountTypeBind || m.Type == instructions.MountTypeCache) {
			out = append(out, m.From)
		}
	}
	return out
}
