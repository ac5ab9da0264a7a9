// Command buildbench measures provisioning: a cold build of the classic
// environment (CentOS-named toolchain on Debian, Node 12.9.1 from the npm
// registry), a warm build, a rebuild after a Node version change, and the
// disk a second environment from the same build takes.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/devbox/devbox/internal/benchmark"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/rootfs"

	"github.com/devbox/devbox/internal/testbase"
)

const spec = `name = %q
base = %q
workdir = "/var/www"

[packages]
install = ["gcc", "gcc-c++", "pcre-devel", "openssl-devel", "make", "perl", "zlib", "zlib-devel"]

[node]
version = %q
mirror = "npm"

[ssh]
port = %d

[network]
mode = "none"
`

func main() {
	devbox := flag.String("devbox", "bin/devbox", "devbox binary (absolute)")
	flag.Parse()
	if err := run(*devbox); err != nil {
		log.Fatal(err)
	}
}

func run(devbox string) error {
	cache, img, err := testbase.DebianImage(func(m string) { log.Print(m) })
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("/var/tmp", "buildbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	// A fresh state root that has the base, nothing else.
	if err := testbase.Seed(cache, img, root); err != nil {
		return err
	}
	dir := filepath.Join(root, "project")
	os.MkdirAll(dir, 0o755)
	write := func(name, node string, port int) {
		os.WriteFile(filepath.Join(dir, "devbox.toml"), []byte(fmt.Sprintf(spec, name, testbase.DebianRef, node, port)), 0o644)
	}
	dbx := func(args ...string) (time.Duration, error) {
		took, _, err := benchmark.Timed(dir, devbox, append([]string{"--root", root}, args...)...)
		return took, err
	}
	write("bench1", "12.9.1", 2311)
	cold, err := dbx("build")
	if err != nil {
		return err
	}
	warm, err := dbx("build")
	if err != nil {
		return err
	}
	write("bench1", "12.10.0", 2311)
	rebuild, err := dbx("build")
	if err != nil {
		return err
	}
	fmt.Printf("cold build %v  warm build %v (%.3fx cold)  rebuild after a Node change %v (%.2fx cold; docker build reruns every later step)\n",
		cold.Round(time.Millisecond), warm.Round(time.Millisecond), float64(warm)/float64(cold), rebuild.Round(time.Millisecond), float64(rebuild)/float64(cold))

	// A teammate's machine: the same spec and lock, a fresh state root
	// with only the base, and the team's cache on a loopback registry.
	shared, err := fromCache(devbox, dir, cache, img, cold)
	if err != nil {
		return err
	}
	fmt.Println(shared)

	// Two environments from the same build: the second costs its own
	// state only.
	for i, name := range []string{"bench1", "bench2"} {
		write(name, "12.10.0", 2311+i)
		if _, err := dbx("up"); err != nil {
			return err
		}
		defer dbx("rm", name)
	}
	out, _ := exec.Command("du", "-sb", state.Root(root).Env("bench2").Dir()).Output()
	layers, _ := exec.Command("du", "-sbL", state.Root(root).Builds()).Output()
	fmt.Printf("disk of a second environment: %s bytes (goal < 1 MiB); the shared build layers: %s bytes\n", strings.Fields(string(out))[0], strings.Fields(string(layers))[0])
	return nil
}

// fromCache pushes the build in dir to a loopback cache and times `up` of
// the same spec and lock on a second state root that pulls it.
func fromCache(devbox, dir string, cache *rootfs.Store, img *rootfs.Image, cold time.Duration) (string, error) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	specFile := filepath.Join(dir, "devbox.toml")
	data, err := os.ReadFile(specFile)
	if err != nil {
		return "", err
	}
	withCache := string(data) + fmt.Sprintf("\n[cache]\nimage = %q\n", strings.TrimPrefix(reg.URL, "http://")+"/team/cache")
	os.WriteFile(specFile, []byte(withCache), 0o644)
	defer os.WriteFile(specFile, data, 0o644)
	root := filepath.Dir(dir)
	if out, err := exec.Command(devbox, "--root", root, "-f", specFile, "cache", "push").CombinedOutput(); err != nil {
		return "", fmt.Errorf("cache push: %v\n%s", err, out)
	}
	other, err := os.MkdirTemp("/var/tmp", "buildbench-teammate-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(other)
	if err := testbase.Seed(cache, img, other); err != nil {
		return "", err
	}
	project := filepath.Join(other, "project")
	os.MkdirAll(project, 0o755)
	os.WriteFile(filepath.Join(project, "devbox.toml"), []byte(withCache), 0o644)
	lockData, _ := os.ReadFile(filepath.Join(dir, "devbox.lock"))
	os.WriteFile(filepath.Join(project, "devbox.lock"), lockData, 0o644)
	start := time.Now()
	cmd := exec.Command(devbox, "--root", other, "up", "--locked")
	cmd.Dir = project
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("teammate's up: %v\n%s", err, out)
	}
	up := time.Since(start)
	rm := exec.Command(devbox, "--root", other, "rm")
	rm.Dir = project
	rm.Run()
	return fmt.Sprintf("teammate's up from the cache %v vs cold build %v: %.2fx (goal <= 0.2x)", up.Round(time.Millisecond), cold.Round(time.Millisecond), float64(up)/float64(cold)), nil
}
