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

// TestDockerfileAsBuildKit: what `docker build` (BuildKit) gives, where
// devbox differed; each line of the run's output says where BuildKit
// does it.
func TestDockerfileAsBuildKit(t *testing.T) {
	testenv.NeedRoot(t)
	root := baseRoot(t)
	dir := dockerfileProject(t, `ARG BASE
FROM ${BASE}
ARG PORT=8080
EXPOSE $PORT
RUN useradd -m -u 1500 -g 100 dev && groupadd -g 2000 team && usermod -aG team dev && echo "$http_proxy $HTTP_PROXY" > /proxy
RUN <<EOF
echo "heredoc $PORT" > /heredoc
EOF
RUN <<EOT
#!/bin/sh
echo "$0" > /shebang
EOT
COPY <<EOF /etc/inline
port ${PORT}
EOF
COPY --chown=1500 a.txt /c1
ADD --chown=1500 sub /opt/sub/
ADD --chown=dev arch.tgz /opt/arch/
USER dev
RUN echo "$HOME $(id -G)" > /home/dev/ids
`, "[network]\nmode = \"none\"", `http_proxy = "http://proxy.invalid:3128"`)
	ctx := filepath.Join(dir, "ctx")
	os.MkdirAll(filepath.Join(ctx, "sub"), 0o755)
	os.WriteFile(filepath.Join(ctx, "a.txt"), []byte("a\n"), 0o644)
	os.WriteFile(filepath.Join(ctx, "sub", "b.txt"), []byte("b\n"), 0o644)
	if out, err := execCommand("tar", "-C", ctx, "--owner=0", "--group=0", "-czf", filepath.Join(ctx, "arch.tgz"), "sub").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	r := devbox(t, dir, "--root", root, "run", "--", "sh", "-c",
		`cat /heredoc /shebang /etc/inline /proxy; stat -c '%u:%g %a' /etc/inline /c1 /opt/sub/b.txt /opt/arch/sub /opt/arch/sub/b.txt; `+
			`env | grep -ic proxy; cat /home/dev/ids; echo "$HOME $(id -G)"`)
	want := strings.Join([]string{
		// RUN heredoc, run by the shell (dockerfile2llb/convert.go dispatchRun).
		"heredoc 8080",
		// With a shebang, a file run from /dev/pipes (dispatchRun).
		"/dev/pipes/EOT",
		// COPY heredoc, expanded (convert_copy.go; ExpandRaw in dispatch).
		"port 8080",
		// Proxy args without ARG (convert.go proxyEnvFromBuildArgs,
		// solver/llbsolver/ops/exec.go proxyEnvList).
		"http://proxy.invalid:3128 http://proxy.invalid:3128",
		// The heredoc file: 0644, root's (convert_copy.go, llb.Mkfile).
		"0:0 644",
		// --chown=UID: the group is the same number
		// (solver/llbsolver/ops/user_linux.go readUser, UserOpt_ByID).
		"1500:1500 644",
		// ADD --chown of a directory reaches its files.
		"1500:1500 644",
		// ADD --chown=NAME of an archive: every entry, the user's primary
		// group (solver/llbsolver/file/unpack.go, TarOptions.ChownOpts).
		"1500:100 755",
		"1500:100 644",
		// No proxy variable in the image's config.
		"0",
		// RUN after USER: HOME and the supplementary groups (moby/sys/user
		// GetExecUser, called by executor/oci/user.go GetUser).
		"/home/dev 100 2000",
		// And the running environment, as docker run.
		"/home/dev 100 2000",
	}, "\n") + "\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("run: %d\n%s\nwant\n%s\n%s", r.code, r.stdout, want, tail(r.stderr))
	}
	if !strings.Contains(r.stderr+r.stdout, "exposes 8080/tcp") {
		t.Errorf("EXPOSE $PORT was not expanded:\n%s", tail(r.stderr))
	}
}

// TestYescryptImageLogin: an image whose /etc/shadow holds a yescrypt
// hash (what Debian 12's chpasswd writes by default, PAM untouched) is
// logged into with its password.
func TestYescryptImageLogin(t *testing.T) {
	testenv.NeedRoot(t)
	root := baseRoot(t)
	port := freePort(t)
	dir := dockerfileProject(t, "ARG BASE\nFROM ${BASE}\nRUN echo 'root:yes-pw' | chpasswd && grep -q '^root:\\$y\\$' /etc/shadow\n",
		fmt.Sprintf("name = \"yes\"\n[network]\nmode = \"none\"\n[ssh]\nport = %d\nimage_logins = true", port))
	r := devbox(t, dir, "--root", root, "up")
	if r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	t.Cleanup(func() { devbox(t, dir, "--root", root, "rm", "yes") })
	if out := r.stdout + r.stderr; strings.Contains(out, "cannot check") {
		t.Errorf("up left the yescrypt password off:\n%s", tail(out))
	}
	login := func(pw string) result {
		return runCmd(t, "", exec.Command("sshpass", "-p", pw, "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
			"-p", strconv.Itoa(port), "root@127.0.0.1", "echo in"))
	}
	if r := login("yes-pw"); r.code != 0 || r.stdout != "in\n" {
		t.Errorf("ssh with the image's yescrypt password: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := login("wrong-pw"); r.code == 0 {
		t.Error("a wrong password logged in")
	}
}
