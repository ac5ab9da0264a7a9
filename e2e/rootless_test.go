package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/internal/testenv"
)

// rootlessUser is an ordinary user running its own copy of devbox.
type rootlessUser struct {
	*user.User
	uid, gid int
	bin      string // devbox, where the user can run it
	state    string // its default state root, $HOME/.local/share/devbox
	run      string // its XDG_RUNTIME_DIR, as a login session has
	// cgroup, if set, is where the user's devbox starts: a cgroup v2
	// directory delegated to it, as a systemd user session's scope. Once
	// devbox has moved the scope's processes to devbox-leaf, as it does
	// to enable controllers there, the session's shell lives there.
	cgroup string
}

// newRootlessUser is the test user with a fresh state (a build from
// nothing, as on a new machine); envs are removed first, in case an
// earlier run left them running.
func newRootlessUser(t *testing.T, u *user.User, envs ...string) *rootlessUser {
	r := &rootlessUser{User: u, state: filepath.Join(u.HomeDir, ".local", "share", "devbox")}
	r.uid, _ = strconv.Atoi(u.Uid)
	r.gid, _ = strconv.Atoi(u.Gid)
	data, err := os.ReadFile(devboxBin)
	if err != nil {
		t.Fatal(err)
	}
	r.bin = filepath.Join(u.HomeDir, "devbox")
	os.Remove(r.bin)
	if err := os.WriteFile(r.bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	r.run = filepath.Join(os.TempDir(), "devbox-e2e-run-"+u.Uid)
	os.Mkdir(r.run, 0o700)
	r.chown(t, r.run)
	for _, e := range envs {
		r.devbox(t, u.HomeDir, "rm", e)
	}
	os.RemoveAll(r.state)
	t.Cleanup(func() { os.RemoveAll(r.state) })
	return r
}

// dir makes a directory in the user's home, the user's.
func (r *rootlessUser) dir(t *testing.T, name string) string {
	d := filepath.Join(r.HomeDir, name)
	os.RemoveAll(d)
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	r.chown(t, d)
	return d
}

// up brings up environment name, from the Debian base with extra TOML and
// an SSH key, as the user in a directory of its own; it is removed at the
// end of the test. It returns the environment, up's result and the spec.
func (r *rootlessUser) up(t *testing.T, name, extra string) (*sshEnv, result, string) {
	t.Helper()
	dir := r.dir(t, name)
	_, pub := writeKeyPair(t, t.TempDir())
	port := freePort(t)
	spec := fmt.Sprintf("name = %q\nbase = %q\n%s\n[ssh]\nport = %d\nauthorized_keys = [%q]\n", name, debianRegistry(t), extra, port, mustRead(t, pub))
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	res := r.devbox(t, dir, "up")
	if res.code != 0 {
		t.Fatalf("up: %d %s", res.code, tail(res.stderr))
	}
	t.Cleanup(func() { r.devbox(t, dir, "rm", name) })
	return &sshEnv{name: name, dir: dir, port: port, key: strings.TrimSuffix(pub, ".pub"), user: "root"}, res, spec
}

func (r *rootlessUser) chown(t *testing.T, p string) {
	if err := os.Chown(p, r.uid, r.gid); err != nil {
		t.Fatal(err)
	}
}

// devbox runs the user's devbox in dir, as the user, with a login's
// environment and nothing of root's.
func (r *rootlessUser) devbox(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(r.bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + r.HomeDir, "USER=" + r.Username, "LOGNAME=" + r.Username, "PATH=/usr/local/bin:/usr/bin:/bin", "XDG_RUNTIME_DIR=" + r.run}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(r.uid), Gid: uint32(r.gid)}}
	if r.cgroup != "" {
		dir := r.cgroup
		if _, err := os.Stat(filepath.Join(dir, "devbox-leaf")); err == nil {
			dir = filepath.Join(dir, "devbox-leaf")
		}
		f, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(f.Fd())
	}
	return runCmd(t, "", cmd)
}

// processes lists the host's processes that act for the user: those of
// its uid or subordinate ids, and any whose command is its devbox or
// pasta, whoever they run as.
func (r *rootlessUser) processes(t *testing.T) []string {
	start, count, _ := testenv.SubIDs(r.Username)
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, st := range procs {
		data, err := os.ReadFile(st)
		if err != nil || strings.Contains(string(data), "State:\tZ") {
			continue // gone, or a zombie its reaper has not collected
		}
		var uid int
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
				uid, _ = strconv.Atoi(f[1])
			}
		}
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(st), "cmdline"))
		cmd := strings.ReplaceAll(string(cmdline), "\x00", " ")
		ours := uid == r.uid || uid >= start && uid < start+count ||
			strings.HasPrefix(cmd, r.bin) || strings.HasPrefix(cmd, "pasta ")
		if ours {
			found = append(found, fmt.Sprintf("pid %s uid %d: %s", filepath.Base(filepath.Dir(st)), uid, cmd))
		}
	}
	return found
}

