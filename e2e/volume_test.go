package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
)

// TestNamedVolumes: a named volume is filled from the image at its target
// the first time (Docker's copy-up: contents, owner and mode), keeps what
// is written across down, up and rm, is refused removal while mounted,
// and after `volume rm` starts over; a tmpfs is a tmpfs.
func TestNamedVolumes(t *testing.T) {
	testenv.NeedRoot(t)
	root := baseRoot(t)
	dir := t.TempDir()
	spec := fmt.Sprintf(`name = "vols"
base = %q
[ssh]
port = %d
[network]
mode = "none"
[[mounts]]
type = "volume"
source = "mail"
target = "/var/mail"
[[mounts]]
type = "volume"
source = "skel"
target = "/etc/skel"
readonly = true
[[mounts]]
type = "tmpfs"
target = "/scratch"
[[mounts]]
type = "tmpfs"
target = "/scratch-ro"
readonly = true
`, testbase.DebianRef, freePort(t))
	os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec), 0o644)
	up := func() {
		t.Helper()
		if r := devbox(t, dir, "--root", root, "up"); r.code != 0 {
			t.Fatalf("up: %s", tail(r.stderr))
		}
	}
	sh := func(script string) string {
		t.Helper()
		r := devbox(t, dir, "--root", root, "exec", "vols", "--", "sh", "-c", script)
		if r.code != 0 {
			t.Fatalf("exec %q: %d %s", script, r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	up()
	got := sh(`stat -c '%a %U:%G' /var/mail; ls -A /etc/skel | tr '\n' ' '; touch /etc/skel/x 2>/dev/null && echo skel=writable || echo skel=ro; ` +
		`stat -fc %T /scratch; touch /scratch-ro/x 2>/dev/null && echo tmpfs-ro=writable || echo tmpfs-ro=ro; cat /var/mail/keep 2>/dev/null || echo none; echo kept > /var/mail/keep`)
	if want := "2775 root:mail\n.bash_logout .bashrc .profile skel=ro\ntmpfs\ntmpfs-ro=ro\nnone"; got != want {
		t.Errorf("first up:\n%s\nwant\n%s", got, want)
	}
	if r := devbox(t, dir, "--root", root, "volume", "ls"); !strings.Contains(r.stdout, "mail  vols") || !strings.Contains(r.stdout, "skel  vols") {
		t.Errorf("volume ls: %s %s", r.stdout, r.stderr)
	}
	if r := devbox(t, dir, "--root", root, "volume", "rm", "mail"); r.code == 0 || !strings.Contains(r.stderr, "in use by vols") {
		t.Errorf("volume rm of a mounted volume: %d %s", r.code, r.stderr)
	}
	for _, cmd := range [][]string{{"down"}, {"up"}, {"down"}, {"rm", "vols"}, {"up"}} {
		if r := devbox(t, dir, append([]string{"--root", root}, cmd...)...); r.code != 0 {
			t.Fatalf("%v: %s", cmd, tail(r.stderr))
		}
	}
	if got := sh("cat /var/mail/keep"); got != "kept" {
		t.Errorf("after down, up, rm and up: %q, want the volume's kept file", got)
	}
	devbox(t, dir, "--root", root, "down")
	var vols []struct {
		Name   string
		UsedBy []string `json:"used_by"`
	}
	r := devbox(t, dir, "--root", root, "volume", "ls", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &vols); err != nil || len(vols) != 2 || vols[0].Name != "mail" || len(vols[0].UsedBy) != 0 {
		t.Errorf("volume ls --json after down: %s %v", r.stdout, err)
	}
	if r := devbox(t, dir, "--root", root, "volume", "rm", "mail", "skel"); r.code != 0 {
		t.Fatalf("volume rm: %s", r.stderr)
	}
	if r := devbox(t, dir, "--root", root, "volume", "rm", "mail"); r.code == 0 || !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("volume rm of a removed volume: %d %s", r.code, r.stderr)
	}
	up()
	if got := sh(`stat -c '%a %U:%G' /var/mail; cat /var/mail/keep 2>/dev/null || echo none`); got != "2775 root:mail\nnone" {
		t.Errorf("after volume rm, up gives %q, want a volume filled anew", got)
	}
	devbox(t, dir, "--root", root, "down")
	// A one-shot container holds its volumes too.
	run := exec.Command(devboxBin, "--root", root, "run", "--", "sleep", "3")
	run.Dir = dir
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Wait()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if owners, _ := filepath.Glob(filepath.Join(root, "run", "*", "owner")); len(owners) > 0 {
			break
		}
	}
	if rm := devbox(t, dir, "--root", root, "volume", "rm", "skel"); rm.code == 0 || !strings.Contains(rm.stderr, "in use by a devbox run") {
		t.Errorf("volume rm beside a devbox run: %d %s%s", rm.code, rm.stdout, rm.stderr)
	}
}
