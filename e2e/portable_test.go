package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/testenv"
)

// needTool skips a test whose tool is missing on a workstation; in CI,
// where make test installs it, a missing tool fails the test.
func needTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: make test-deps installs %s", name, pkg)
		}
		t.Skipf("no %s (apt-get install %s)", name, pkg)
	}
}

// podmanRun starts ref under podman, detached, with SSH published on a
// free loopback port, and removes it at the end of the test.
func podmanRun(t *testing.T, ref string, args ...string) (port int, name string) {
	t.Helper()
	port = freePort(t)
	name = fmt.Sprintf("devbox-e2e-%d", port)
	// runc, which make test installs: podman's default runtime is
	// whatever the host has (crun refuses hybrid cgroups).
	all := []string{"--runtime", "runc", "run", "-d", "--name", name, "--tls-verify=false",
		// This machine's hard limits on open files and processes are
		// below podman's defaults, which runc may not raise here.
		"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
		"-p", fmt.Sprintf("127.0.0.1:%d:22", port)}
	all = append(append(all, args...), ref)
	if r := runCmd(t, "", exec.Command("podman", all...)); r.code != 0 {
		t.Fatalf("podman run: %s", r.stderr)
	}
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", "-t", "0", name).Run() })
	if err := waitSSH(port, 30*time.Second); err != nil {
		logs, _ := exec.Command("podman", "logs", name).CombinedOutput()
		t.Fatalf("%v; the container says:\n%s", err, logs)
	}
	return port, name
}

// waitSSH waits until an SSH server answers on the loopback port.
func waitSSH(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 8)
			n, _ := c.Read(buf)
			c.Close()
			if bytes.HasPrefix(buf[:n], []byte("SSH-2.0-")) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no SSH server on port %d after %s", port, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hostKeyFingerprint is what ssh-keyscan sees on the loopback port.
func hostKeyFingerprint(t *testing.T, port int) string {
	t.Helper()
	scan := runCmd(t, "", exec.Command("ssh-keyscan", "-t", "ed25519", "-p", strconv.Itoa(port), "127.0.0.1"))
	fp := runCmd(t, scan.stdout, exec.Command("ssh-keygen", "-l", "-f", "-"))
	if m := regexp.MustCompile(`SHA256:\S+`).FindString(fp.stdout); m != "" {
		return m
	}
	t.Fatalf("no host key on port %d: %s %s", port, scan.stderr, fp.stderr)
	return ""
}

// TestPushRunsAnywhere: devbox push makes an image whose entrypoint is
// devbox's SSH server, so that podman serves the environment as devbox up
// does: the spec's user, Node, environment and workdir, its public key,
// keys and a password hash given at run time, a host key made at start
// (its fingerprint printed) or taken from the mounted secret that devbox
// kube writes.
func TestPushRunsAnywhere(t *testing.T) {
	testenv.NeedRoot(t)
	needTool(t, "podman", "podman")
	m := newNodeMirror(t, "99.1.2")
	e := upEnvWith(t, "portable", fmt.Sprintf("workdir = \"/srv\"\n[env]\nGREETING = \"hello\"\n[node]\nversion = \"99\"\nmirror = %q\n", m.URL), `user = "dev"`)
	ref := testenv.Registry(t) + "/team/portable:1"
	r := devbox(t, e.dir, "--root", e.root, "push", e.name, ref)
	pushed := regexp.MustCompile(`as (\S+@sha256:[0-9a-f]{64})`).FindStringSubmatch(r.stdout)
	if r.code != 0 || pushed == nil {
		t.Fatalf("push: %d %q %s", r.code, r.stdout, tail(r.stderr))
	}
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", ref).Run() })

	otherKey, otherPub := writeKeyPair(t, t.TempDir())
	pub, _ := os.ReadFile(otherPub)
	hash, err := spec.HashPassword("run-time-pw")
	if err != nil {
		t.Fatal(err)
	}
	port, name := podmanRun(t, ref, "-e", "DEVBOX_AUTHORIZED_KEYS="+string(pub), "-e", "DEVBOX_PASSWORD_HASH="+hash)
	login := func(key string, args ...string) result {
		all := append(e.sshOpts(), "-i", key, "-p", strconv.Itoa(port), "dev@127.0.0.1")
		return runCmd(t, "", exec.Command("ssh", append(all, args...)...))
	}
	r = login(e.key, "node --version; pwd; echo $GREETING; id -un")
	if want := "v99.1.2\n/srv\nhello\ndev\n"; r.code != 0 || r.stdout != want {
		t.Errorf("the spec's key: %d %q, want %q (%s)", r.code, r.stdout, want, r.stderr)
	}
	if r := login(otherKey, "true"); r.code != 0 {
		t.Errorf("DEVBOX_AUTHORIZED_KEYS's key: %d %s", r.code, r.stderr)
	}
	pw := func(password string) result {
		return runCmd(t, "", exec.Command("sshpass", "-p", password, "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no", "-p", strconv.Itoa(port), "dev@127.0.0.1", "true"))
	}
	if r := pw("run-time-pw"); r.code != 0 {
		t.Errorf("DEVBOX_PASSWORD_HASH's password: %d %s", r.code, r.stderr)
	}
	// The spec's password is not in the image: only the run time's.
	if r := pw(e.password); r.code == 0 {
		t.Error("the spec's password logged in to the pushed image")
	}
	logs, _ := exec.Command("podman", "logs", name).CombinedOutput()
	if fp := hostKeyFingerprint(t, port); !strings.Contains(string(logs), fp+" (generated") {
		t.Errorf("the generated host key %s is not printed:\n%s", fp, logs)
	}
	kubeRunsImage(t, e, pushed[1])
}

