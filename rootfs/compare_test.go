package rootfs

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCompareLayers names each differing path and how, sorted.
func TestCompareLayers(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	at := time.Unix(1714564800, 0)
	for _, d := range []string{a, b} {
		os.WriteFile(filepath.Join(d, "same"), []byte("x"), 0o644)
		os.Symlink("same", filepath.Join(d, "link"))
		os.WriteFile(filepath.Join(d, "mode"), []byte("x"), 0o644)
		os.WriteFile(filepath.Join(d, "time"), []byte("x"), 0o644)
	}
	os.WriteFile(filepath.Join(a, "content"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(b, "content"), []byte("2"), 0o644)
	os.Chmod(filepath.Join(b, "mode"), 0o600)
	os.Remove(filepath.Join(b, "link"))
	os.Symlink("other", filepath.Join(b, "link"))
	os.WriteFile(filepath.Join(a, "only-a"), nil, 0o644)
	// The same content, a hard link in one and a file of its own in the
	// other: another tar, so another diffID.
	os.Link(filepath.Join(a, "same"), filepath.Join(a, "zz-hl"))
	os.WriteFile(filepath.Join(b, "zz-hl"), []byte("x"), 0o644)
	ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(at.UnixNano())}
	for _, d := range []string{a, b} {
		filepath.Walk(d, func(p string, _ os.FileInfo, err error) error {
			return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
		})
	}
	os.Chtimes(filepath.Join(b, "time"), at.Add(time.Second), at.Add(time.Second))
	got, err := CompareLayers(context.Background(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/content: content",
		`/link: link "same" vs "other"`,
		"/mode: mode 0644 vs 0600",
		"/only-a: only in the first",
		"/time: mtime 2024-05-01T12:00:00Z vs 2024-05-01T12:00:01Z",
		`/zz-hl: hard link to "/same" vs ""`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("differences:\n%q\nwant\n%q", got, want)
	}
}
