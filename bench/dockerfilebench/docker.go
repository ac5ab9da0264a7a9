package main

import (
	"net/http/httptest"
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
	d    *testenv.Docker
	srv  *httptest.Server // the registry of the base
	ctx  string
	args []string
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
	ds := &dockerSide{d: d, srv: srv, args: []string{"--build-arg", "BASE=" + ref}}
	for _, kv := range classicArgs(mirror) {
		ds.args = append(ds.args, "--build-arg", kv[0]+"="+kv[1])
	}
	ds.ctx, err = os.MkdirTemp("", "dockerfilebench-docker-")
	if err == nil {
		err = os.WriteFile(filepath.Join(ds.ctx, "Dockerfile"), testbase.ClassicDockerfile(), 0o644)
	}
	if err == nil {
		_, err = d.Run("pull", ref)
	}
	if err != nil {
		ds.stop()
		return nil, err
	}
	return ds, nil
}

func (ds *dockerSide) stop() {
	ds.d.Stop()
	ds.srv.Close()
	if ds.ctx != "" {
		os.RemoveAll(ds.ctx)
	}
}

// measure builds with an empty build cache, then with the other password.
func (ds *dockerSide) measure() ([]time.Duration, error) {
	if _, err := ds.d.Run("builder", "prune", "-af"); err != nil {
		return nil, err
	}
	build := func(password string) (time.Duration, error) {
		args := append([]string{"build", "--network=host", "-t", "classic"}, ds.args...)
		start := time.Now()
		_, err := ds.d.Run(append(args, "--build-arg", "ROOT_PASSWORD="+password, ds.ctx)...)
		return time.Since(start), err
	}
	cold, err := build("root")
	if err != nil {
		return nil, err
	}
	edit, err := build("changed")
	return []time.Duration{cold, edit}, err
}
