package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestSFTPUserRights: OpenSSH's sftp as a login user who is not root
// reads and writes exactly what that user may, as internal-sftp does
// after it drops privileges: its files are its own, root's 0600 file and
// root's 0755 directory refuse it.
func TestSFTPUserRights(t *testing.T) {
	e := upEnvWith(t, "sftpdev", `[[run]]
command = "mkdir -m 0755 /srv/rootdir && echo secret > /srv/secret && chmod 0600 /srv/secret"
`, `user = "dev"`)
	local := t.TempDir()
	up := filepath.Join(local, "up")
	os.WriteFile(up, []byte("from the host\n"), 0o644)
	sftp := func(batch string) result {
		cmd := exec.Command("sftp", append(e.sshOpts(), "-P", strconv.Itoa(e.port), "-b", "-", e.target())...)
		cmd.Dir = local
		return runCmd(t, batch, cmd)
	}
	if r := sftp("put up /home/dev/by-sftp\n"); r.code != 0 {
		t.Fatalf("sftp put as dev: exit %d: %s", r.code, r.stderr)
	}
	if got := e.inEnv(t, "stat -c %U:%G:%a /home/dev/by-sftp; cat /home/dev/by-sftp"); got != "dev:dev:644\nfrom the host" {
		t.Errorf("the file dev put: %q, want dev:dev:644 and its content", got)
	}
	if r := sftp("get /srv/secret stolen\n"); r.code == 0 {
		t.Error("dev got root's 0600 file over sftp")
	}
	if data, err := os.ReadFile(filepath.Join(local, "stolen")); err == nil && len(data) > 0 {
		t.Errorf("root's 0600 file reached the host: %q", data)
	}
	if r := sftp("put up /srv/rootdir/planted\n"); r.code == 0 {
		t.Error("dev put a file into root's 0755 directory over sftp")
	}
	if got := e.inEnv(t, "ls -A /srv/rootdir; stat -c %U:%a /srv/secret"); got != "root:600" {
		t.Errorf("root's directory and file after dev's sftp: %q", got)
	}
}
