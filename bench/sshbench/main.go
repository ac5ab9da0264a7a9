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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

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

func freePort() int {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := gossh.MarshalPrivateKey(priv, "bench")
	key := filepath.Join(work, "id")
	os.WriteFile(key, pem.EncodeToMemory(block), 0o600)
	signer, _ := gossh.NewSignerFromKey(priv)
	pub := filepath.Join(work, "id.pub")
	os.WriteFile(pub, gossh.MarshalAuthorizedKey(signer.PublicKey()), 0o644)

	// devbox
	dport := freePort()
	spec := fmt.Sprintf("name = \"sshbench\"\nbase = %q\n[ssh]\nport = %d\nauthorized_keys = [%q]\n[network]\nmode = \"none\"\n", testbase.DebianRef, dport, pub)
	os.WriteFile(filepath.Join(work, "devbox.toml"), []byte(spec), 0o644)
	dbx := func(args ...string) *exec.Cmd {
		cmd := exec.Command(devbox, append([]string{"--root", store.Root().Dir()}, args...)...)
		cmd.Dir = work
		return cmd
	}
	dbx("rm", "sshbench").Run()
	if out, err := dbx("up").CombinedOutput(); err != nil {
		return fmt.Errorf("devbox up: %v %s", err, out)
	}
	defer dbx("rm", "sshbench").Run()

	// OpenSSH's sshd with the same key, on the same machine.
	sport := freePort()
	hostKey := filepath.Join(work, "sshd_host_key")
	exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).Run()
	cfg := filepath.Join(work, "sshd_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\nSubsystem sftp internal-sftp\n", sport, hostKey, pub)), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	sshd := exec.Command("/usr/sbin/sshd", "-D", "-f", cfg)
	if err := sshd.Start(); err != nil {
		return fmt.Errorf("sshd: %w", err)
	}
	defer sshd.Process.Kill()
	time.Sleep(300 * time.Millisecond)

	opts := []string{"-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"}
	login := func(port int) error {
		return exec.Command("ssh", append(opts, "-p", strconv.Itoa(port), "root@127.0.0.1", "true")...).Run()
	}
	var td, to []time.Duration
	for i := 0; i < runs+2; i++ {
		for _, p := range []struct {
			port int
			out  *[]time.Duration
		}{{dport, &td}, {sport, &to}} {
			start := time.Now()
			if err := login(p.port); err != nil {
				return fmt.Errorf("ssh to %d: %w", p.port, err)
			}
			if i >= 2 {
				*p.out = append(*p.out, time.Since(start))
			}
		}
	}
	fmt.Printf("key login + true     devbox %v  OpenSSH sshd %v  ratio %.2f (goal <= 0.50)\n", median(td).Round(100*time.Microsecond), median(to).Round(100*time.Microsecond), ratio(td, to))

	// Idle memory of the init + SSH server.
	if out, err := dbx("ps", "--json").Output(); err == nil {
		// The store may hold other environments: this one, by name.
		var envs []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Pid    int    `json:"pid"`
		}
		json.Unmarshal(out, &envs)
		for _, e := range envs {
			if e.Name == "sshbench" && e.Status == "running" {
				time.Sleep(time.Second)
				fmt.Printf("idle RSS of init+sshd %s (goal <= 20 MiB)\n", rss(e.Pid))
			}
		}
	}

	// up of a built environment until ssh true succeeds.
	var tu []time.Duration
	for i := 0; i < 5; i++ {
		dbx("down").Run()
		start := time.Now()
		if out, err := dbx("up").CombinedOutput(); err != nil {
			return fmt.Errorf("up: %v %s", err, out)
		}
		if err := login(dport); err != nil {
			return err
		}
		tu = append(tu, time.Since(start))
	}
	fmt.Printf("up until ssh true    devbox %v (goal <= 100ms; includes one ssh login)\n", median(tu).Round(100*time.Microsecond))

	// SFTP download, the same file size from each.
	if sftpMB > 0 {
		hostFile := filepath.Join(work, "big")
		exec.Command("dd", "if=/dev/urandom", "of="+hostFile, "bs=1M", fmt.Sprint("count=", sftpMB)).Run()
		if out, err := exec.Command("ssh", append(opts, "-p", strconv.Itoa(dport), "root@127.0.0.1", fmt.Sprintf("head -c %dM /dev/urandom > /tmp/big", sftpMB))...).CombinedOutput(); err != nil {
			return fmt.Errorf("make file: %v %s", err, out)
		}
		get := func(port int, path string) (time.Duration, error) {
			cmd := exec.Command("sftp", append(opts, "-P", strconv.Itoa(port), "-b", "-", "root@127.0.0.1")...)
			cmd.Stdin = strings.NewReader("get " + path + " /dev/null\n")
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				return 0, fmt.Errorf("sftp: %v %s", err, out)
			}
			return time.Since(start), nil
		}
		var sd, so []time.Duration
		for i := 0; i < 3; i++ {
			d, err := get(dport, "/tmp/big")
			if err != nil {
				return err
			}
			o, err := get(sport, hostFile)
			if err != nil {
				return err
			}
			sd, so = append(sd, d), append(so, o)
		}
		fmt.Printf("sftp get %d MB        devbox %v  OpenSSH internal-sftp %v  ratio %.2f (goal <= 1.10)\n", sftpMB, median(sd).Round(time.Millisecond), median(so).Round(time.Millisecond), ratio(sd, so))
	}
	return nil
}

func rss(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "?"
}

func ratio(a, b []time.Duration) float64 { return float64(median(a)) / float64(median(b)) }

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
