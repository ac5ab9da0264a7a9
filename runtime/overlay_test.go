package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/userns"
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
// path and the one that kernels < 6.8 take.
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
	for name, tryAppend := range map[string]bool{"best": true, "classic": false} {
		t.Run(name, func(t *testing.T) {
			c := &Config{Lower: lower, Upper: filepath.Join(dir, name, "upper"), Work: filepath.Join(dir, name, "work")}
			for _, d := range []string{c.Upper, c.Work} {
				must(t, os.MkdirAll(d, 0o755))
			}
			ov, err := inPrivateMountNS(func() (*os.File, error) {
				var fds []int
				for _, l := range append(append([]string{}, lower...), c.Upper, c.Work) {
					f, err := os.Open(l)
					if err != nil {
						return nil, err
					}
					defer f.Close()
					fds = append(fds, int(f.Fd()))
				}
				return mountOverlay(fds[:150], fds[150], fds[151], c.Work, tryAppend)
			})
			must(t, err)
			defer ov.Close()
			ents, err := os.ReadDir(fdPath(ov))
			if err != nil || len(ents) != 150 {
				t.Fatalf("merged root has %d entries (%v), want 150", len(ents), err)
			}
		})
	}
}

// TestOverlayIdmapped: through a user namespace's mapping the layers'
// root-owned files appear as the range's first id, and what the
// container writes lands in the writable layer in the range's ids while
// the lower layer keeps its own.
func TestOverlayIdmapped(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make idmapped mounts")
	}
	dir := t.TempDir()
	c := &Config{Lower: []string{filepath.Join(dir, "lower")}, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work")}
	for _, d := range []string{c.Lower[0], c.Upper, c.Work} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.WriteFile(filepath.Join(c.Lower[0], "f"), []byte("x"), 0o644))
	m := userns.IDMap{UID: 3000000, GID: 3100000, Size: userns.Size}
	ns, err := userns.New(m.UIDMappings(), m.GIDMappings())
	must(t, err)
	defer ns.Close()
	ov, err := makeOverlay(c, ns)
	if err != nil {
		t.Fatal(err)
	}
	defer ov.Close()
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(fdPath(ov), "f"), &st))
	if st.Uid != m.UID || st.Gid != m.GID {
		t.Errorf("lower file through the overlay: %d:%d, want %d:%d", st.Uid, st.Gid, m.UID, m.GID)
	}
	must(t, os.WriteFile(filepath.Join(fdPath(ov), "f"), []byte("y"), 0o644))
	must(t, unix.Stat(filepath.Join(c.Upper, "f"), &st))
	if st.Uid != m.UID || st.Gid != m.GID {
		t.Errorf("copied up: %d:%d on disk, want %d:%d", st.Uid, st.Gid, m.UID, m.GID)
	}
	must(t, unix.Stat(filepath.Join(c.Lower[0], "f"), &st))
	if st.Uid != 0 {
		t.Errorf("lower file now owned by %d", st.Uid)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
