// Command rootlessbench compares devbox run by an ordinary user (rootless:
// its own user namespace, pasta for the network) with devbox run by root
// (a bridge), in the same run, on the same Debian base from a loopback
// registry: `run -- /bin/true`, `up` until ssh answers, and a 1 GB download
// from the host through the environment's outbound network.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/devbox/devbox/internal/benchmark"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
)

func main() {
	devbox := flag.String("devbox", "bin/devbox", "devbox binary")
	runs := flag.Int("runs", 20, "runs of run -- /bin/true")
	flag.Parse()
	if err := run(*devbox, *runs); err != nil {
		log.Fatal(err)
	}
}

// side is one way of running devbox: as root, or as the ordinary user.
type side struct {
	name string
	bin  string
	dir  string // its working directory, with devbox.toml
	root string // its state root
	cred *syscall.Credential
	env  []string
}

func (s side) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(s.bin, append([]string{"--root", s.root}, args...)...)
	cmd.Dir, cmd.Env = s.dir, s.env
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

func (s side) must(args ...string) (string, error) {
	out, err := s.cmd(args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("devbox %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func run(devbox string, runs int) error {
	u, err := testenv.EnsureRootlessUser("devbox-e2e", true, func(m string) { log.Print(m) })
	if err != nil {
		return err
	}
	base, stop, err := testbase.ServeDebianBase(func(m string) { log.Print(m) })
	if err != nil {
		return err
	}
	defer stop()
	hostIP, err := testenv.HostAddress()
	if err != nil {
		return err
	}
	blob, err := serveZeros(hostIP)
	if err != nil {
		return err
	}
	rootSide, err := newSide("root", devbox, "/var/tmp", nil)
	if err != nil {
		return err
	}
	defer os.RemoveAll(rootSide.dir)
	userSide, err := newSide("rootless", devbox, u.HomeDir, u)
	if err != nil {
		return err
	}
	defer os.RemoveAll(userSide.dir)
	sides := []side{rootSide, userSide}
	key, pub, err := keyPair(userSide.dir, userSide.cred)
	if err != nil {
		return err
	}
	ports := map[string]int{}
	for _, s := range sides {
		if ports[s.name], err = testenv.FreePort(); err != nil {
			return err
		}
		spec := fmt.Sprintf("name = \"rlbench\"\nbase = %q\n[ssh]\nport = %d\nauthorized_keys = [%q]\n", base, ports[s.name], pub)
		if err := writeOwned(filepath.Join(s.dir, "devbox.toml"), spec, s.cred); err != nil {
			return err
		}
		if err := writeOwned(filepath.Join(s.dir, "none.toml"), spec+"[network]\nmode = \"none\"\n", s.cred); err != nil {
			return err
		}
		if _, err := s.must("build"); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}

	defer func() {
		for _, s := range sides {
			s.must("rm", "rlbench")
		}
	}()
	if err := timeRuns(sides, runs); err != nil {
		return err
	}
	if err := timeUps(sides, key, ports); err != nil {
		return err
	}
	return timeDownloads(sides, hostIP, blob)
}

// timeRuns times `run -- /bin/true` of each side.
func timeRuns(sides []side, runs int) error {
	return compare(sides, "devbox run -- /bin/true (network none)", benchmark.Rounds{N: runs, Warmup: 3}, func(s side) (time.Duration, error) {
		start := time.Now()
		_, err := s.must("run", "-f", "none.toml", "--", "/bin/true")
		return time.Since(start), err
	})
}

// timeUps times up until SSH answers of each side (then down, untimed).
func timeUps(sides []side, key string, ports map[string]int) error {
	return compare(sides, "up until ssh answers (then down)", benchmark.Rounds{N: 5, Warmup: 1}, func(s side) (time.Duration, error) {
		start := time.Now()
		if _, err := s.must("up"); err != nil {
			return 0, err
		}
		if err := login(key, ports[s.name]); err != nil {
			return 0, fmt.Errorf("ssh: %w", err)
		}
		took := time.Since(start)
		_, err := s.must("down")
		return took, err
	})
}

// timeDownloads times 1 GB from the host's blob server through each
// side's network.
func timeDownloads(sides []side, hostIP, blob string) error {
	title := fmt.Sprintf("1 GB from the host (%s) through the environment's network: root's bridge, rootless pasta", hostIP)
	get := fmt.Sprintf(`s=$(date +%%s%%N); exec 3<>/dev/tcp/%s; printf 'GET / HTTP/1.0\r\n\r\n' >&3; cat <&3 >/dev/null; echo $(( $(date +%%s%%N) - s ))`, strings.Replace(blob, ":", "/", 1))
	return compare(sides, title, benchmark.Rounds{N: 3, Warmup: 1}, func(s side) (time.Duration, error) {
		out, err := s.must("run", "--", "bash", "-c", get)
		if err != nil {
			return 0, err
		}
		f := strings.Fields(out)
		ns, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("download: %q", out)
		}
		return time.Duration(ns), nil
	})
}

// compare measures each side, interleaved, and prints the medians,
// rootless's as a ratio to root's.
func compare(sides []side, title string, r benchmark.Rounds, measure func(side) (time.Duration, error)) error {
	fmt.Println("-- " + title)
	var bs []benchmark.Side
	for _, s := range sides {
		bs = append(bs, benchmark.Side{Name: s.name, Measure: func() ([]time.Duration, error) {
			d, err := measure(s)
			return []time.Duration{d}, err
		}})
	}
	figures := []string{"median"}
	medians, err := benchmark.Interleave(bs, r, figures)
	if err != nil {
		return err
	}
	benchmark.Report(os.Stdout, bs, figures, medians)
	return nil
}

// newSide is a fresh working directory and state root under parent, the
// user's when u is set.
func newSide(name, devbox, parent string, u *user.User) (side, error) {
	dir, err := os.MkdirTemp(parent, "rlbench-")
	if err != nil {
		return side{}, err
	}
	s := side{name: name, bin: devbox, dir: dir, root: filepath.Join(dir, "state"), env: os.Environ()}
	if u == nil {
		return s, nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	s.env = []string{"HOME=" + u.HomeDir, "USER=" + u.Username, "PATH=/usr/local/bin:/usr/bin:/bin"}
	if err := os.Chown(dir, uid, gid); err != nil {
		return s, err
	}
	// The user's own copy of the binary, where it can run it.
	data, err := os.ReadFile(devbox)
	if err != nil {
		return s, err
	}
	s.bin = filepath.Join(dir, "devbox")
	return s, writeOwned(s.bin, string(data), s.cred)
}

func writeOwned(p, data string, cred *syscall.Credential) error {
	if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
		return err
	}
	if cred != nil {
		return os.Chown(p, int(cred.Uid), int(cred.Gid))
	}
	return nil
}

// serveZeros serves 1 GB of zeros over HTTP on the host's address.
func serveZeros(ip string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", err
	}
	zeros := make([]byte, 1<<20)
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		for i := 0; i < 1024; i++ {
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
	}))
	return l.Addr().String(), nil
}

func keyPair(dir string, cred *syscall.Credential) (key, pub string, err error) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := gossh.MarshalPrivateKey(priv, "bench")
	if err != nil {
		return "", "", err
	}
	key = filepath.Join(dir, "id")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", "", err
	}
	signer, _ := gossh.NewSignerFromKey(priv)
	return key, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey()))), nil
}

func login(key string, port int) error {
	opts := []string{"-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"}
	return exec.Command("ssh", append(opts, "-p", strconv.Itoa(port), "root@127.0.0.1", "true")...).Run()
}
