package builder

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox/devbox/devenv/lock"
	"github.com/devbox/devbox/devenv/spec"
	"golang.org/x/sys/unix"
)

// TestMakeReproducible: build noise goes, whiteouts and directories stay,
// and every time later than the epoch is the epoch; earlier ones are
// kept.
func TestMakeReproducible(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("var/log/apt/history.log", "Start-Date: now")
	write("var/log/dpkg.log", "now")
	write("var/cache/ldconfig/aux-cache", "stat")
	write("usr/bin/tool", "tool")
	write("old", "from a package")
	epoch := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	older := epoch.Add(-time.Hour)
	os.Chtimes(filepath.Join(dir, "old"), older, older)
	os.Symlink("tool", filepath.Join(dir, "usr/bin/link"))
	// A whiteout: the step removed a log the layer below has.
	if err := unix.Mknod(filepath.Join(dir, "var/log/apt/term.log"), unix.S_IFCHR, 0); err != nil {
		t.Skipf("mknod: %v (needs root)", err)
	}
	// A link the step made, to a directory outside the layer: what it
	// points to is the host's, and nothing there is touched.
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(outside, "_logs"), 0o755)
	os.WriteFile(filepath.Join(outside, "_logs", "host-file"), []byte("keep"), 0o644)
	os.MkdirAll(filepath.Join(dir, "root"), 0o755)
	os.Symlink(outside, filepath.Join(dir, "root/.npm"))
	if err := makeReproducible(dir, nil, epoch.Unix(), time.Now().Add(time.Hour), true); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"var/log/apt/history.log", "var/log/dpkg.log", "var/cache/ldconfig/aux-cache"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("%s kept", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "_logs", "host-file")); err != nil {
		t.Errorf("a file behind a link out of the layer was removed: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "var/log/apt/term.log")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("the whiteout was dropped: %v", err)
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		// Walk, as makeReproducible, does not follow links.
		if err != nil {
			return err
		}
		want := epoch
		if strings.HasSuffix(p, "/old") {
			want = older
		}
		if !fi.ModTime().Equal(want) {
			t.Errorf("%s: mtime %s, want %s", p, fi.ModTime().UTC(), want)
		}
		return nil
	})
}

// TestCheckInstalled: a locked step's set must be the lock's, each
// difference named.
func TestCheckInstalled(t *testing.T) {
	locked := []string{"a=1", "b=2", "c=3"}
	if err := checkInstalled([]string{"a=1", "b=2", "c=3"}, []string{"a=1"}, locked); err != nil {
		t.Errorf("same set: %v", err)
	}
	// The base's own packages, which the step left alone, are not held
	// to the lock (base=9 is another machine's debootstrap).
	if err := checkInstalled([]string{"a=1", "b=2", "base=9"}, []string{"base=9"}, locked); err != nil {
		t.Errorf("a base package the lock does not record: %v", err)
	}
	err := checkInstalled([]string{"a=1", "b=2.1", "d=4"}, []string{"a=1"}, locked)
	for _, want := range []string{"b: devbox.lock pins 2, installed 2.1", "d: installed 4, which devbox.lock does not record", "devbox lock --update"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestAptPins: a locked apt install pins every package of the lock, and
// reads the pins from a file the step removes.
func TestAptPins(t *testing.T) {
	s := packageScript("apt", []string{"jq=1.6"}, []string{"jq=1.6", "libjq1=1.6-2"}, false)
	for _, want := range []string{"Package: libjq1\nPin: version 1.6-2\nPin-Priority: 1001\n", "-o Dir::Etc::Preferences=" + aptPinsFile + " --allow-downgrades jq=1.6", "rm -rf /var/lib/apt/lists/* " + aptPinsFile} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if s := packageScript("apt", []string{"jq"}, nil, false); strings.Contains(s, "Preferences") || strings.Contains(s, "downgrades") {
		t.Errorf("an unlocked install pins: %s", s)
	}
}

// TestLastCommitRunsNothing: the epoch comes from the commit that last
// touched the spec, and git, asked for it, runs nothing a repository's
// config names: not the signature program of a signed commit (outer
// repository), and no repository a cloned tree holds is used (a bare
// one in the spec's directory, which git would otherwise discover).
func TestLastCommitRunsNothing(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	script := filepath.Join(t.TempDir(), "gpg")
	os.WriteFile(script, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755)
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2024-05-01T12:00:00Z", "GIT_AUTHOR_DATE=2024-05-01T12:00:00Z",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte("base = \"x\"\n"), 0o644)
	git("add", "devbox.toml")
	git("commit", "-q", "-m", "spec")
	// The same commit, signed: a verifier would run gpg.program.
	body := git("cat-file", "commit", "HEAD")
	head, msg, _ := strings.Cut(body, "\n\n")
	signed := head + "\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n\n" + msg + "\n"
	os.WriteFile(filepath.Join(t.TempDir(), "c"), []byte(signed), 0o644)
	cmd := exec.Command("git", "-C", dir, "hash-object", "-t", "commit", "-w", "--stdin")
	cmd.Stdin = strings.NewReader(signed)
	id, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	git("update-ref", "HEAD", strings.TrimSpace(string(id)))
	git("config", "log.showSignature", "true")
	git("config", "gpg.program", script)
	// Later commits that do not touch the spec do not move its epoch.
	os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o644)
	git("add", "other")
	cmd = exec.Command("git", "-C", dir, "-c", "log.showSignature=false", "commit", "-q", "-m", "other")
	cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2025-01-01T00:00:00Z", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("commit: %v %s", err, out)
	}
	if got := lastCommit(filepath.Join(dir, "devbox.toml")); got != 1714564800 {
		t.Errorf("epoch %d, want 1714564800 (the spec's commit)", got)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("git ran the repository's gpg.program")
	}
	// The set-up is what it means to be: a plain git log runs it.
	exec.Command("git", "-C", dir, "log", "-1", "--format=%ct", "--", "devbox.toml").Run()
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("a plain git log did not run gpg.program either; the test shows nothing: %v", err)
	}

	// A bare repository in a tree with no .git above it: not used.
	bare := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", "--bare", bare).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	os.WriteFile(filepath.Join(bare, "devbox.toml"), []byte("base = \"x\"\n"), 0o644)
	if got := lastCommit(filepath.Join(bare, "devbox.toml")); got != 0 {
		t.Errorf("a bare repository's epoch %d was used", got)
	}
}

