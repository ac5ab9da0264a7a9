package e2e

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox/devbox/devenv/lock"
	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
)

// reproSpec installs packages from Debian's archive (jq brings libraries,
// so ldconfig and dpkg's triggers run), makes a user, whose shadow entry
// useradd dates by SOURCE_DATE_EPOCH, and sets root's password (devbox's
// own user step: its date and salt).
const reproSpec = `base = %q
[packages]
install = ["jq", "hello"]
[[run]]
command = "useradd -m bob && echo made > /opt/made"
[ssh]
password = "repro-pw"
[network]
mode = "none"
`

// gitCommitted makes dir a git repository with everything in it
// committed at date, as a team's checkout is.
func gitCommitted(t *testing.T, dir, date string) {
	t.Helper()
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "spec"}} {
		// The test's root commits in a directory it made for a user.
		cmd := exec.Command("git", append([]string{"-c", "safe.directory=*", "-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE="+date, "GIT_AUTHOR_DATE="+date)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

// TestReproducibleBuild: the same spec, committed in two checkouts and
// built in two empty stores seconds apart, gives the same layer for every
// step (the same diffIDs in both locks); `build --check` passes on it and
// fails on a step that writes the time, naming the file.
func TestReproducibleBuild(t *testing.T) {
	testenv.NeedRoot(t)
	testbase.Debian(t)
	const date = "2024-05-01T12:00:00Z"
	epoch := fmt.Sprint(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Unix())
	var locks [2]*lock.File
	var dirs [2]string
	for i := range locks {
		dir, root := t.TempDir(), t.TempDir()
		linkBase(t, root)
		os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(fmt.Sprintf(reproSpec, testbase.DebianRef)), 0o644)
		gitCommitted(t, dir, date)
		r := devbox(t, dir, "--root", root, "build")
		if r.code != 0 {
			t.Fatalf("build %d: %s", i+1, tail(r.stderr))
		}
		if !strings.Contains(r.stderr, "reproducible: SOURCE_DATE_EPOCH="+epoch) {
			t.Errorf("build %d does not say its epoch (%s):\n%s", i+1, epoch, tail(r.stderr))
		}
		f, err := lock.Read(filepath.Join(dir, "devbox.lock"))
		if err != nil || f == nil {
			t.Fatalf("lock %d: %v", i+1, err)
		}
		if fmt.Sprint(f.SourceDateEpoch) != epoch {
			t.Errorf("lock %d records epoch %d, want %s", i+1, f.SourceDateEpoch, epoch)
		}
		locks[i], dirs[i] = f, dir
		time.Sleep(2 * time.Second)
	}
	if len(locks[0].Steps) != len(locks[1].Steps) || len(locks[0].Steps) < 4 {
		t.Fatalf("steps: %d and %d", len(locks[0].Steps), len(locks[1].Steps))
	}
	for i, a := range locks[0].Steps {
		if b := locks[1].Steps[i]; a.Key != b.Key || a.DiffID != b.DiffID {
			t.Errorf("step %d %s: key %s / %s, diffID %s / %s", i+1, a.Summary, a.Key[:12], b.Key[:12], a.DiffID, b.DiffID)
		}
	}

	// --check builds every step twice; the spec's steps are the same.
	root := baseRoot(t)
	if r := devbox(t, dirs[0], "--root", root, "build", "--check"); r.code != 0 {
		t.Errorf("build --check of a reproducible spec: %s", tail(r.stderr))
	}

	// A step that writes the time is not, and --check names its file.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(fmt.Sprintf(`base = %q
[[run]]
command = "echo same > /same"
[[run]]
command = "mkdir -p /var/stamp && date +%%s%%N > /var/stamp/now"
[network]
mode = "none"
`, testbase.DebianRef)), 0o644)
	gitCommitted(t, dir, date)
	r := devbox(t, dir, "--root", root, "build", "--check")
	if r.code == 0 || !strings.Contains(r.stderr, "not reproducible") || !strings.Contains(r.stderr, "/var/stamp/now: content") ||
		!strings.Contains(r.stderr, "run mkdir -p /var/stamp") || strings.Contains(r.stderr, "/same:") {
		t.Errorf("build --check of a step that writes the time: %d %s", r.code, tail(r.stderr))
	}
}

// aptMirror is a flat apt repository of small packages made here, served
// on an address build containers reach; its set changes between builds.
type aptMirror struct {
	dir, url string
	debs     map[string]string // name_version → .deb path
}

func newAptMirror(t *testing.T) *aptMirror {
	t.Helper()
	m := &aptMirror{dir: t.TempDir(), debs: map[string]string{}}
	ln, err := net.Listen("tcp", hostAddress(t)+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(m.dir))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m.url = "http://" + ln.Addr().String() + "/"
	return m
}

// deb makes package name at version, depending on depends ("" none).
func (m *aptMirror) deb(t *testing.T, name, version, depends string) {
	t.Helper()
	tree := filepath.Join(t.TempDir(), name)
	os.MkdirAll(filepath.Join(tree, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(tree, "usr/share", name), 0o755)
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: devbox tests <t@example.com>\nDescription: a test package\n", name, version)
	if depends != "" {
		control += "Depends: " + depends + "\n"
	}
	os.WriteFile(filepath.Join(tree, "DEBIAN/control"), []byte(control), 0o644)
	os.WriteFile(filepath.Join(tree, "usr/share", name, "version"), []byte(version+"\n"), 0o644)
	out := filepath.Join(t.TempDir(), name+"_"+version+"_all.deb")
	if b, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree, out).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, b)
	}
	m.debs[name+"_"+version] = out
}

// publish makes the repository hold exactly the packages named
// (name_version), with its Packages index and Release file.
func (m *aptMirror) publish(t *testing.T, names ...string) {
	t.Helper()
	old, _ := filepath.Glob(filepath.Join(m.dir, "*"))
	for _, f := range old {
		os.Remove(f)
	}
	var index strings.Builder
	for _, nv := range names {
		data, err := os.ReadFile(m.debs[nv])
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Base(m.debs[nv])
		os.WriteFile(filepath.Join(m.dir, file), data, 0o644)
		info, err := exec.Command("dpkg-deb", "--field", m.debs[nv]).Output()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&index, "%sFilename: ./%s\nSize: %d\nSHA256: %x\n\n", info, file, len(data), sha256.Sum256(data))
	}
	os.WriteFile(filepath.Join(m.dir, "Packages"), []byte(index.String()), 0o644)
	release := fmt.Sprintf("Origin: devbox-test\nLabel: devbox-test\nSuite: test\nCodename: test\nDate: Sat, 01 Jan 2000 00:00:00 UTC\nArchitectures: all amd64\nSHA256:\n %x %d Packages\n",
		sha256.Sum256([]byte(index.String())), index.Len())
	os.WriteFile(filepath.Join(m.dir, "Release"), []byte(release), 0o644)
}

// TestLockedPackagesClosure: a locked build installs every package at
// the version devbox.lock records, a dependency too, when the archive
// has a newer one; when the recorded version is gone, the build fails
// naming the package rather than take another; `devbox lock --update`
// moves to the newest.
func TestLockedPackagesClosure(t *testing.T) {
	testenv.NeedRoot(t)
	m := newAptMirror(t)
	m.deb(t, "dbx-app", "1.0", "dbx-dep")
	m.deb(t, "dbx-dep", "1.0", "")
	m.deb(t, "dbx-dep", "2.0", "")
	m.publish(t, "dbx-app_1.0", "dbx-dep_1.0")

	dir, root := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(fmt.Sprintf("FROM %s\nRUN rm -f /etc/apt/sources.list.d/* && echo 'deb [trusted=yes] %s ./' > /etc/apt/sources.list\n",
		debianRegistry(t), m.url)), 0o644)
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte("base = \"dockerfile:Dockerfile\"\n[packages]\nmanager = \"apt\"\ninstall = [\"dbx-app\"]\n[network]\nmode = \"none\"\n"), 0o644)
	gitCommitted(t, dir, "2024-05-01T12:00:00Z") // an epoch: --locked also holds the layers' diffIDs
	lockPath := filepath.Join(dir, "devbox.lock")
	build := func(args ...string) result { return devbox(t, dir, append([]string{"--root", root}, args...)...) }
	pinned := func() string {
		f, err := lock.Read(lockPath)
		if err != nil || f == nil {
			t.Fatalf("lock: %v", err)
		}
		v, _ := f.Installed("dbx-dep")
		return v
	}
	if r := build("build"); r.code != 0 {
		t.Fatalf("build: %s", tail(r.stderr))
	}
	if v := pinned(); v != "1.0" {
		t.Fatalf("the first build's lock has dbx-dep %q, want 1.0", v)
	}
	first, _ := os.ReadFile(lockPath)

	// The archive now has dbx-dep 2.0: a build from scratch with the lock
	// still installs 1.0 (the lock's packages are what dpkg reports).
	m.publish(t, "dbx-app_1.0", "dbx-dep_1.0", "dbx-dep_2.0")
	if r := build("build", "--no-cache", "--locked"); r.code != 0 {
		t.Errorf("locked build with a newer dependency in the archive: %s", tail(r.stderr))
	}
	if v := pinned(); v != "1.0" {
		t.Errorf("the locked build installed dbx-dep %s, the lock records 1.0", v)
	}

	// 1.0 is gone: the build fails naming it and writes nothing.
	m.publish(t, "dbx-app_1.0", "dbx-dep_2.0")
	r := build("build", "--no-cache")
	if r.code == 0 || !strings.Contains(r.stderr, "dbx-dep: devbox.lock pins 1.0, installed 2.0") {
		t.Errorf("build whose recorded dependency is gone: %d %s", r.code, tail(r.stderr))
	}
	if again, _ := os.ReadFile(lockPath); string(again) != string(first) {
		t.Error("the failed build changed devbox.lock")
	}

	// --update is the one way to move.
	if r := build("lock", "--update"); r.code != 0 || !strings.Contains(r.stderr, "+ package dbx-dep=2.0") {
		t.Errorf("lock --update: %d %s", r.code, tail(r.stderr))
	}
	if v := pinned(); v != "2.0" {
		t.Errorf("after --update the lock has dbx-dep %s, want 2.0", v)
	}
}

// TestRootlessReproducible: as an ordinary user, whose layers hold its
// subordinate ids, a committed spec's steps are reproducible too, and
// --check names what is not.
func TestRootlessReproducible(t *testing.T) {
	testenv.NeedRoot(t) // to make the user
	u := newRootlessUser(t, testenv.RootlessUser(t, "devbox-e2e", true))
	dir := u.dir(t, "repro")
	spec := fmt.Sprintf("base = %q\n[[run]]\ncommand = \"useradd -m bob && mkdir -p /opt/x && echo made > /opt/x/made && chown -R bob /opt/x\"\n[network]\nmode = \"none\"\n", debianRegistry(t))
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	gitCommitted(t, dir, "2024-05-01T12:00:00Z")
	if out, err := exec.Command("chown", "-R", u.Uid+":"+u.Gid, dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	if r := u.devbox(t, dir, "build", "--check"); r.code != 0 || !strings.Contains(r.stderr, "reproducible: SOURCE_DATE_EPOCH=1714564800") {
		t.Fatalf("build --check as %s: %d %s", u.Username, r.code, tail(r.stderr))
	}
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec+"[[run]]\ncommand = \"date +%s%N > /opt/x/now\"\n"), 0o644)
	if r := u.devbox(t, dir, "build", "--check"); r.code == 0 || !strings.Contains(r.stderr, "/opt/x/now: content") {
		t.Errorf("build --check of a step that writes the time, as %s: %d %s", u.Username, r.code, tail(r.stderr))
	}
}
