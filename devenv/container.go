package devenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"

	"github.com/devbox/devbox/devenv/builder"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/devenv/volume"
	"github.com/devbox/devbox/internal/state"
	container "github.com/devbox/devbox/runtime"
)

// newID returns a random container id.
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// etcFiles are the files a container gets from its directory on the host.
var etcFiles = []struct{ name, target string }{
	{"hostname", "/etc/hostname"}, {"hosts", "/etc/hosts"}, {"resolv.conf", "/etc/resolv.conf"},
}

// containerConfig makes the writable layer and mount point of a container
// under dir, and the files the container gets as /etc/hostname, /etc/hosts
// and /etc/resolv.conf, and returns the config that names them. A mount
// into devbox's state root (root) is refused. The caller calls release
// once its container's record names the volumes it mounts (volumeMounts).
func containerConfig(root state.Root, dir state.Env, s *spec.Spec, lower []string) (c container.Config, release func(), err error) {
	release = func() {}
	if err := outsideState(root, s.Mounts); err != nil {
		return c, release, err
	}
	c = container.Config{
		Lower:    lower,
		Hostname: s.Hostname,
		Upper:    dir.Upper(),
		Work:     dir.Work(),
		Rootfs:   dir.Rootfs(),
		Network:  networkMode(s),

		NoSeccomp: s.Security.Seccomp == "unconfined",
		Devices:   s.Security.Devices,
	}
	for _, d := range []string{c.Upper, c.Work, c.Rootfs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return c, release, err
		}
	}
	content := map[string][]byte{"hostname": []byte(s.Hostname + "\n"), "hosts": hostsFile(s.Hostname, ""), "resolv.conf": container.ResolvConf(c.Network)}
	for _, f := range etcFiles {
		p := dir.File(f.name)
		if err := os.WriteFile(p, content[f.name], 0o644); err != nil {
			return c, release, err
		}
		c.Files = append(c.Files, container.Mount{Source: p, Target: f.target, Readonly: true})
	}
	c.Mounts, release, err = volumeMounts(root, s.Mounts, lower)
	return c, release, err
}

// networkMode is the runtime's mode of the environment s's container: a
// service's network, shared (or its pod's, see podNetwork), or the spec's
// own.
func networkMode(s *spec.Spec) container.NetworkMode {
	if s.NetworkService() != "" || podNetwork(s) {
		return container.NetworkShared
	}
	return container.NetworkMode(s.Network.Mode)
}

// hostsFile is a container's /etc/hosts: loopback, its own name, and
// more (its services', its environment's).
func hostsFile(hostname, more string) []byte {
	return []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n" + more)
}

// volumeMounts are mounts with each volume made a bind of its directory
// (made and filled from the image at its target the first time) and each
// tmpfs a Tmpfs. release gives back the volumes' locks (volume.Prepare).
func volumeMounts(root state.Root, mounts []container.Mount, lower []string) (out []container.Mount, release func(), err error) {
	var locks []func()
	release = func() {
		for _, l := range locks {
			l()
		}
	}
	out = slices.Clone(mounts)
	for i, m := range out {
		switch m.Type {
		case "tmpfs":
			out[i] = container.Mount{Target: m.Target, Readonly: m.Readonly, Tmpfs: true}
		case "volume":
			data, unlock, err := volume.New(root).Prepare(m.Source, func(dir string) error {
				return copyUp(lower, m.Target, dir)
			})
			if err != nil {
				release()
				return nil, func() {}, err
			}
			locks = append(locks, unlock)
			out[i] = container.Mount{Source: data, Target: m.Target, Readonly: m.Readonly, Canonical: true}
		}
	}
	return out, release, nil
}

// copyUp fills dir, in a volume's directory, with what the image has at
// target; its scratch space is in the volume's directory too, where the
// volume's own sweep removes what a killed fill left ("new-*").
func copyUp(lower []string, target, dir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "new-scratch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return builder.CopyUp(lower, tmp, target, dir)
}
