package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// imageView is what the oracle tests compare of an image: its files,
// flattened, and the config `docker run` and a FROM read.
type imageView struct {
	files map[string]fileView
	cfg   configView
}

// fileView is one file as the flattened image holds it. A hard link is
// seen as its target (which of the names is the link depends on the
// order a tool writes them in).
type fileView struct {
	Type     byte
	Mode     int64
	UID, GID int
	Sum      string // sha256 of a regular file's content
	Link     string // a symlink's target
	Dev      string // a device's major:minor
	MTime    time.Time
}

// configView is the config, with empty and absent made the same.
type configView struct {
	Env, Cmd, Entrypoint, Shell, OnBuild, ExposedPorts, Volumes []string
	User, WorkingDir, StopSignal                                string
	Labels                                                      map[string]string
	Healthcheck                                                 *v1.HealthConfig
}

// loadImage reads a `docker save` / `devbox build --output type=docker`
// tarball.
func loadImage(t *testing.T, file string) imageView {
	t.Helper()
	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	files, err := flatFiles(rc)
	if err != nil {
		t.Fatalf("read %s's files: %v", file, err)
	}
	return imageView{files: files, cfg: viewConfig(cf.Config)}
}

func flatFiles(r io.Reader) (map[string]fileView, error) {
	files := map[string]fileView{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		} else if err != nil {
			return nil, err
		}
		name := "/" + strings.Trim(path.Clean("/"+h.Name), "/")
		f := fileView{Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, MTime: h.ModTime.Truncate(time.Second)}
		switch h.Typeflag {
		case tar.TypeReg:
			sum := sha256.New()
			if _, err := io.Copy(sum, tr); err != nil {
				return nil, err
			}
			f.Sum = hex.EncodeToString(sum.Sum(nil))
		case tar.TypeSymlink:
			f.Link = h.Linkname
		case tar.TypeLink:
			target, ok := files["/"+strings.Trim(path.Clean("/"+h.Linkname), "/")]
			if !ok {
				return nil, fmt.Errorf("%s: hard link to %s, not seen before it", name, h.Linkname)
			}
			f = target
		case tar.TypeChar, tar.TypeBlock:
			f.Dev = fmt.Sprintf("%d:%d", h.Devmajor, h.Devminor)
		}
		files[name] = f
	}
}

func viewConfig(c v1.Config) configView {
	v := configView{Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, Shell: c.Shell, OnBuild: c.OnBuild,
		ExposedPorts: slices.Sorted(maps.Keys(c.ExposedPorts)), Volumes: slices.Sorted(maps.Keys(c.Volumes)),
		User: c.User, WorkingDir: c.WorkingDir, StopSignal: c.StopSignal, Labels: c.Labels, Healthcheck: c.Healthcheck}
	for _, l := range []*[]string{&v.Env, &v.Cmd, &v.Entrypoint, &v.Shell, &v.OnBuild, &v.ExposedPorts, &v.Volumes} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if len(v.Labels) == 0 {
		v.Labels = nil
	}
	return v
}

// diffImages says how got (devbox's) differs from want (Docker's): every
// path one has and the other lacks or holds otherwise, and each config
// field. Times are compared where they are not the build's own: a file
// whose time in Docker's image is before since came from the context or
// the base, and keeps that time in both.
func diffImages(want, got imageView, since time.Time) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(want.files)) {
		w, ok := got.files[p]
		if !ok {
			out = append(out, fmt.Sprintf("%s: only in Docker's (%s)", p, describe(want.files[p])))
			continue
		}
		if d := diffFile(want.files[p], w, since); d != "" {
			out = append(out, p+": "+d)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got.files)) {
		if _, ok := want.files[p]; !ok {
			out = append(out, fmt.Sprintf("%s: only in devbox's (%s)", p, describe(got.files[p])))
		}
	}
	wc, gc := reflect.ValueOf(want.cfg), reflect.ValueOf(got.cfg)
	for i := range wc.NumField() {
		if !reflect.DeepEqual(wc.Field(i).Interface(), gc.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("config %s: Docker %s, devbox %s", wc.Type().Field(i).Name, show(wc.Field(i)), show(gc.Field(i))))
		}
	}
	return out
}

func diffFile(want, got fileView, since time.Time) string {
	if want.Type == tar.TypeDir || !want.MTime.Before(since) {
		want.MTime, got.MTime = time.Time{}, time.Time{}
	}
	if want == got {
		return ""
	}
	return fmt.Sprintf("Docker %s, devbox %s", describe(want), describe(got))
}

func describe(f fileView) string {
	s := fmt.Sprintf("type %c mode %04o %d:%d", f.Type, f.Mode, f.UID, f.GID)
	switch {
	case f.Sum != "":
		s += " sha256 " + f.Sum[:12]
	case f.Link != "":
		s += " -> " + f.Link
	case f.Dev != "":
		s += " dev " + f.Dev
	}
	if !f.MTime.IsZero() {
		s += " mtime " + f.MTime.UTC().Format(time.RFC3339)
	}
	return s
}

func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		return fmt.Sprintf("%+v", v.Elem().Interface())
	}
	return fmt.Sprintf("%q", v.Interface())
}
