package builder

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/testenv"
)

// A base with the image's own accounts and no tools: the user step adds
// the user, its group and home, and the password, and keeps every other
// entry and each file's mode and owner.
func TestUserStepWithoutTools(t *testing.T) {
	testenv.NeedRoot(t) // owners
	lower := t.TempDir()
	write := func(rel, content string, mode os.FileMode, gid int) {
		p := filepath.Join(lower, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), mode)
		os.Chmod(p, mode)
		os.Chown(p, 0, gid)
	}
	write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\napp:x:1000:1000::/srv:/bin/sh\n", 0o644, 0)
	write("etc/group", "root:x:0:\nshadow:x:42:\napp:x:1000:\n", 0o644, 0)
	write("etc/shadow", "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o640, 42)
	write("etc/skel/.profile", "# skel\n", 0o644, 0)
	upper := t.TempDir()

	s, err := spec.Parse(filepath.Join(t.TempDir(), spec.FileName), []byte("base = \"x\"\nshell = \"/bin/sh\"\n[ssh]\nuser = \"dev\"\npassword_hash = \"$6$salt$hash\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	// A reproducible build dates the entry by its epoch (1714564800 is
	// day 19844).
	if err := userStep(s, &Result{Lower: []string{lower}, Plan: &Plan{Epoch: 1714564800}}, upper, "key"); err != nil {
		t.Fatal(err)
	}
	read := func(rel string) string {
		data, err := os.ReadFile(filepath.Join(upper, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if got := read("etc/passwd"); !strings.HasSuffix(got, "app:x:1000:1000::/srv:/bin/sh\ndev:x:1001:1001::/home/dev:/bin/sh\n") || !strings.HasPrefix(got, "root:x:0:0") {
		t.Errorf("passwd:\n%s", got)
	}
	if got := read("etc/group"); !strings.HasSuffix(got, "app:x:1000:\ndev:x:1001:\n") {
		t.Errorf("group:\n%s", got)
	}
	shadow := read("etc/shadow")
	if !strings.Contains(shadow, "\ndev:$6$salt$hash:19844:") || !strings.HasPrefix(shadow, "root:*:19000:") {
		t.Errorf("shadow:\n%s", shadow)
	}
	fi, _ := os.Stat(filepath.Join(upper, "etc/shadow"))
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o640 || st.Gid != 42 {
		t.Errorf("shadow is %v gid %d, want the image's 0640 gid 42", fi.Mode().Perm(), st.Gid)
	}
	home, err := os.Stat(filepath.Join(upper, "home/dev"))
	if err != nil {
		t.Fatal(err)
	}
	if st := home.Sys().(*syscall.Stat_t); st.Uid != 1001 || home.Mode().Perm() != 0o700 {
		t.Errorf("home: uid %d mode %v", st.Uid, home.Mode().Perm())
	}
	if read("home/dev/.profile") != "# skel\n" {
		t.Error("skeleton not copied")
	}
}