// TestRootlessClassic is the classic environment built and served by an
// ordinary user: packages from Debian's archive through pasta, Node from
// the team's npm registry, the base from a loopback registry, the project
// mounted with the user's ownership both ways, SSH, scp and sftp; nothing
// runs as root for it, and down leaves nothing running.
func TestRootlessClassic(t *testing.T) {
	testenv.NeedRoot(t) // to make the user
	u := newRootlessUser(t, testenv.RootlessUser(t, "devbox-e2e", true), "classic")
	base, team := debianRegistry(t), teamRegistry(t)
	dir := u.dir(t, "classic")
	_, pub := writeKeyPair(t, t.TempDir())
	key := strings.TrimSuffix(pub, ".pub")
	sshPort, webPort := freePort(t), freePort(t)
	spec := fmt.Sprintf(classicSpec, base, webPort, "12.9.1", team, sshPort, mustRead(t, pub), "")
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	os.WriteFile(filepath.Join(dir, "server.js"), []byte(`require('http').createServer((q, s) => s.end('hello from node ' + process.version)).listen(80, '127.0.0.1')`), 0o644)
	u.chown(t, filepath.Join(dir, "devbox.toml"))
	u.chown(t, filepath.Join(dir, "server.js"))

	r := u.devbox(t, dir, "build")
	if r.code != 0 {
		t.Fatalf("build as %s: %d\n%s", u.Username, r.code, tail(r.stderr))
	}
	for _, want := range []string{"gcc-c++ -> g++ (apt)", "node 12.9.1 with npm"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("build output lacks %q", want)
		}
	}
	if r := u.devbox(t, dir, "up"); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, r.stderr)
	}
	defer u.devbox(t, dir, "rm", "classic")
	for _, p := range u.processes(t) {
		if strings.Contains(p, " uid 0:") {
			t.Errorf("runs as root for %s: %s", u.Username, p)
		}
	}
	e := &sshEnv{name: "classic", dir: dir, port: sshPort, key: key, user: "root"}
	r = e.ssh(t, e.target(), "node --version; npm config get registry; pwd; command -v g++; echo made > /var/www/made-in-env; nohup node server.js > /tmp/node.log 2>&1 &")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) < 4 || lines[0] != "v12.9.1" || lines[1] != team || lines[2] != "/var/www" || lines[3] != "/usr/bin/g++" {
		t.Errorf("in the environment: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// The project keeps the user's ownership both ways.
	if fi, err := os.Stat(filepath.Join(dir, "made-in-env")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(u.uid) {
		t.Errorf("a file made in the project mount: %v, want the owner %d", statOwner(fi), u.uid)
	}
	if r := e.ssh(t, e.target(), "stat -c %u:%g /var/www/devbox.toml"); strings.TrimSpace(r.stdout) != "0:0" {
		t.Errorf("the user's project file seen inside as %q, want root's", r.stdout)
	}
	checkTransfers(t, e)
	var body string
	for i := 0; i < 50 && !strings.Contains(body, "v12.9.1"); i++ {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", webPort)); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(body, "hello from node v12.9.1") {
		t.Errorf("published port 80 on %d: %q", webPort, body)
	}

	// exec's socket is in the user's runtime directory.
	if socks, _ := filepath.Glob(filepath.Join(u.run, "devbox", "*", "classic.sock")); len(socks) != 1 {
		t.Errorf("no socket in XDG_RUNTIME_DIR: %v", socks)
	}
	// The other commands, as the user.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "classic", "--", "cat", "/var/www/made-in-env"}, "made"},
		{[]string{"ps"}, "running"},
		{[]string{"ssh-config", "classic"}, fmt.Sprintf("Port %d", sshPort)},
		{[]string{"logs", "classic"}, "devbox up"},
		{[]string{"image", "ls"}, base},
		{[]string{"push", "classic", testenv.Registry(t) + "/team/rootless:1"}, "sha256:"},
	} {
		if r := u.devbox(t, dir, c.args...); r.code != 0 || !strings.Contains(r.stdout, c.want) {
			t.Errorf("devbox %s: %d %q %s", strings.Join(c.args, " "), r.code, r.stdout, tail(r.stderr))
		}
	}

	if r := u.devbox(t, dir, "down"); r.code != 0 {
		t.Fatalf("down: %s", r.stderr)
	}
	waitFor(5*time.Second, func() bool { return len(u.processes(t)) == 0 })
	if left := u.processes(t); len(left) != 0 {
		t.Errorf("after down, still running:\n%s", strings.Join(left, "\n"))
	}
	// Everything devbox wrote is the user's (or its subordinate ids').
	filepath.Walk(u.state, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Errorf("%s is root's", p)
			return filepath.SkipAll
		}
		return nil
	})
	if r := u.devbox(t, dir, "ps"); r.code != 0 || !strings.Contains(r.stdout, "stopped") {
		t.Errorf("ps after down: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := u.devbox(t, dir, "run", "--", "sh", "-c", "id -u; ls /var/www/server.js"); r.code != 0 || r.stdout != "0\n/var/www/server.js\n" {
		t.Errorf("run: %d %q %s", r.code, r.stdout, tail(r.stderr))
	}
	if r := u.devbox(t, dir, "rm", "classic"); r.code != 0 {
		t.Errorf("rm: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(u.state, "envs", "classic")); !os.IsNotExist(err) {
		t.Errorf("rm left the environment: %v", err)
	}
}

// checkTransfers sends a file up and back with scp and sftp.
func checkTransfers(t *testing.T, e *sshEnv) {
	t.Helper()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "blob")
	data := make([]byte, 4<<20)
	rand.Read(data)
	os.WriteFile(src, data, 0o644)
	port := strconv.Itoa(e.port)
	if r := runCmd(t, "", exec.Command("scp", append(e.sshOpts(), "-P", port, src, e.target()+":/tmp/blob")...)); r.code != 0 {
		t.Fatalf("scp: %d %s", r.code, r.stderr)
	}
	batch := fmt.Sprintf("get /tmp/blob %s/back\n", tmp)
	if r := runCmd(t, batch, exec.Command("sftp", append(e.sshOpts(), "-P", port, "-b", "-", e.target())...)); r.code != 0 {
		t.Fatalf("sftp: %d %s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(tmp, "back")); !bytes.Equal(got, data) {
		t.Errorf("scp up and sftp down: %d bytes back of %d", len(got), len(data))
	}
}

func mustRead(t *testing.T, p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func statOwner(fi os.FileInfo) string {
	if fi == nil {
		return "missing"
	}
	return fmt.Sprintf("owner %d", fi.Sys().(*syscall.Stat_t).Uid)
}

// waitFor polls ok for up to d and says whether it came true.
func waitFor(d time.Duration, ok func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return ok()
}

// TestRootlessLimits: on cgroup v2 an ordinary user's environment gets its
// limits in a cgroup delegated to the user (made here as systemd makes a
// user session's); on v1, which is never delegated, it runs without and
// up says so.
func TestRootlessLimits(t *testing.T) {
	testenv.NeedRoot(t)
	u := newRootlessUser(t, testenv.RootlessUser(t, "devbox-e2e", true), "limits")
	if hostCgroup2() {
		u.cgroup = delegateCgroup(t, u)
	}
	e, r, _ := u.up(t, "limits", "[resources]\nmemory = \"256MiB\"\npids = 200\n[network]\nmode = \"none\"")
	in := e.ssh(t, e.target(), "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>/dev/null; echo end")
	if hostCgroup2() {
		if in.stdout != "268435456\n200\nend\n" || strings.Contains(r.stderr, "not applied") {
			t.Errorf("limits inside: %q; up said: %s", in.stdout, r.stderr)
		}
	} else if in.code != 0 || !strings.Contains(r.stderr, "resource limits are not applied: cgroup v1") {
		t.Errorf("cgroup v1: up should say the limits are not applied: %s (inside: %d)", r.stderr, in.code)
	}
	if r := u.devbox(t, e.dir, "rm", "limits"); r.code != 0 {
		t.Errorf("rm: %s", r.stderr)
	}
	if u.cgroup != "" {
		left, _ := filepath.Glob(filepath.Join(u.cgroup, "devbox-*", "cgroup.procs"))
		for _, l := range left {
			if procs, _ := os.ReadFile(l); len(procs) != 0 && !strings.Contains(l, "devbox-leaf") {
				t.Errorf("after rm, %s holds %q", l, procs)
			}
		}
	}
}

// delegateCgroup makes a cgroup v2 subtree the user may manage, with the
// memory and pids controllers, as systemd's Delegate=yes does (the
// directory and its cgroup.procs, cgroup.subtree_control and
// cgroup.threads are the user's, and it is marked delegated), and
// returns a session scope in it.
func delegateCgroup(t *testing.T, u *rootlessUser) string {
	t.Helper()
	root := "/sys/fs/cgroup"
	d := filepath.Join(root, "devbox-e2e-user.slice")
	scope := filepath.Join(d, "session.scope")
	for _, dir := range []string{d, scope} {
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	// The controllers down to the delegated slice, as systemd enables them.
	for _, dir := range []string{root, d} {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids"), 0o644); err != nil {
			t.Fatalf("%s: enable memory and pids: %v", dir, err)
		}
	}
	for _, dir := range []string{d, scope} {
		for _, p := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
			u.chown(t, filepath.Join(dir, p))
		}
	}
	// systemd's marks: trusted.delegate for the host's root, and
	// user.delegate for users, who cannot read trusted xattrs.
	for _, x := range []string{"trusted.delegate", "user.delegate"} {
		if err := unix.Setxattr(d, x, []byte("1"), 0); err != nil {
			t.Fatalf("mark %s delegated: %v", d, err)
		}
	}
	t.Cleanup(func() {
		subs, _ := filepath.Glob(filepath.Join(scope, "*", "cgroup.procs"))
		for _, s := range subs {
			os.Remove(filepath.Dir(s))
		}
		os.Remove(scope)
		os.Remove(d)
	})
	return scope
}

// TestRootlessOneID: a user with no subordinate ids still runs devbox,
// with one id. Layer entries of other owners are stored as root's, with
// their setuid and setgid bits dropped; SSH sessions start (setgroups is
// denied in such a namespace); what needs another user fails and says how
// to add a range.
func TestRootlessOneID(t *testing.T) {
	testenv.NeedRoot(t)
	u := newRootlessUser(t, testenv.RootlessUser(t, "devbox-e2e1", false), "oneid")
	e, r, spec := u.up(t, "oneid", "[network]\nmode = \"none\"")
	if !strings.Contains(r.stderr, "owned by other users are stored as root's") || !strings.Contains(r.stderr, "usermod --add-subuids") {
		t.Errorf("up does not say that owners were lost: %s", tail(r.stderr))
	}
	// chage is setgid shadow in Debian: stored as root's, it must not be
	// setgid root.
	in := e.ssh(t, e.target(), "id -u; stat -c %a:%u:%g /usr/bin/chage")
	if in.code != 0 || in.stdout != "0\n755:0:0\n" {
		t.Errorf("ssh: %d %q %s", in.code, in.stdout, in.stderr)
	}
	u.devbox(t, e.dir, "down")
	os.WriteFile(filepath.Join(e.dir, "devbox.toml"), []byte(spec+"[[run]]\ncommand = \"touch /x && chown 33 /x\"\n"), 0o644)
	if r := u.devbox(t, e.dir, "build"); r.code == 0 || !strings.Contains(r.stderr, "The environment has one user, root") {
		t.Errorf("a chown to another user: %d %s", r.code, tail(r.stderr))
	}
}

// TestRootlessNetwork: an ordinary user's environment reaches the host at
// its address through pasta, but not the host's loopback (where other
// environments' ports listen); pasta ends with the container, even when
// its init is killed.
func TestRootlessNetwork(t *testing.T) {
	testenv.NeedRoot(t)
	u := newRootlessUser(t, testenv.RootlessUser(t, "devbox-e2e", true), "net")
	hostIP, err := testenv.HostAddress()
	if err != nil {
		t.Fatal(err)
	}
	loopback, public := greeter(t, "127.0.0.1:0", ""), greeter(t, hostIP+":0", "")
	e, _, _ := u.up(t, "net", "")
	probe := func(addr string) string {
		host, port, _ := strings.Cut(addr, ":")
		r := u.devbox(t, e.dir, "exec", "net", "--", "bash", "-c", fmt.Sprintf("timeout 3 bash -c 'exec 3<>/dev/tcp/%s/%s' 2>/dev/null && echo open || echo closed", host, port))
		return strings.TrimSpace(r.stdout)
	}
	_, lport, _ := strings.Cut(loopback, ":")
	for addr, want := range map[string]string{
		public:              "open",   // the host, at its address
		"10.0.2.2:" + lport: "closed", // the gateway is not the host's loopback
		loopback:            "closed", // the container's own loopback
	} {
		if got := probe(addr); got != want {
			t.Errorf("connect to %s from the environment: %s, want %s", addr, got, want)
		}
	}
	// kill -9 of the init: pasta goes with its PID namespace.
	var pid int
	for _, p := range u.processes(t) {
		if strings.Contains(p, "devbox-init") {
			fmt.Sscanf(p, "pid %d", &pid)
		}
	}
	if pid == 0 {
		t.Fatalf("no init among %v", u.processes(t))
	}
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(5*time.Second, func() bool { return len(u.processes(t)) == 0 })
	if left := u.processes(t); len(left) != 0 {
		t.Errorf("after kill -9 of the init:\n%s", strings.Join(left, "\n"))
	}
}

// greeter accepts connections on addr for the test's life, writes
// greeting to each and closes it; it returns its address.
func greeter(t *testing.T, addr, greeting string) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(greeting))
			c.Close()
		}
	}()
	return l.Addr().String()
}

