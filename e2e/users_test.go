package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox/devbox/internal/testenv"
)

// TestUserWithoutTools: a base with a shell and nothing else (no useradd,
// adduser or chpasswd, as busybox without its applet links and
// distroless images are) still gets its SSH user with a password.
func TestUserWithoutTools(t *testing.T) {
	testenv.NeedRoot(t)
	base := busyboxBase(t, func(base string) {
		os.WriteFile(filepath.Join(base, "etc/group"), []byte("root:x:0:\n"), 0o644)
	})

	dir := t.TempDir()
	port := freePort(t)
	spec := fmt.Sprintf(`name = "usersbb"
base = "dir:%s"
[ssh]
port = %d
user = "dev"
password = "pw-dev"
[network]
mode = "none"
`, base, port)
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	root := t.TempDir()
	if r := devbox(t, dir, "--root", root, "up"); r.code != 0 {
		t.Fatalf("up: %d %s%s", r.code, r.stdout, r.stderr)
	}
	defer devbox(t, dir, "--root", root, "rm", "usersbb")
	r := runCmd(t, "", exec.Command("sshpass", "-p", "pw-dev", "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "PubkeyAuthentication=no", "-p", fmt.Sprint(port),
		"dev@127.0.0.1", "busybox id -un; echo $HOME; busybox stat -c %U $HOME"))
	if r.code != 0 || strings.Fields(r.stdout) == nil || strings.Join(strings.Fields(r.stdout), " ") != "dev /home/dev dev" {
		t.Fatalf("password login as dev: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
}
