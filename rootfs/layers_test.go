package rootfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadFromLayersHidden: a whiteout of a parent, a file over a parent
// and an opaque parent hide the lower layers' file, as overlay shows it.
func TestReadFromLayersHidden(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (whiteouts are device nodes, opaque markers trusted xattrs); CI runs as root")
	}
	lower := t.TempDir()
	os.MkdirAll(filepath.Join(lower, "root/.ssh"), 0o700)
	os.WriteFile(filepath.Join(lower, "root/.ssh/authorized_keys"), []byte("key"), 0o600)
	read := func(top string) error {
		_, _, err := ReadFromLayers([]string{top, lower}, "root/.ssh/authorized_keys")
		return err
	}
	if err := read(t.TempDir()); err != nil {
		t.Fatalf("visible through an empty layer: %v", err)
	}
	whiteout := t.TempDir()
	os.MkdirAll(filepath.Join(whiteout, "root"), 0o700)
	if err := unix.Mknod(filepath.Join(whiteout, "root/.ssh"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	file := t.TempDir()
	os.MkdirAll(filepath.Join(file, "root"), 0o700)
	os.WriteFile(filepath.Join(file, "root/.ssh"), nil, 0o600)
	opaque := t.TempDir()
	os.MkdirAll(filepath.Join(opaque, "root/.ssh"), 0o700)
	if err := unix.Setxattr(filepath.Join(opaque, "root/.ssh"), opaqueXattr(), []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	for name, top := range map[string]string{"whiteout of the parent": whiteout, "file over the parent": file, "opaque parent": opaque} {
		if err := read(top); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
}
