package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testenv"
)

// hostSecrets is a host directory (0755, the host root's) holding what no
// container may reach through any bind: a 0600 file of root's and a
// root-only Unix socket, the shape of /run with a daemon's socket. The
// returned channel receives once for every connection the socket takes.
func hostSecrets(t *testing.T) (dir string, reached chan struct{}) {
	t.Helper()
	dir = t.TempDir()
	os.Chmod(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("host-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "root.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	os.Chmod(filepath.Join(dir, "root.sock"), 0o600)
	reached = make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reached <- struct{}{}
			c.Close()
		}
	}()
	return dir, reached
}

// otherRangeID is a host id of devbox's container ranges that is not in
// this container's range (uidMap is the container's uid_map line): the
// owner of another environment's files.
func otherRangeID(t *testing.T, uidMap string) uint32 {
	t.Helper()
	data, err := os.ReadFile("/etc/subuid")
	if err != nil {
		t.Fatal(err)
	}
	var start, count, ours uint32
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "devbox:"); ok {
			fmt.Sscanf(strings.ReplaceAll(rest, ":", " "), "%d %d", &start, &count)
		}
	}
	var inside uint32
	fmt.Sscan(uidMap, &inside, &ours)
	if count < 2*65536 {
		t.Fatalf("devbox's range in /etc/subuid: %d ids from %d", count, start)
	}
	id := start + count - 65536 + 7 // an id of the last slot
	if id >= ours && id < ours+65536 {
		id = start + 7 // ours was the last one
	}
	return id
}

// TestBindRule: one rule for every bind of a container with a user
// namespace, read-only or not. Inside the project tree (here owned by the
// host's root, as when root runs devbox in /root/proj) the tree's owner is
// the login, who writes the project; every other bind maps no host id:
// root's 0600 file is unreadable and its root-only socket unreachable,
// another environment's files lend no rights, nothing links out of a
// bind, every bind is nosuid, no set-id file the container made is left
// in the project, and the state root cannot be mounted.
func TestBindRule(t *testing.T) {
	testenv.NeedRoot(t)
	secrets, reached := hostSecrets(t)
	project := t.TempDir() // the host root's
	os.WriteFile(filepath.Join(project, "readme"), []byte("mine\n"), 0o600)
	other := t.TempDir()
	mounts := fmt.Sprintf(`[[mounts]]
source = "."
target = "/project"

[[mounts]]
source = %[1]q
target = "/ro"
readonly = true

[[mounts]]
source = %[1]q
target = "/rw"

[[mounts]]
source = %[2]q
target = "/other"
`, secrets, other)
	rs := newRunSpaceIn(t, project, mounts)
	first := rs.sh(t, "cat /proc/self/uid_map")
	if first.code != 0 {
		t.Fatalf("run: %d %s", first.code, first.stderr)
	}
	// Another environment's data: owned by an id of another range.
	id := otherRangeID(t, first.stdout)
	os.WriteFile(filepath.Join(other, "data"), []byte("theirs\n"), 0o600)
	os.Chown(filepath.Join(other, "data"), int(id), int(id))
	os.Chown(other, int(id), int(id))
	os.Chmod(other, 0o700)

	// A set-id file the owner made before is the owner's business.
	os.WriteFile(filepath.Join(project, "own-suid"), nil, 0o755)
	os.Chmod(filepath.Join(project, "own-suid"), 0o755|os.ModeSetuid)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(project, "own-suid"), old, old)
	time.Sleep(1100 * time.Millisecond) // its ctime a tick behind the run
	r := rs.sh(t, `cp /bin/true /project/suid && chmod 6755 /project/suid && stat -c %a /project/suid
cat /project/readme && echo hi > /project/by-login && echo PROJECT-WRITE
for d in ro rw; do cat /$d/secret 2>/dev/null && echo $d-READ; /helper dial-unix /$d/root.sock; done
touch /rw/new 2>/dev/null && echo RW-CREATE
cat /other/data 2>/dev/null && echo OTHER-READ; touch /other/new 2>/dev/null && echo OTHER-WRITE
ln /project/readme /rw/link 2>/dev/null && echo LINKED-OUT
for m in /project /ro /rw /other; do awk -v m=$m '$5 == m { print m, $6 }' /proc/self/mountinfo; done`)
	out := r.stdout
	t.Logf("inside: %s", out)
	for _, want := range []string{"mine", "PROJECT-WRITE"} {
		if !strings.Contains(out, want) {
			t.Errorf("the login cannot use its root-owned project (%s missing): %q %s", want, out, r.stderr)
		}
	}
	for _, bad := range []string{"host-secret", "ro-READ", "rw-READ", "connected", "RW-CREATE", "theirs", "OTHER-READ", "OTHER-WRITE", "LINKED-OUT"} {
		if strings.Contains(out, bad) {
			t.Errorf("a bind lent host rights: %q in %q", bad, out)
		}
	}
	select {
	case <-reached:
		t.Error("the root-only socket took a connection from the container")
	case <-time.After(200 * time.Millisecond):
	}
	for _, m := range []string{"/project", "/ro", "/rw", "/other"} {
		if !strings.Contains(out, m+" ") || !strings.Contains(strings.SplitN(out[strings.Index(out, m+" "):], "\n", 2)[0], "nosuid") {
			t.Errorf("bind %s is not nosuid: %q", m, out)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(project, "by-login"), &st); err != nil || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("the login's file in root's project is %d:%d on the host (%v), want root's", st.Uid, st.Gid, err)
	}
	// The container made a set-id file of root's inside; none is left.
	if !strings.Contains(out, "6755") {
		t.Errorf("chmod 6755 in the project did not take inside: %q", out)
	}
	if fi, err := os.Stat(filepath.Join(project, "suid")); err != nil || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		t.Errorf("the container left a set-id file of root's in the project: %v %v", fi.Mode(), err)
	}
	if fi, _ := os.Stat(filepath.Join(project, "own-suid")); fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("the owner's own set-id file lost its bit: %v", fi.Mode())
	}

	// devbox's state root, or a part of it, is never a bind's source.
	refused := newRunSpaceIn(t, t.TempDir(), fmt.Sprintf("[[mounts]]\nsource = %q\ntarget = \"/layers\"\n", filepath.Join(rs.root, "layers")))
	if r := refused.sh(t, "true"); r.code == 0 || !strings.Contains(r.stderr, "state root") {
		t.Errorf("a mount of the state root: exit %d, %s", r.code, r.stderr)
	}
	// A project owned by another environment's ids lends them to no one.
	theirs := t.TempDir()
	if err := os.Chown(theirs, int(id), int(id)); err != nil {
		t.Fatal(err)
	}
	stolen := newRunSpaceIn(t, theirs, "[[mounts]]\nsource = \".\"\ntarget = \"/p\"\n")
	if r := stolen.sh(t, "true"); r.code == 0 || !strings.Contains(r.stderr, "gives to containers") {
		t.Errorf("a project owned by a container range: exit %d, %s", r.code, r.stderr)
	}
}