// kubeRunsImage: devbox kube's manifests run the pushed image with the
// Secret mounted at /etc/devbox; podman stands in for the kubelet, with
// the Secret's files mounted where the Deployment mounts them.
func kubeRunsImage(t *testing.T, e *sshEnv, image string) {
	r := devbox(t, e.dir, "--root", e.root, "kube", e.name)
	if r.code != 0 {
		t.Fatalf("kube: %s", r.stderr)
	}
	var dep appsv1.Deployment
	var sec corev1.Secret
	var svc corev1.Service
	docs := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(r.stdout)))
	for {
		doc, err := docs.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var obj struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		target := map[string]any{"Deployment": &dep, "Secret": &sec, "Service": &svc}[obj.Kind]
		if target == nil {
			t.Fatalf("unexpected object %q", obj.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
			t.Fatalf("%s: %v", obj.Kind, err)
		}
	}
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 || pod.Containers[0].Image != image {
		t.Fatalf("the Deployment does not run %s: %+v", image, pod.Containers)
	}
	if mnt := pod.Containers[0].VolumeMounts; len(mnt) != 1 || mnt[0].MountPath != "/etc/devbox" || pod.Volumes[0].Secret.SecretName != sec.Name {
		t.Errorf("the Secret %q is not mounted at /etc/devbox: %+v %+v", sec.Name, mnt, pod.Volumes)
	}
	if len(svc.Spec.Ports) == 0 || svc.Spec.Ports[0].Port != 22 {
		t.Errorf("the Service does not publish SSH: %+v", svc.Spec.Ports)
	}
	signer, err := gossh.ParsePrivateKey([]byte(sec.StringData["host_key"]))
	if err != nil {
		t.Fatalf("the Secret's host key: %v", err)
	}
	fp := gossh.FingerprintSHA256(signer.PublicKey())
	if !strings.Contains(r.stderr, fp) {
		t.Errorf("kube does not print the host key's fingerprint %s: %s", fp, r.stderr)
	}
	secretDir := t.TempDir()
	for k, v := range sec.StringData {
		os.WriteFile(filepath.Join(secretDir, k), []byte(v), 0o400)
	}
	port, _ := podmanRun(t, image, "-v", secretDir+":/etc/devbox:ro")
	if got := hostKeyFingerprint(t, port); got != fp {
		t.Errorf("the Pod's host key is %s, the Secret's %s", got, fp)
	}
	all := append(e.sshOpts(), "-p", strconv.Itoa(port), "dev@127.0.0.1", "node --version")
	if r := runCmd(t, "", exec.Command("ssh", all...)); r.code != 0 || r.stdout != "v99.1.2\n" {
		t.Errorf("ssh to the Pod's image: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// The image carries no password; the Secret's password_hash (the
	// build's) lets the spec's password in.
	r = runCmd(t, "", exec.Command("sshpass", "-p", e.password, "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no", "-p", strconv.Itoa(port), "dev@127.0.0.1", "true"))
	if _, ok := sec.StringData["password_hash"]; !ok || r.code != 0 {
		t.Errorf("the spec's password with the Secret's password_hash (present: %v): %d %s", ok, r.code, r.stderr)
	}
	if r := devbox(t, e.dir, "--root", e.root, "kube", e.name); !strings.Contains(r.stderr, fp) {
		t.Errorf("kube again changed the host key: %s", r.stderr)
	}
}
