package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testenv"
)

// TestDockerfileMountCache: a cache mount keeps what a RUN wrote there
// for the next build, a RUN line changed included; it is owned as asked;
// nothing of it, not even its mount point, is in the image.
func TestDockerfileMountCache(t *testing.T) {
	testenv.NeedRoot(t)
	root := baseRoot(t)
	first := "ARG BASE\nFROM ${BASE} AS src\nRUN mkdir /seed && echo seeded > /seed/s\nFROM ${BASE}\n" +
		"RUN --mount=type=cache,target=/var/cache/thing echo first > /var/cache/thing/f\n" +
		"RUN --mount=type=cache,target=/c2,uid=1000,gid=100,mode=0700 stat -c '%u:%g %a' /c2 > /c2stat && touch /c2/x\n" +
		"RUN --mount=type=cache,target=/c3,from=src,source=/seed cat /c3/s > /c3out\n"
	dir := dockerfileProject(t, first, "")
	if r := devbox(t, dir, "--root", root, "build"); r.code != 0 {
		t.Fatalf("first build: %d %s", r.code, tail(r.stderr))
	}
	second := strings.Replace(first, "echo first > /var/cache/thing/f", "cat /var/cache/thing/f > /seen", 1)
	os.WriteFile(filepath.Join(dir, "ctx", "Dockerfile"), []byte(second), 0o644)
	r := devbox(t, dir, "--root", root, "run", "--", "sh", "-c",
		`cat /seen /c2stat /c3out; for p in /var/cache/thing /c2 /c3; do test -e $p && echo "$p in the image" || echo "$p absent"; done`)
	want := "first\n1000:100 700\nseeded\n/var/cache/thing absent\n/c2 absent\n/c3 absent\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("second build: %d\n%s\nwant\n%s\n%s", r.code, r.stdout, want, tail(r.stderr))
	}
	// As docker builder prune: the caches are emptied, and the next build
	// starts them afresh.
	if r := devbox(t, dir, "--root", root, "image", "prune", "--build-caches"); r.code != 0 || !strings.Contains(r.stdout, "emptied 3 build caches") {
		t.Errorf("prune: %d %q %s", r.code, r.stdout, tail(r.stderr))
	}
	third := strings.Replace(second, "cat /var/cache/thing/f > /seen", "ls -A /var/cache/thing > /seen", 1)
	os.WriteFile(filepath.Join(dir, "ctx", "Dockerfile"), []byte(third), 0o644)
	if r := devbox(t, dir, "--root", root, "run", "--", "wc", "-c", "/seen"); r.code != 0 || r.stdout != "0 /seen\n" {
		t.Errorf("after the prune: %d %q %s", r.code, r.stdout, tail(r.stderr))
	}
}

// TestDockerfileMountKinds: tmpfs, binds from the context (read-only,
// and rw with the writes thrown away) and from a stage, a secret (as a
// file and as a variable) and --network=none, as BuildKit does them;
// none of them leaves anything in the image.
func TestDockerfileMountKinds(t *testing.T) {
	testenv.NeedRoot(t)
	root := baseRoot(t)
	dir := dockerfileProject(t, `ARG BASE
FROM ${BASE} AS src
RUN echo from-stage > /stagefile
FROM ${BASE}
RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/x && grep -q ' /scratch tmpfs ' /proc/mounts && echo tmpfs > /tmpfs-ok
RUN --mount=target=/ctx cat /ctx/a.txt > /bind-ctx && (touch /ctx/w 2>/dev/null && echo writable || echo read-only) >> /bind-ctx
RUN --mount=target=/ctx,rw echo changed > /ctx/a.txt && cat /ctx/a.txt > /bind-rw
RUN --mount=from=src,source=/stagefile,target=/sf cat /sf > /bind-stage
RUN --mount=type=secret,id=tok grep -c s3cret /run/secrets/tok > /secret && stat -c '%u %a' /run/secrets/tok >> /secret
RUN --mount=type=secret,id=tok,env=TOK test "$TOK" = s3cret && echo env >> /secret
RUN --network=none ls /sys/class/net > /nets-none
RUN ls /sys/class/net | wc -l > /nets-default
RUN awk '{print ($2 == 0 ? "no user namespace" : "user namespace")}' /proc/self/uid_map > /userns
`, "")
	ctx := filepath.Join(dir, "ctx")
	os.WriteFile(filepath.Join(ctx, "a.txt"), []byte("from-context\n"), 0o644)
	secret := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(secret, []byte("s3cret"), 0o600)
	if r := devbox(t, dir, "--root", root, "build", "--secret", "id=tok,src="+secret); r.code != 0 {
		t.Fatalf("build: %d %s", r.code, tail(r.stderr))
	}
	r := devbox(t, dir, "--root", root, "run", "--", "sh", "-c",
		`cat /tmpfs-ok /bind-ctx /bind-rw /bind-stage /secret /nets-none /nets-default /userns; `+
			`for p in /scratch /ctx /sf /run/secrets /run/secrets/tok; do test -e $p && echo "$p in the image"; done; `+
			`grep -rls s3cret /etc /run /root /tmp /scratch; echo "TOK=$TOK"`)
	want := "tmpfs\nfrom-context\nread-only\nchanged\nfrom-stage\n1\n0 400\nenv\nlo\n2\nuser namespace\nTOK=\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("run: %d\n%s\nwant\n%s\n%s", r.code, r.stdout, want, tail(r.stderr))
	}
	if data, _ := os.ReadFile(filepath.Join(ctx, "a.txt")); string(data) != "from-context\n" {
		t.Errorf("a rw bind wrote to the context: %q", data)
	}
}