// TestBindRuleDevcontainer: the rule holds for a devcontainer.json's
// workspace and its mounts, ${localEnv:...} included: the root-owned
// workspace is the login's, the host's secrets are out of reach.
func TestBindRuleDevcontainer(t *testing.T) {
	testenv.NeedRoot(t)
	secrets, reached := hostSecrets(t)
	root := baseRoot(t)
	ws := filepath.Join(t.TempDir(), "bindws")
	os.MkdirAll(filepath.Join(ws, ".devcontainer"), 0o755)
	t.Setenv("BINDRULE_SECRETS", secrets)
	os.WriteFile(filepath.Join(ws, ".devcontainer", "devcontainer.json"), []byte(fmt.Sprintf(`{
	"image": %q,
	"mounts": [
		"source=${localEnv:BINDRULE_SECRETS},target=/ro,type=bind,readonly",
		{ "source": "${localEnv:BINDRULE_SECRETS}", "target": "/rw", "type": "bind" },
		"source=%s,target=/helper,type=bind,readonly"
	],
	"customizations": { "devbox": { "ssh": { "port": %d }, "network": { "mode": "none" } } }
}`, debianRegistry(t), helperBin, freePort(t))), 0o644)
	if r := devbox(t, ws, "--root", root, "up"); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	t.Cleanup(func() { devbox(t, ws, "--root", root, "rm", "bindws") })
	r := devbox(t, ws, "--root", root, "exec", "bindws", "--", "sh", "-c",
		`echo x > /workspaces/bindws/by-login && echo WS-WRITE; cat /ro/secret /rw/secret 2>/dev/null; touch /rw/new 2>/dev/null && echo RW-CREATE
for d in ro rw; do /helper dial-unix /$d/root.sock; done`)
	if !strings.Contains(r.stdout, "WS-WRITE") {
		t.Errorf("the login cannot write its root-owned workspace: %q %s", r.stdout, r.stderr)
	}
	for _, bad := range []string{"host-secret", "RW-CREATE", "connected"} {
		if strings.Contains(r.stdout, bad) {
			t.Errorf("a devcontainer mount lent host rights: %q in %q", bad, r.stdout)
		}
	}
	select {
	case <-reached:
		t.Error("the root-only socket took a connection from the container")
	case <-time.After(200 * time.Millisecond):
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(ws, "by-login"), &st); err != nil || st.Uid != 0 {
		t.Errorf("the login's file in the workspace is uid %d on the host (%v), want root's", st.Uid, err)
	}
}