// TestNoiseKeepsWhatHidesBelow: a noise path the step replaced by a link
// over a directory of the layer below stays, or the old cache would
// show through again.
func TestNoiseKeepsWhatHidesBelow(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(lower, "root/.cache/pip/http"), 0o755)
	os.WriteFile(filepath.Join(lower, "root/.cache/pip/http/old"), []byte("cached"), 0o644)
	os.MkdirAll(filepath.Join(upper, "root/.cache"), 0o755)
	os.Symlink("/dev/null", filepath.Join(upper, "root/.cache/pip"))
	os.MkdirAll(filepath.Join(upper, "var/log"), 0o755)
	os.WriteFile(filepath.Join(upper, "var/log/dpkg.log"), []byte("new"), 0o644)
	if err := makeReproducible(upper, []string{lower}, 1714564800, time.Now(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(upper, "root/.cache/pip")); err != nil {
		t.Errorf("the link over the cache below was dropped: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(upper, "var/log/dpkg.log")); err == nil {
		t.Error("dpkg.log kept")
	}
}

// TestEpochSources: a Dockerfile's SOURCE_DATE_EPOCH build argument sets
// the epoch, as BuildKit's; a lock's is next; a lock without one turns
// the epoch off (an older lock keeps its keys).
func TestEpochSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, spec.FileName)
	parse := func(toml string) *spec.Spec {
		s, err := spec.Parse(file, []byte(toml))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	df := parse("base = \"dockerfile:Dockerfile\"\n[dockerfile.args]\nSOURCE_DATE_EPOCH = \"1700000000\"\n")
	if e, from, err := sourceDateEpoch(df); err != nil || e != 1700000000 || !strings.Contains(from, "build argument") {
		t.Errorf("build argument: %d %q %v", e, from, err)
	}
	df.Dockerfile.Args["SOURCE_DATE_EPOCH"] = "yesterday"
	if _, _, err := sourceDateEpoch(df); err == nil || !strings.Contains(err.Error(), "want seconds") {
		t.Errorf("a build argument that is not a time: %v", err)
	}
	plain := parse("base = \"debian:bookworm\"\n")
	os.WriteFile(lock.Path(file), (&lock.File{Version: lock.Version, SourceDateEpoch: 1600000000}).Bytes(), 0o644)
	if e, from, err := sourceDateEpoch(plain); err != nil || e != 1600000000 || from != lock.FileName {
		t.Errorf("from the lock: %d %q %v", e, from, err)
	}
	os.WriteFile(lock.Path(file), (&lock.File{Version: lock.Version}).Bytes(), 0o644)
	if e, _, err := sourceDateEpoch(plain); err != nil || e != 0 {
		t.Errorf("a lock without an epoch: %d %v", e, err)
	}
}
