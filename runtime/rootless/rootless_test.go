package rootless

import (
	"os"
	"os/user"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/devbox/devbox/runtime/userns"
)

func TestMappingFor(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(data), 0o644)
		return p
	}
	u := &user.User{Username: "ann", Uid: "1000", Gid: "1001"}
	for _, c := range []struct {
		name, subuid, subgid string
		wantU, wantG         []syscall.SysProcIDMap
		single               bool
	}{
		{"by name", "bob:100000:65536\nann:165536:65536\n", "ann:200000:65536\n",
			[]syscall.SysProcIDMap{id(0, 1000, 1), id(1, 165536, 65535)}, []syscall.SysProcIDMap{id(0, 1001, 1), id(1, 200000, 65535)}, false},
		{"by uid, a short range", "1000:300000:1000\n", "1000:300000:1000\n",
			[]syscall.SysProcIDMap{id(0, 1000, 1), id(1, 300000, 1000)}, []syscall.SysProcIDMap{id(0, 1001, 1), id(1, 300000, 1000)}, false},
		{"no range", "bob:100000:65536\n", "ann:200000:65536\n",
			[]syscall.SysProcIDMap{id(0, 1000, 1)}, []syscall.SysProcIDMap{id(0, 1001, 1)}, true},
		{"junk lines", "ann\nann:x:y\n# ann:1:2\nann:400000:0\n", "",
			[]syscall.SysProcIDMap{id(0, 1000, 1)}, []syscall.SysProcIDMap{id(0, 1001, 1)}, true},
	} {
		m, err := MappingFor(u, write("subuid", c.subuid), write("subgid", c.subgid))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !equal(m.UIDs, c.wantU) || !equal(m.GIDs, c.wantG) || m.Host.Single != c.single || m.Host.UID != 1000 || m.Host.GID != 1001 {
			t.Errorf("%s: got %+v", c.name, m)
		}
	}
	if m, err := MappingFor(u, filepath.Join(dir, "none"), filepath.Join(dir, "none")); err != nil || !m.Host.Single {
		t.Errorf("without the files: %+v %v", m, err)
	}
}

func id(c, h, n int) syscall.SysProcIDMap {
	return syscall.SysProcIDMap{ContainerID: c, HostID: h, Size: n}
}

func equal(a, b []syscall.SysProcIDMap) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseHost(t *testing.T) {
	for v, want := range map[string]Host{"1000:1001": {1000, 1001, false}, "5:6:single": {5, 6, true}} {
		if h, ok := parseHost(v); !ok || h != want || h.String() != v {
			t.Errorf("%q: %+v %v", v, h, ok)
		}
	}
	for _, v := range []string{"", "x:1", "1"} {
		if _, ok := parseHost(v); ok {
			t.Errorf("%q taken as rootless", v)
		}
	}
}

// TestActiveNotForTheHostsRoot: the variable alone (sudo -E) does not make
// the host's root rootless.
func TestActiveNotForTheHostsRoot(t *testing.T) {
	if !userns.Initial() {
		t.Skip("runs in a user namespace")
	}
	t.Setenv(envHost, "1000:1000")
	if _, ok := Active(); ok {
		t.Error("the host's root taken as rootless")
	}
}
