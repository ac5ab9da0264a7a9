package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/devbox/devbox/internal/testenv"
)

// busyboxBase is a minimal image tree with busybox as /bin/sh; hostile
// changes it to make the image hostile.
func busyboxBase(t *testing.T, hostile func(base string)) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox-static is not installed (make test installs it)")
	}
	base := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp"} {
		os.MkdirAll(filepath.Join(base, d), 0o755)
	}
	data, _ := os.ReadFile(bb)
	os.WriteFile(filepath.Join(base, "bin/busybox"), data, 0o755)
	os.Symlink("busybox", filepath.Join(base, "bin/sh"))
	os.WriteFile(filepath.Join(base, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	hostile(base)
	return base
}

// TestHostileKernelDirs: an image whose /proc, /sys or /dev is a symlink
// (or not a directory) is refused with a clear error; mounting procfs
// where the link points would leave /proc/sys writable (runc's
// CVE-2019-19921 class).
func TestHostileKernelDirs(t *testing.T) {
	testenv.NeedRoot(t)
	cases := map[string]func(base string){
		"proc-symlink": func(b string) { os.Symlink("/tmp/fakeproc", filepath.Join(b, "proc")) },
		"sys-symlink":  func(b string) { os.Symlink("tmp", filepath.Join(b, "sys")) },
		"dev-file":     func(b string) { os.WriteFile(filepath.Join(b, "dev"), nil, 0o644) },
	}
	root := t.TempDir()
	for name, hostile := range cases {
		t.Run(name, func(t *testing.T) {
			base := busyboxBase(t, hostile)
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(fmt.Sprintf("base = \"dir:%s\"\n[network]\nmode = \"none\"\n", base)), 0o644)
			r := devbox(t, dir, "--root", root, "run", "--", "/bin/sh", "-c", "echo ran")
			if r.code == 0 || strings.Contains(r.stdout, "ran") {
				t.Fatalf("a hostile image ran: %d %q", r.code, r.stdout)
			}
			if !strings.Contains(r.stderr, "refused") {
				t.Errorf("error does not say why: %s", r.stderr)
			}
		})
	}
}

// TestKernelFilesProtected: /proc/sys and the other read-only paths stay
// read-only for root in the container, masked files show nothing.
func TestKernelFilesProtected(t *testing.T) {
	rs := newRunSpace(t, "")
	before, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	r := rs.sh(t, `echo '|/tmp/evil' > /proc/sys/kernel/core_pattern && echo WROTE; echo 1 > /proc/sys/kernel/sysrq && echo SYSRQ; true`)
	after, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	if strings.Contains(r.stdout, "WROTE") || strings.Contains(r.stdout, "SYSRQ") || string(before) != string(after) {
		t.Errorf("root in the container wrote a host kernel setting: %q (core_pattern %q -> %q)", r.stdout, before, after)
	}
	// Masked files that this kernel has read as empty inside.
	for _, f := range []string{"/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/kcore", "/proc/latency_stats"} {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		if r := rs.sh(t, "wc -c < "+f); strings.TrimSpace(r.stdout) != "0" {
			t.Errorf("%s shows %s bytes inside (masked: 0) %s", f, strings.TrimSpace(r.stdout), r.stderr)
		}
	}
}

// TestSeccompDefault: Docker's default profile holds inside; opting out
// is possible, explicit and printed.
func TestSeccompDefault(t *testing.T) {
	rs := newRunSpace(t, "")
	r := rs.run(t, "/helper", "probe")
	got := map[string]string{}
	for _, l := range strings.Split(r.stdout, "\n") {
		if name, res, ok := strings.Cut(l, " "); ok {
			got[name] = res
		}
	}
	for name, want := range map[string]string{
		"keyctl": "operation not permitted", "unshare-user": "operation not permitted",
		"mount": "operation not permitted", "clone3": "function not implemented", "open-null": "ok",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q (all: %q)", name, got[name], want, r.stdout)
		}
	}

	open := newRunSpace(t, "[security]\nseccomp = \"unconfined\"\n")
	r = open.run(t, "/helper", "probe")
	if !strings.Contains(r.stderr, `seccomp is off`) {
		t.Errorf("the opt-out was not printed: %s", r.stderr)
	}
	if strings.Contains(r.stdout, "keyctl operation not permitted") || strings.Contains(r.stdout, "clone3 function not implemented") {
		t.Errorf("seccomp = \"unconfined\" still filters: %q", r.stdout)
	}
}

