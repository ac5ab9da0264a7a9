package devenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/devbox/devbox/rootfs"
	"github.com/devbox/devbox/runtime"
)

// newID returns a random container id.
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Environ is the environment of processes in a container of spec s over
// image img: the image's Env, then the spec's [env], then extra.
func Environ(s *Spec, img *rootfs.Image, extra ...string) []string {
	env := map[string]string{}
	var order []string
	set := func(kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	set("PATH=" + runtime.DefaultPath)
	for _, kv := range img.Config.Env {
		set(kv)
	}
	for _, k := range sortedKeys(s.Env) {
		set(k + "=" + s.Env[k])
	}
	for _, kv := range extra {
		set(kv)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// Workdir is where processes start: the spec's workdir, else the image's,
// else /.
func Workdir(s *Spec, img *rootfs.Image) string {
	switch {
	case s.Workdir != "":
		return s.Workdir
	case img.Config.WorkingDir != "":
		return path.Clean("/" + img.Config.WorkingDir)
	}
	return "/"
}

// containerDirs makes the writable layer and mount point of a container
// under dir, and the files the container gets as /etc/hostname, /etc/hosts
// and /etc/resolv.conf.
func containerDirs(dir string, s *Spec) (runtime.Config, error) {
	c := runtime.Config{
		Hostname: s.Hostname,
		Upper:    filepath.Join(dir, "upper"),
		Work:     filepath.Join(dir, "work"),
		Rootfs:   filepath.Join(dir, "rootfs"),
		Network:  runtime.NetworkMode(s.Network.Mode),
	}
	for _, d := range []string{c.Upper, c.Work, c.Rootfs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return c, err
		}
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + s.Hostname + "\n"
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil || c.Network == runtime.NetworkNone {
		resolv = nil
	}
	files := []struct {
		name, target string
		data         []byte
	}{
		{"hostname", "/etc/hostname", []byte(s.Hostname + "\n")},
		{"hosts", "/etc/hosts", []byte(hosts)},
		{"resolv.conf", "/etc/resolv.conf", resolv},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return c, err
		}
		c.Files = append(c.Files, runtime.Mount{Source: p, Target: f.target, Readonly: true})
	}
	for _, m := range s.Mounts {
		c.Mounts = append(c.Mounts, runtime.Mount{Source: m.Source, Target: m.Target, Readonly: m.Readonly})
	}
	return c, nil
}

func portMaps(s *Spec) []runtime.PortMap {
	var out []runtime.PortMap
	for _, p := range s.PortMaps {
		out = append(out, runtime.PortMap{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort})
	}
	return out
}

func limits(s *Spec) runtime.Limits {
	return runtime.Limits{CPUs: s.Resources.CPUs, MemoryBytes: s.Resources.MemoryBytes, Pids: s.Resources.Pids}
}

// imageUser maps an image's User to a uid and gid; only numeric forms are
// understood (a name would need the image's /etc/passwd).
func imageUser(u string) (int, int, error) {
	if u == "" || u == "root" || u == "0" {
		return 0, 0, nil
	}
	us, gs, _ := strings.Cut(u, ":")
	uid, err := strconv.Atoi(us)
	if err != nil {
		return 0, 0, fmt.Errorf("image user %q: only numeric users are supported", u)
	}
	gid := uid
	if gs != "" {
		if gid, err = strconv.Atoi(gs); err != nil {
			return 0, 0, fmt.Errorf("image user %q: only numeric groups are supported", u)
		}
	}
	return uid, gid, nil
}
