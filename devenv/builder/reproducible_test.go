package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if err := makeReproducible(dir, epoch.Unix()); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"var/log/apt/history.log", "var/log/dpkg.log", "var/cache/ldconfig/aux-cache"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("%s kept", gone)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, "var/log/apt/term.log")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("the whiteout was dropped: %v", err)
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
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
	if err := checkInstalled([]string{"a=1", "b=2", "c=3"}, locked); err != nil {
		t.Errorf("same set: %v", err)
	}
	err := checkInstalled([]string{"a=1", "b=2.1", "d=4"}, locked)
	for _, want := range []string{"b: devbox.lock pins 2, installed 2.1", "c: devbox.lock pins 3, not installed", "d: installed 4, which devbox.lock does not record", "devbox lock --update"} {
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