// TestDevicePolicy: the container has exactly the standard nodes; making
// or opening any other device fails for its root, in /dev and elsewhere;
// a host device named in [security] devices is there and usable.
func TestDevicePolicy(t *testing.T) {
	rs := newRunSpace(t, "")
	r := rs.run(t, "/helper", "probe")
	for _, want := range []string{"mknod-block-tmp operation not permitted", "mknod-block-dev operation not permitted", "open-null ok"} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("want %q in:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	r = rs.sh(t, "ls /dev | sort | tr '\\n' ' '")
	if got := strings.TrimSpace(r.stdout); got != "core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero" {
		t.Errorf("/dev holds: %s", got)
	}
	t.Run("opt-in-fuse", func(t *testing.T) {
		if _, err := os.Stat("/dev/fuse"); err != nil {
			t.Skip("no /dev/fuse on this host to open to a container")
		}
		fuse := newRunSpace(t, "[security]\ndevices = [\"/dev/fuse\"]\n")
		r := fuse.sh(t, "exec 3<>/dev/fuse && echo fuse-opened")
		if !strings.Contains(r.stdout, "fuse-opened") || !strings.Contains(r.stderr, "/dev/fuse is open to the container") {
			t.Errorf("[security] devices: %q %s", r.stdout, r.stderr)
		}
	})
}

// TestUserNamespace: container root is an unprivileged range of host ids,
// files it makes in a project mount belong to the project's owner on the
// host and the owner's files are root's inside, build layers stay owned
// by canonical ids, and the opt-out is explicit and printed.
func TestUserNamespace(t *testing.T) {
	project := t.TempDir()
	const owner = 4321
	os.Chown(project, owner, owner)
	os.WriteFile(filepath.Join(project, "mine"), []byte("x"), 0o644)
	os.Chown(filepath.Join(project, "mine"), owner, owner)
	rs := newRunSpaceIn(t, project, "[[run]]\ncommand = \"touch /built-in-userns\"\n\n[[mounts]]\nsource = \".\"\ntarget = \"/project\"\n")
	r := rs.sh(t, "cat /proc/self/uid_map; stat -c '%u:%g' /project/mine /built-in-userns; touch /project/new && echo made; "+
		"touch /project/rootfile && chown 1:1 /project/rootfile 2>/dev/null && echo CHOWNED; stat -c %U /project/mine /project/rootfile")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 4 {
		t.Fatalf("got %q %s", r.stdout, r.stderr)
	}
	var inside, host, size uint64
	fmt.Sscan(lines[0], &inside, &host, &size)
	if inside != 0 || host < 1<<16 || size != 65536 {
		t.Errorf("uid_map %q: container root is not an unprivileged range of host ids", lines[0])
	}
	if lines[1] != "0:0" {
		t.Errorf("the project owner's file is %s inside, want root's (0:0)", lines[1])
	}
	if lines[2] != "0:0" {
		t.Errorf("a file from a build step is %s inside, want 0:0", lines[2])
	}
	// Only the project's owner is mapped: container root cannot make a
	// file of the project another host user's (root's, setuid and all).
	if strings.Contains(r.stdout, "CHOWNED") {
		t.Errorf("container root gave a file in the project to another host user: %q", r.stdout)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(project, "new"), &st); err != nil {
		t.Fatalf("made in the project mount: %v (%q %s)", err, r.stdout, r.stderr)
	}
	if st.Uid != owner || st.Gid != owner {
		t.Errorf("a file container root made in the project is %d:%d on the host, want the project owner %d", st.Uid, st.Gid, owner)
	}
	// No file of the store's layers or builds is owned by a range's ids.
	for _, dir := range []string{"layers", "builds"} {
		filepath.WalkDir(filepath.Join(rs.root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			var st syscall.Stat_t
			if syscall.Lstat(p, &st) == nil && (st.Uid >= 1<<16 && st.Uid != 65534 || st.Gid >= 1<<16 && st.Gid != 65534) {
				t.Errorf("%s is owned by %d:%d, an id of a user namespace's range", p, st.Uid, st.Gid)
				return filepath.SkipAll
			}
			return nil
		})
	}

	off := newRunSpace(t, "[security]\nuserns = false\n")
	r = off.sh(t, "cat /proc/self/uid_map")
	if f := strings.Fields(r.stdout); len(f) != 3 || f[1] != "0" {
		t.Errorf("userns = false: uid_map %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "user namespaces are off") {
		t.Errorf("the opt-out was not printed: %s", r.stderr)
	}
}

// TestUserNamespaceToggle: an environment's writable layer follows its
// range when the opt-out is turned on and off: what root wrote stays
// root's and writable inside, and is stored in the range's ids on the
// host only while the namespace is on.
func TestUserNamespaceToggle(t *testing.T) {
	e := upEnvWith(t, "toggle", "[security]\nuserns = false\n", "")
	e.inEnv(t, "echo x > /etc/made-by-root")
	upper := filepath.Join(e.root, "envs", e.name, "upper", "etc", "made-by-root")
	spec := filepath.Join(e.dir, "devbox.toml")
	for _, on := range []bool{true, false} {
		data, _ := os.ReadFile(spec)
		os.WriteFile(spec, []byte(strings.Replace(string(data), fmt.Sprintf("userns = %v", !on), fmt.Sprintf("userns = %v", on), 1)), 0o644)
		if r := devbox(t, e.dir, "--root", e.root, "down"); r.code != 0 {
			t.Fatalf("down: %s", r.stderr)
		}
		if r := devbox(t, e.dir, "--root", e.root, "up"); r.code != 0 {
			t.Fatalf("up with userns = %v: %s", on, r.stderr)
		}
		got := e.inEnv(t, "stat -c %u:%g /etc/made-by-root; echo y >> /etc/made-by-root && echo writable; awk '{print $2}' /proc/self/uid_map")
		lines := strings.Fields(got)
		if len(lines) != 3 || lines[0] != "0:0" || lines[1] != "writable" || (lines[2] == "0") == on {
			t.Errorf("userns = %v: %q", on, got)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(upper, &st); err != nil || (st.Uid == 0) == on {
			t.Errorf("userns = %v: the file is stored as uid %d on the host (%v)", on, st.Uid, err)
		}
	}
}
