package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/internal/testenv"
	"github.com/devbox/devbox/rootfs"
)

// dockerSide builds the classic Dockerfile with Docker: the same Debian
// base (pulled once from a loopback registry, before any timing), the
// same build args, its RUN steps on the host's network (the daemon has
// no bridge; devbox's steps have theirs).
type dockerSide struct {
	d      *testenv.Docker
	ctx    string
	args   []string
	stopFn func()
}

func newDockerSide(cache *rootfs.Store, img *rootfs.Image, mirror string) (*dockerSide, error) {
	ref, _, srv, err := testbase.ServeDebian(cache, img)
	if err != nil {
		return nil, err
	}
	d, err := testenv.NewDocker()
	if err != nil {
		srv.Close()
		return nil, err
	}
	ctx, err := os.MkdirTemp("", "dockerfilebench-docker-")
	if err == nil {
		err = os.WriteFile(filepath.Join(ctx, "Dockerfile"), testbase.ClassicDockerfile(), 0o644)
	}
	if err == nil {
		_, err = d.Run("pull", ref)
	}
	ds := &dockerSide{d: d, ctx: ctx, stopFn: func() { d.Stop(); srv.Close(); os.RemoveAll(ctx) }}
	if err != nil {
		ds.stop()
		return nil, err
	}
	ds.args = []string{"--build-arg", "BASE=" + ref,
		"--build-arg", "INSTALL=eval apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends",
		"--build-arg", "PACKAGES=gcc g++ libpcre3-dev libssl-dev make perl zlib1g zlib1g-dev vim openssh-server curl ca-certificates",
		"--build-arg", fmt.Sprintf("NODE_URL=%s/v12.9.1/node-v12.9.1-linux-x64.tar.gz", mirror),
		"--build-arg", "NPM_REGISTRY=http://registry.example.com/"}
	return ds, nil
}

func (ds *dockerSide) stop() { ds.stopFn() }

// measure builds with an empty build cache, then with the other password.
func (ds *dockerSide) measure() (cold, edit time.Duration, err error) {
	if _, err := ds.d.Run("builder", "prune", "-af"); err != nil {
		return 0, 0, err
	}
	build := func(password string) (time.Duration, error) {
		args := append([]string{"build", "--network=host", "-t", "classic"}, ds.args...)
		start := time.Now()
		_, err := ds.d.Run(append(args, "--build-arg", "ROOT_PASSWORD="+password, ds.ctx)...)
		return time.Since(start), err
	}
	if cold, err = build("root"); err != nil {
		return 0, 0, err
	}
	edit, err = build("changed")
	return cold, edit, err
}
