package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Debian's docker.io (Docker 20.10, BuildKit built in) is the oracle of
// the Dockerfile tests; its CLI is called by path because a newer docker
// CLI elsewhere on PATH asks for buildx.
const (
	dockerd   = "/usr/sbin/dockerd"
	dockerCLI = "/usr/bin/docker"
)

// Docker is a dockerd of its own for one test: a private socket, data
// root and exec root, no iptables rules and no bridge (nothing of the
// host's network changes; builds run with --network=none), stopped and
// removed when the test ends.
type Docker struct {
	host string
}

// StartDocker starts the test's dockerd; make test installs docker.io,
// so a host without it fails the test with what to install.
func StartDocker(tb testing.TB) *Docker {
	tb.Helper()
	if _, err := os.Stat(dockerd); err != nil {
		tb.Fatalf("Docker is the oracle here: apt-get install docker.io (%v)", err)
	}
	// A short path: the socket's must fit sun_path.
	dir, err := os.MkdirTemp("", "dk-")
	if err != nil {
		tb.Fatal(err)
	}
	d := &Docker{host: "unix://" + filepath.Join(dir, "sock")}
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(dockerd, "-H", d.host, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "pid"), "--iptables=false", "--ip-masq=false", "--bridge=none")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		log.Close()
		os.RemoveAll(dir)
	})
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if _, err := d.Run("version"); err == nil {
			return d
		} else if time.Since(start) > 60*time.Second {
			msg, _ := os.ReadFile(log.Name())
			tb.Fatalf("dockerd did not answer in 60 s: %v\n%s", err, msg)
		}
	}
}

// Run runs the docker CLI against the test's daemon, with BuildKit.
func (d *Docker) Run(args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := exec.Command(dockerCLI, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host, "DOCKER_BUILDKIT=1", "DOCKER_CONFIG="+os.TempDir()+"/dk-none")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("docker %v: %w\n%s", args, err, out.Bytes())
	}
	return out.Bytes(), nil
}
