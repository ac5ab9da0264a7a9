// Command sshbench measures devbox's SSH side by side with OpenSSH's sshd
// on the same machine, in the same run: key login + `true` with the
// OpenSSH client, `devbox up` of a built environment until `ssh … true`
// succeeds, an SFTP download, and the idle memory of the init + server.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/devbox/devbox/internal/benchmark"
	"github.com/devbox/devbox/internal/proc"
	"github.com/devbox/devbox/internal/testenv"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/internal/testbase"
)

func main() {
	devbox := flag.String("devbox", "bin/devbox", "devbox binary (absolute)")
	runs := flag.Int("runs", 20, "logins of each")
	sftpMB := flag.Int("sftp-mb", 1024, "size of the SFTP download in MB")
	flag.Parse()
	if err := run(*devbox, *runs, *sftpMB); err != nil {
		log.Fatal(err)
	}
}

func run(devbox string, runs, sftpMB int) error {
	store, _, err := testbase.DebianImage(func(m string) { log.Print(m) })
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("/var/tmp", "sshbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	b := &bench{work: work}
	b.dbx = func(args ...string) *exec.Cmd {
		cmd := exec.Command(devbox, append([]string{"--root", store.Root().Dir()}, args...)...)
		cmd.Dir = work
		return cmd
	}
	stop, err := b.start()
	if err != nil {
		return err
	}
	defer stop()
	for _, step := range []func() error{func() error { return b.logins(runs) }, b.idle, b.ups, func() error { return b.sftp(sftpMB) }} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// bench is devbox's environment and OpenSSH's sshd, side by side, with
// one client key.
type bench struct {
	work         string
	dbx          func(args ...string) *exec.Cmd
	dport, sport int
	opts         []string // the ssh client's
	sshdPid      int
}

// start brings up devbox's environment and starts sshd; stop ends both.
func (b *bench) start() (stop func(), err error) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := gossh.MarshalPrivateKey(priv, "bench")
	key := filepath.Join(b.work, "id")
	os.WriteFile(key, pem.EncodeToMemory(block), 0o600)
	signer, _ := gossh.NewSignerFromKey(priv)
	pub := filepath.Join(b.work, "id.pub")
	os.WriteFile(pub, gossh.MarshalAuthorizedKey(signer.PublicKey()), 0o644)
	b.opts = []string{"-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"}

	if b.dport, err = testenv.FreePort(); err != nil {
		return nil, err
	}
	spec := fmt.Sprintf("name = \"sshbench\"\nbase = %q\n[ssh]\nport = %d\nauthorized_keys = [%q]\n[network]\nmode = \"none\"\n", testbase.DebianRef, b.dport, pub)
	os.WriteFile(filepath.Join(b.work, "devbox.toml"), []byte(spec), 0o644)
	b.dbx("rm", "sshbench").Run()
	if out, err := b.dbx("up").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("devbox up: %v %s", err, out)
	}

	// OpenSSH's sshd with the same key, on the same machine.
	if b.sport, err = testenv.FreePort(); err != nil {
		return nil, err
	}
	hostKey := filepath.Join(b.work, "sshd_host_key")
	exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).Run()
	cfg := filepath.Join(b.work, "sshd_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\nSubsystem sftp internal-sftp\n", b.sport, hostKey, pub)), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	sshd := exec.Command("/usr/sbin/sshd", "-D", "-f", cfg)
	if err := sshd.Start(); err != nil {
		b.dbx("rm", "sshbench").Run()
		return nil, fmt.Errorf("sshd: %w", err)
	}
	b.sshdPid = sshd.Process.Pid
	time.Sleep(300 * time.Millisecond)
	return func() { sshd.Process.Kill(); b.dbx("rm", "sshbench").Run() }, nil
}

func (b *bench) login(port int) error {
	return exec.Command("ssh", append(b.opts, "-p", strconv.Itoa(port), "root@127.0.0.1", "true")...).Run()
}

// logins times a key login and `true`, interleaved.
func (b *bench) logins(runs int) error {
	login := func(port int) func() ([]time.Duration, error) {
		return func() ([]time.Duration, error) {
			start := time.Now()
			if err := b.login(port); err != nil {
				return nil, fmt.Errorf("ssh to %d: %w", port, err)
			}
			return []time.Duration{time.Since(start)}, nil
		}
	}
	return compare([]benchmark.Side{{Name: "OpenSSH sshd", Measure: login(b.sport)}, {Name: "devbox", Measure: login(b.dport)}},
		benchmark.Rounds{N: runs, Warmup: 2}, []string{"key login + true"}, "devbox <= 0.50x")
}