// TestDockerfileMountRefused: a required secret not given, and
// --network=host without the spec's opt-in, are clear errors with the
// Dockerfile's line.
func TestDockerfileMountRefused(t *testing.T) {
	testenv.NeedRoot(t)
	for _, c := range []struct{ body, want string }{
		{"RUN --mount=type=secret,id=missing,required true\n", `Dockerfile:3: RUN --mount=type=secret,target=/run/secrets/missing: secret "missing" is required`},
		{"RUN --network=host true\n", "Dockerfile:3: RUN: --network=host is refused: devbox is secure by default"},
		{"RUN --security=insecure true\n", "Dockerfile:3: RUN: --security=insecure is refused"},
	} {
		root := baseRoot(t)
		dir := dockerfileProject(t, "ARG BASE\nFROM ${BASE}\n"+c.body, "")
		r := devbox(t, dir, "--root", root, "build")
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: %d\n%s\nwant %q", c.body, r.code, tail(r.stderr), c.want)
		}
	}
}

// TestDockerfileMountSSH: a real ssh-agent's key is listed by ssh-add -l
// in a RUN with --mount=type=ssh, through devbox's relay (the agent's
// socket is the host's, unreachable in the build's user namespace).
func TestDockerfileMountSSH(t *testing.T) {
	testenv.NeedRoot(t)
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Skip("no ssh-agent")
	}
	root := baseRoot(t)
	dir := dockerfileProject(t, "ARG BASE\nFROM ${BASE}\n"+
		"RUN --mount=type=ssh --mount=target=/tools,source=tools LD_LIBRARY_PATH=/tools /tools/ssh-add -l > /keys && echo \"$SSH_AUTH_SOCK\" >> /keys\n", "")
	tools := filepath.Join(dir, "ctx", "tools")
	os.MkdirAll(tools, 0o755)
	copyTool(t, "/usr/bin/ssh-add", tools)
	for _, lib := range []string{"libcrypto.so.3", "libselinux.so.1", "libpcre2-8.so.0"} {
		copyTool(t, "/lib/x86_64-linux-gnu/"+lib, tools)
	}
	keyDir := t.TempDir()
	key := filepath.Join(keyDir, "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mount-test-key", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	sock := filepath.Join(keyDir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	waitFor(5*time.Second, func() bool { _, err := os.Stat(sock); return err == nil })
	add := exec.Command("ssh-add", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v %s", err, out)
	}
	if r := devbox(t, dir, "--root", root, "build", "--ssh", "default="+sock); r.code != 0 {
		t.Fatalf("build: %d %s", r.code, tail(r.stderr))
	}
	r := devbox(t, dir, "--root", root, "run", "--", "sh", "-c", "cat /keys; test ! -e /run/buildkit || echo /run/buildkit in the image")
	if r.code != 0 || !strings.Contains(r.stdout, "mount-test-key (ED25519)") || !strings.HasSuffix(r.stdout, "\n/run/buildkit/ssh_agent.0\n") {
		t.Errorf("run: %d\n%s\n%s", r.code, r.stdout, tail(r.stderr))
	}
}

func copyTool(t *testing.T, src, dir string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("%s: %v", src, err)
	}
	os.WriteFile(filepath.Join(dir, filepath.Base(src)), data, 0o755)
}