// TestRootlessVolume: an ordinary user's named volume is filled from the
// image with its owners (mail's group here), is written by the
// container's root, outlives the environment and is removed by the user.
func TestRootlessVolume(t *testing.T) {
	testenv.NeedRoot(t)
	u := newRootlessUser(t, testenv.RootlessUser(t, "devbox-e2e", true), "rvol")
	e, _, _ := u.up(t, "rvol", "[network]\nmode = \"none\"\n[[mounts]]\ntype = \"volume\"\nsource = \"mail\"\ntarget = \"/var/mail\"")
	in := e.ssh(t, e.target(), "stat -c '%a %U:%G' /var/mail && mkdir /var/mail/d && echo x > /var/mail/d/f && chgrp mail /var/mail/d/f && echo ok")
	if in.code != 0 || in.stdout != "2775 root:mail\nok\n" {
		t.Errorf("ssh: %d %q %s", in.code, in.stdout, in.stderr)
	}
	if r := u.devbox(t, e.dir, "rm", "rvol"); r.code != 0 {
		t.Fatalf("rm: %s", r.stderr)
	}
	if r := u.devbox(t, e.dir, "volume", "ls"); !strings.Contains(r.stdout, "mail") {
		t.Errorf("volume ls after rm: %s %s", r.stdout, r.stderr)
	}
	if r := u.devbox(t, e.dir, "volume", "rm", "mail"); r.code != 0 {
		t.Errorf("volume rm: %s", r.stderr)
	}
	if r := u.devbox(t, e.dir, "volume", "ls"); strings.Contains(r.stdout, "mail") {
		t.Errorf("volume ls after volume rm: %s", r.stdout)
	}
}

