package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOverlayOptions(t *testing.T) {
	got, err := overlayOptions([]int{7, 8, 9}, 10, 11)
	if err != nil || got != "lowerdir=7:8:9,upperdir=10,workdir=11" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := overlayOptions(nil, 3, 4); err == nil {
		t.Error("no lower layers: no error")
	}
	// 500 layers (overlay's maximum) fit; an absurd stack is refused with
	// an explanation.
	many := make([]int, 500)
	for i := range many {
		many[i] = 1000 + i
	}
	if s, err := overlayOptions(many, 1500, 1501); err != nil || len(s) >= pageSize {
		t.Errorf("500 layers: %d bytes, %v", len(s), err)
	}
	huge := make([]int, 1000)
	for i := range huge {
		huge[i] = 10000 + i
	}
	if _, err := overlayOptions(huge, 1, 2); err == nil || !strings.Contains(err.Error(), "lowerdir+") {
		t.Errorf("1000 five-digit layers: %v", err)
	}
}

// TestOverlayDeepStack mounts 150 layers with long paths, more than one
// page of absolute lowerdir= options, through both the kernel's best
// path and the classic mount(2) fallback that kernels < 6.8 take.
func TestOverlayDeepStack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount overlays")
	}
	dir := t.TempDir()
	long := strings.Repeat("l", 60)
	var lower []string
	for i := 0; i < 150; i++ {
		l := filepath.Join(dir, fmt.Sprintf("%s-%03d", long, i))
		must(t, os.MkdirAll(l, 0o755))
		must(t, os.WriteFile(filepath.Join(l, fmt.Sprintf("f%03d", i)), []byte("x"), 0o644))
		lower = append(lower, l)
	}
	for name, mount := range map[string]func(*Config) error{"best": mountOverlay, "classic": mountOverlayClassic} {
		t.Run(name, func(t *testing.T) {
			c := &Config{Lower: lower, Upper: filepath.Join(dir, name, "upper"),
				Work: filepath.Join(dir, name, "work"), Rootfs: filepath.Join(dir, name, "root")}
			for _, d := range []string{c.Upper, c.Work, c.Rootfs} {
				must(t, os.MkdirAll(d, 0o755))
			}
			inMountNS(t, func() error {
				if err := mount(c); err != nil {
					return err
				}
				ents, err := os.ReadDir(c.Rootfs)
				if err != nil || len(ents) != 150 {
					return fmt.Errorf("merged root has %d entries (%v), want 150", len(ents), err)
				}
				return nil
			})
		})
	}
}

// inMountNS runs f on a thread of its own in a private mount namespace
// (with its own working directory), so that nothing it mounts outlives it.
func inMountNS(t *testing.T, f func() error) {
	t.Helper()
	errc := make(chan error)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread dies with its namespace
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