// TestRangesHostWide: two state roots never hand out the same host ids,
// even to containers that run at the same time.
func TestRangesHostWide(t *testing.T) {
	a, b := newRunSpace(t, ""), newRunSpace(t, "")
	a.root, b.root = t.TempDir(), t.TempDir()
	linkBase(t, a.root)
	linkBase(t, b.root)
	started := make(chan result, 1)
	go func() {
		started <- a.sh(t, "cat /proc/self/uid_map; sleep 8")
	}()
	time.Sleep(2 * time.Second)
	rb := b.sh(t, "cat /proc/self/uid_map")
	ra := <-started
	fa, fb := strings.Fields(ra.stdout), strings.Fields(rb.stdout)
	if len(fa) != 3 || len(fb) != 3 {
		t.Fatalf("uid maps: %q %s / %q %s", ra.stdout, ra.stderr, rb.stdout, rb.stderr)
	}
	if fa[1] == fb[1] {
		t.Errorf("two state roots' containers share host ids from %s", fa[1])
	}
}

// TestBindRuleUp: root's `devbox up` in a root-owned project, over SSH:
// the login writes the project and its files are root's on the host,
// while a read-only bind of root's secrets reads nothing; a setuid file
// the login made there is not left set-id after down.
func TestBindRuleUp(t *testing.T) {
	testenv.NeedRoot(t)
	secrets, _ := hostSecrets(t)
	project := t.TempDir() // the host root's, as /root/proj is
	e := upEnvIn(t, project, "bindup", fmt.Sprintf("[[mounts]]\nsource = \".\"\ntarget = \"/proj\"\n\n[[mounts]]\nsource = %q\ntarget = \"/ro\"\nreadonly = true\n", secrets), "")
	got := e.inEnv(t, "echo x > /proj/by-login && stat -c %U /proj/by-login; cat /ro/secret 2>&1 || true; cp /bin/true /proj/suid; chmod 4755 /proj/suid")
	if !strings.HasPrefix(got, "root\n") || strings.Contains(got, "host-secret") {
		t.Errorf("inside: %q, want the project written as root and the secret unread", got)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(project, "by-login"), &st); err != nil || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("the login's file is %d:%d on the host (%v), want root's", st.Uid, st.Gid, err)
	}
	if r := devbox(t, e.dir, "--root", e.root, "down"); r.code != 0 {
		t.Fatalf("down: %s", r.stderr)
	}
	if fi, err := os.Stat(filepath.Join(project, "suid")); err != nil || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("after down, the login's setuid file of root's is left on the host: %v %v", fi.Mode(), err)
	}
}

// TestBindRuleRootProjectReachable: a project of the host's root that
// other host users can reach is not lent to the login (a set-id file it
// made there would be root's for all of them), and devbox says so.
func TestBindRuleRootProjectReachable(t *testing.T) {
	testenv.NeedRoot(t)
	project, err := os.MkdirTemp("/var/tmp", "devbox-e2e-open-") // /var/tmp lets anyone in
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(project) })
	os.Chmod(project, 0o755)
	rs := newRunSpaceIn(t, project, "[[mounts]]\nsource = \".\"\ntarget = \"/project\"\n")
	r := rs.sh(t, "touch /project/by-login 2>/dev/null && echo WROTE; stat -c %U /project/devbox.toml")
	if strings.Contains(r.stdout, "WROTE") || !strings.Contains(r.stdout, "nobody") {
		t.Errorf("a root project others reach was lent to the login: %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "other host users can reach it") {
		t.Errorf("devbox did not say why: %s", r.stderr)
	}
}
