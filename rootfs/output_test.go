package rootfs

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestParseOutput(t *testing.T) {
	for in, want := range map[string]Output{
		"type=docker,dest=/x.tar,name=a/b:1": {Type: "docker", Dest: "/x.tar", Name: "a/b:1"},
		"type=tar,dest=f":                    {Type: "tar", Dest: "f"},
		"-":                                  {Type: "tar", Dest: "-"},
	} {
		if got, err := ParseOutput(in); err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	for in, msg := range map[string]string{"outdir": "type=local", "type=oci,dest=x": "not one devbox writes",
		"type=docker": "dest= is needed", "type=tar,dest=x,compression=zstd": "unknown key"} {
		if _, err := ParseOutput(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", in, err, msg)
		}
	}
}

// TestWriteOutputConfig: what a Dockerfile records reaches the config of
// the docker tarball, as `docker save` would hold it.
func TestWriteOutputConfig(t *testing.T) {
	layer := t.TempDir()
	os.WriteFile(filepath.Join(layer, "f"), []byte("x"), 0o644)
	cfg := Config{Env: []string{"A=1"}, User: "1000", WorkingDir: "/w", Cmd: []string{"c"}, Labels: map[string]string{"l": "v"},
		ExposedPorts: []string{"80/tcp"}, Volumes: []string{"/data"}, Shell: []string{"/bin/bash", "-c"}, OnBuild: []string{"RUN x"},
		Healthcheck: &v1.HealthConfig{Test: []string{"NONE"}, Interval: time.Second}, StopSignal: "SIGQUIT", Author: "me"}
	out := filepath.Join(t.TempDir(), "img.tar")
	if err := WriteOutput(context.Background(), []string{layer}, cfg, Output{Type: "docker", Dest: out, Name: "x:1"}, nil); err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if want := imageConfig(cfg); !reflect.DeepEqual(cf.Config, want) || cf.Author != "me" {
		t.Errorf("config %+v author %q, want %+v", cf.Config, cf.Author, want)
	}
	if got := configOf(cf); !reflect.DeepEqual(got, cfg) {
		t.Errorf("read back %+v, want %+v", got, cfg)
	}
}