// compare measures the sides, interleaved, and prints their medians
// with the ratios to the first's, and the goal.
func compare(sides []benchmark.Side, r benchmark.Rounds, figures []string, goal string) error {
	medians, err := benchmark.Interleave(sides, r, figures)
	if err != nil {
		return err
	}
	benchmark.Report(os.Stdout, sides, figures, medians)
	fmt.Println("goal: " + goal)
	return nil
}

// idle prints the idle memory of the init + SSH server beside the
// listening sshd's, both after the logins and then idle for longer than
// the init's idle period (it gives back memory after one).
func (b *bench) idle() error {
	out, err := b.dbx("ps", "--json").Output()
	if err != nil {
		return nil
	}
	// The store may hold other environments: this one, by name.
	var envs []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Pid    int    `json:"pid"`
	}
	json.Unmarshal(out, &envs)
	for _, e := range envs {
		if e.Name == "sshbench" && e.Status == "running" {
			time.Sleep(12 * time.Second)
			d, o := proc.StatusKiB(e.Pid, "VmRSS"), proc.StatusKiB(b.sshdPid, "VmRSS")
			fmt.Printf("idle RSS, 12 s after the logins: devbox init+server %d KiB  OpenSSH sshd %d KiB  ratio %.2f (goal: <= 10 MiB)\n", d, o, float64(d)/float64(o))
		}
	}
	return nil
}

// ups times up of a built environment until ssh true succeeds.
func (b *bench) ups() error {
	var tu []time.Duration
	for i := 0; i < 5; i++ {
		b.dbx("down").Run()
		start := time.Now()
		if out, err := b.dbx("up").CombinedOutput(); err != nil {
			return fmt.Errorf("up: %v %s", err, out)
		}
		if err := b.login(b.dport); err != nil {
			return err
		}
		tu = append(tu, time.Since(start))
	}
	fmt.Printf("up until ssh true    devbox %v (goal <= 100ms; includes one ssh login)\n", benchmark.Median(tu).Round(100*time.Microsecond))
	return nil
}

// sftp times an SFTP download of the same size from each.
func (b *bench) sftp(mb int) error {
	if mb <= 0 {
		return nil
	}
	hostFile := filepath.Join(b.work, "big")
	exec.Command("dd", "if=/dev/urandom", "of="+hostFile, "bs=1M", fmt.Sprint("count=", mb)).Run()
	if out, err := exec.Command("ssh", append(b.opts, "-p", strconv.Itoa(b.dport), "root@127.0.0.1", fmt.Sprintf("head -c %dM /dev/urandom > /tmp/big", mb))...).CombinedOutput(); err != nil {
		return fmt.Errorf("make file: %v %s", err, out)
	}
	// Each cipher a user may get: the client's default, and the two
	// OpenSSH offers first.
	ciphers := []string{"", "chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"}
	get := func(port int, path string) func() ([]time.Duration, error) {
		return func() ([]time.Duration, error) {
			var took []time.Duration
			for _, c := range ciphers {
				args := append(slices.Clone(b.opts), "-P", strconv.Itoa(port), "-b", "-")
				if c != "" {
					args = append(args, "-c", c)
				}
				cmd := exec.Command("sftp", append(args, "root@127.0.0.1")...)
				cmd.Stdin = strings.NewReader("get " + path + " /dev/null\n")
				start := time.Now()
				if out, err := cmd.CombinedOutput(); err != nil {
					return nil, fmt.Errorf("sftp %s: %v %s", c, err, out)
				}
				took = append(took, time.Since(start))
			}
			return took, nil
		}
	}
	fmt.Printf("sftp get of %d MB, by cipher\n", mb)
	return compare([]benchmark.Side{{Name: "OpenSSH internal-sftp", Measure: get(b.sport, hostFile)}, {Name: "devbox", Measure: get(b.dport, "/tmp/big")}},
		benchmark.Rounds{N: 3}, []string{"default", "chacha20-poly1305", "aes128-gcm"}, "devbox <= 1.0x for every cipher")
}
