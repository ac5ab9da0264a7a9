// Command dockerfilebench builds the classic Dockerfile with Docker 20.10's
// BuildKit (Debian's docker.io, a daemon of its own), the same Dockerfile
// as a devbox base (base = "dockerfile:…") and the devbox.toml that says
// the same, each from nothing but the Debian base, cold and again after
// one edit (the root password: a RUN line in the Dockerfile, [ssh] password
// in the devbox.toml). CentOS's mirrors and nodejs.org cannot be reached
// here: the Dockerfile's base is Debian, apt-get stands for yum, and both
// take the same Node 12.9.1 (a stand-in tarball) from a server on this
// host.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/devbox/devbox/internal/benchmark"

	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
)

// classicArgs are the classic Dockerfile's build args for Debian, the
// same for Docker's build and devbox's; mirror serves Node.
func classicArgs(mirror string) [][2]string {
	return [][2]string{
		{"INSTALL", "eval apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends"},
		{"PACKAGES", "gcc g++ libpcre3-dev libssl-dev make perl zlib1g zlib1g-dev vim openssh-server curl ca-certificates"},
		{"NODE_URL", mirror + "/v12.9.1/node-v12.9.1-linux-x64.tar.gz"},
		{"NPM_REGISTRY", "http://registry.example.com/"},
	}
}

// dockerfileSpec is the devbox.toml that builds the classic Dockerfile
// with classicArgs and the root password.
func dockerfileSpec(mirror, password string) string {
	var b strings.Builder
	b.WriteString("name = \"classic-df\"\nbase = \"dockerfile:Dockerfile\"\n\n[dockerfile.args]\nBASE = \"debootstrap:bookworm\"\n")
	for _, kv := range append(classicArgs(mirror), [2]string{"ROOT_PASSWORD", password}) {
		fmt.Fprintf(&b, "%s = %q\n", kv[0], kv[1])
	}
	return b.String()
}

const tomlSpec = `name = "classic-toml"
base = "debootstrap:bookworm"
workdir = "/var/www"

[packages]
install = ["gcc", "gcc-c++", "pcre-devel", "openssl-devel", "make", "perl", "zlib", "zlib-devel", "vim"]

[node]
version = "12.9.1"
mirror = "%s"

[npm]
registry = "http://registry.example.com/"

[ssh]
password = "%s"
`

func main() {
	devbox := flag.String("devbox", "bin/devbox", "devbox binary (absolute)")
	rounds := flag.Int("rounds", 3, "interleaved rounds (medians are reported)")
	showSteps := flag.Bool("steps", false, "print each devbox build's steps with their times (to stderr)")
	flag.Parse()
	steps := io.Discard
	if *showSteps {
		steps = os.Stderr
	}
	if err := run(*devbox, *rounds, steps); err != nil {
		log.Fatal(err)
	}
}

func run(devbox string, rounds int, steps io.Writer) error {
	mirror, stop, err := nodeMirror()
	if err != nil {
		return err
	}
	defer stop()
	cache, img, err := testbase.DebianImage(func(m string) { log.Print(m) })
	if err != nil {
		return err
	}
	dk, err := newDockerSide(cache, img, mirror)
	if err != nil {
		return err
	}
	defer dk.stop()
	dockerfile := testbase.ClassicDockerfile()
	sides := []benchmark.Side{
		{Name: "Docker 20.10 BuildKit, the classic Dockerfile", Measure: dk.measure},
		{Name: "devbox, the classic Dockerfile as its base", Measure: func() ([]time.Duration, error) {
			spec := func(password string) string { return dockerfileSpec(mirror, password) }
			return measure(devbox, spec, map[string][]byte{"Dockerfile": dockerfile}, steps)
		}},
		{Name: "devbox, the devbox.toml that says the same", Measure: func() ([]time.Duration, error) {
			spec := func(password string) string { return fmt.Sprintf(tomlSpec, mirror, password) }
			return measure(devbox, spec, nil, steps)
		}},
	}
	figures := []string{"cold", "after the edit"}
	medians, err := benchmark.Interleave(sides, benchmark.Rounds{N: rounds, Logf: log.Printf}, figures)
	if err != nil {
		return err
	}
	fmt.Printf("medians of %d interleaved rounds; the edit is the root password, a build arg of a late RUN (the [ssh] password in the devbox.toml)\n", rounds)
	benchmark.Report(os.Stdout, sides, figures, medians)
	return nil
}

// measure builds spec on a fresh state root, then again with the other
// password.
func measure(devbox string, spec func(password string) string, files map[string][]byte, steps io.Writer) ([]time.Duration, error) {
	cache, img, err := testbase.DebianImage(func(m string) { log.Print(m) })
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("/var/tmp", "dockerfilebench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	if err := testbase.Seed(cache, img, root); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "project")
	os.MkdirAll(dir, 0o755)
	for name, data := range files {
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	build := func(password string) (time.Duration, error) {
		os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(spec(password)), 0o644)
		took, out, err := benchmark.Timed(dir, devbox, "--root", root, "build")
		fmt.Fprintf(steps, "--- %s, password %q\n%s", filepath.Base(root), password, out)
		return took, err
	}
	cold, err := build("root")
	if err != nil {
		return nil, err
	}
	edit, err := build("changed")
	return []time.Duration{cold, edit}, err
}

// nodeMirror serves a nodejs.org-shaped dist of a stand-in Node 12.9.1 (a
// node that answers --version, an npm that keeps config set) as .tar.gz
// (the Dockerfile's curl) and .tar.xz with SHASUMS256.txt (devbox's
// [node] mirror), on an address build containers reach.
func nodeMirror() (string, func(), error) {
	top, err := os.MkdirTemp("", "dockerfilebench-node-")
	if err != nil {
		return "", nil, err
	}
	d := filepath.Join(top, "node-v12.9.1-linux-x64")
	os.MkdirAll(filepath.Join(d, "bin"), 0o755)
	os.WriteFile(filepath.Join(d, "bin", "node"), []byte("#!/bin/sh\necho v12.9.1\n"), 0o755)
	os.WriteFile(filepath.Join(d, "bin", "npm"), []byte("#!/bin/sh\n[ \"$1 $2\" = \"config set\" ] && echo \"$3=$4\" >> \"$HOME/.npmrc\"\nexit 0\n"), 0o755)
	dist := filepath.Join(top, "dist", "v12.9.1")
	os.MkdirAll(dist, 0o755)
	var sums strings.Builder
	for _, z := range []string{"z", "J"} {
		name := "node-v12.9.1-linux-x64.tar." + map[string]string{"z": "gz", "J": "xz"}[z]
		if out, err := exec.Command("tar", "-C", top, "-c"+z+"f", filepath.Join(dist, name), filepath.Base(d)).CombinedOutput(); err != nil {
			return "", nil, fmt.Errorf("tar: %v %s", err, out)
		}
		data, _ := os.ReadFile(filepath.Join(dist, name))
		sum := sha256.Sum256(data)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	os.WriteFile(filepath.Join(dist, "SHASUMS256.txt"), []byte(sums.String()), 0o644)
	os.WriteFile(filepath.Join(top, "dist", "index.json"), []byte(`[{"version":"v12.9.1","lts":false}]`), 0o644)
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(filepath.Join(top, "dist")))}
	go srv.Serve(ln)
	host, err := testenv.HostAddress()
	if err != nil {
		return "", nil, err
	}
	url := fmt.Sprintf("http://%s:%d", host, ln.Addr().(*net.TCPAddr).Port)
	return url, func() { srv.Close(); os.RemoveAll(top) }, nil
}
