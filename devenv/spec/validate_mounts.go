package spec

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/devbox/devbox/devenv/volume"
	container "github.com/devbox/devbox/runtime"
)

// reservedTargets are the container paths a mount may not cover.
var reservedTargets = []string{"/", "/proc", "/sys", "/dev"}

// reservedTarget says whether clean path target is, or is under, a
// reserved target.
func reservedTarget(target string) bool {
	for _, r := range reservedTargets {
		if target == r || (r != "/" && strings.HasPrefix(target, r+"/")) {
			return true
		}
	}
	return false
}

func (p *parser) validateMounts(s *Spec) error {
	seen := map[string]bool{}
	for i := range s.Mounts {
		m := &s.Mounts[i]
		key := fmt.Sprintf("mounts.%d", i)
		if hasControl(m.Source) || hasControl(m.Target) {
			return p.errorf(key, "control characters are not allowed in a path (%q, %q)", m.Source, m.Target)
		}
		if err := p.mountSource(m, key, s.Dir); err != nil {
			return err
		}
		if m.Target == "" {
			return p.errorf(key+".target", "is required")
		}
		if !path.IsAbs(m.Target) {
			return p.errorf(key+".target", "%q must be an absolute path", m.Target)
		}
		m.Target = path.Clean(m.Target)
		if reservedTarget(m.Target) {
			return p.errorf(key+".target", "%q is reserved by the container", m.Target)
		}
		if seen[m.Target] {
			return p.errorf(key+".target", "%q is mounted twice", m.Target)
		}
		seen[m.Target] = true
	}
	return nil
}

// mountSource checks m's source for its type: a host path that exists
// (made absolute), a volume's name, or nothing for a tmpfs.
func (p *parser) mountSource(m *container.Mount, key, dir string) error {
	switch m.Type {
	case "", "bind":
		m.Type = ""
		if m.Source == "" {
			return p.errorf(key+".source", "is required")
		}
		src, err := expandPath(m.Source, dir)
		if err != nil {
			return p.errorf(key+".source", "%v", err)
		}
		if _, err := os.Stat(src); err != nil {
			return p.errorf(key+".source", "%s does not exist", src)
		}
		m.Source = src
	case "volume":
		if err := volume.CheckName(m.Source); err != nil {
			return p.errorf(key+".source", "%v", err)
		}
	case "tmpfs":
		if m.Source != "" {
			return p.errorf(key+".source", "a tmpfs has no source (got %q)", m.Source)
		}
	default:
		return p.errorf(key+".type", "%q: want \"bind\", \"volume\" or \"tmpfs\"", m.Type)
	}
	return nil
}