// TestRootlessServices: an ordinary user's environment and its service
// share one network namespace, as a pod's containers do (no bridge can
// be made): the environment reaches the service by its name, on
// 127.0.0.1, and down leaves none of the user's processes.
func TestRootlessServices(t *testing.T) {
	testenv.NeedRoot(t)
	u := newRootlessUser(t, testenv.RootlessUser(t, "devbox-e2e", true), "pod")
	server := `$s = IO::Socket::INET->new(LocalPort => 7000, Listen => 5, ReuseAddr => 1) or die "listen: $!"; while ($c = $s->accept) { print $c "hello pod\n"; close $c }`
	extra := fmt.Sprintf("[services.web]\nimage = %q\ncommand = [\"perl\", \"-MIO::Socket::INET\", \"-e\", %q]\nhealthcheck = { test = [\"CMD\", \"bash\", \"-c\", \"exec 3<>/dev/tcp/127.0.0.1/7000\"], interval = \"1s\" }\n[depends_on]\nweb = \"service_healthy\"\n",
		debianRegistry(t), server)
	e, r, _ := u.up(t, "pod", extra)
	if !strings.Contains(r.stderr, "service web … healthy") {
		t.Errorf("up does not wait for web:\n%s", r.stderr)
	}
	got := u.devbox(t, e.dir, "exec", "pod", "--", "bash", "-c", "exec 3<>/dev/tcp/web/7000; cat <&3; getent hosts web")
	if !strings.Contains(got.stdout, "hello pod") || !strings.Contains(got.stdout, "127.0.0.1") {
		t.Errorf("the environment does not reach web by its name on the pod's loopback: %q %s", got.stdout, got.stderr)
	}
	if r := u.devbox(t, e.dir, "ps"); !regexp.MustCompile(`pod/web\s+running \(healthy\)`).MatchString(r.stdout) {
		t.Errorf("ps:\n%s", r.stdout)
	}
	if r := u.devbox(t, e.dir, "down"); r.code != 0 {
		t.Fatalf("down: %s", r.stderr)
	}
	waitFor(5*time.Second, func() bool { return len(u.processes(t)) == 0 })
	if left := u.processes(t); len(left) != 0 {
		t.Errorf("after down:\n%s", strings.Join(left, "\n"))
	}
}
