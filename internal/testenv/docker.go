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
	host, dir string
	cmd       *exec.Cmd
	bridge    string // removed by Stop
}

// StartDocker starts the test's dockerd, stopped when the test ends;
// make test installs docker.io, so a host without it fails the test with
// what to install.
func StartDocker(tb testing.TB) *Docker {
	tb.Helper()
	d, err := NewDocker()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Stop)
	return d
}

// StartDockerBridged is StartDocker with a bridge for Docker's default
// network (still without iptables rules), for tools whose builds and
// containers take it, as the Dev Container CLI's do. The bridge is
// removed when the test ends.
func StartDockerBridged(tb testing.TB) *Docker {
	tb.Helper()
	d, err := NewDockerBridged()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Stop)
	return d
}

// NewDockerBridged is NewDocker with a bridge of its own for Docker's
// default network (not docker0, which a host's own Docker may use): made
// here, on 192.168.223.0/24, and removed by Stop.
func NewDockerBridged() (*Docker, error) {
	br := fmt.Sprintf("dbxdk%d", os.Getpid()%100000)
	for _, args := range [][]string{
		{"link", "add", br, "type", "bridge"},
		{"addr", "add", "192.168.223.1/24", "dev", br},
		{"link", "set", br, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			exec.Command("ip", "link", "del", br).Run()
			return nil, fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	d, err := newDocker("--bridge=" + br)
	if err != nil {
		exec.Command("ip", "link", "del", br).Run()
		return nil, err
	}
	d.bridge = br
	return d, nil
}

// NewDocker starts a dockerd of its own; Stop stops it and removes all it
// kept.
func NewDocker() (*Docker, error) { return newDocker("--bridge=none") }

// newDocker starts a dockerd of its own with the network flag given.
func newDocker(network string) (*Docker, error) {
	if _, err := os.Stat(dockerd); err != nil {
		return nil, fmt.Errorf("Docker is the oracle here: apt-get install docker.io (%w)", err)
	}
	// A short path: the socket's must fit sun_path.
	dir, err := os.MkdirTemp("", "dk-")
	if err != nil {
		return nil, err
	}
	d := &Docker{host: "unix://" + filepath.Join(dir, "sock"), dir: dir}
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(dockerd, "-H", d.host, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "pid"), "--iptables=false", "--ip-masq=false", network)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	err = d.cmd.Start()
	log.Close()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if _, err := d.Run("version"); err == nil {
			return d, nil
		} else if time.Since(start) > 60*time.Second {
			msg, _ := os.ReadFile(filepath.Join(dir, "log"))
			d.Stop()
			return nil, fmt.Errorf("dockerd did not answer in 60 s: %v\n%s", err, msg)
		}
	}
}

// Stop stops the daemon (SIGTERM, then after 30 s SIGKILL to its group)
// and removes its data.
func (d *Docker) Stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	os.RemoveAll(d.dir)
	if d.bridge != "" {
		exec.Command("ip", "link", "del", d.bridge).Run()
	}
}

// CLI is the path of the docker CLI that Run uses, for tools that call
// docker themselves (with Env).
const CLI = dockerCLI

// Env is the environment that points the docker CLI at the test's
// daemon, with BuildKit.
func (d *Docker) Env() []string {
	return append(os.Environ(), "DOCKER_HOST="+d.host, "DOCKER_BUILDKIT=1", "DOCKER_CONFIG="+os.TempDir()+"/dk-none")
}

// Share lets every local user reach the daemon (its socket 0666), for a
// tool the test runs as an ordinary user.
func (d *Docker) Share() error {
	if err := os.Chmod(d.dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(filepath.Join(d.dir, "sock"), 0o666)
}

// Run runs the docker CLI against the test's daemon, with BuildKit.
func (d *Docker) Run(args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := exec.Command(dockerCLI, args...)
	cmd.Env = d.Env()
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("docker %v: %w\n%s", args, err, out.Bytes())
	}
	return out.Bytes(), nil
}
