package rootfs

import (
	"compress/gzip"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Output is where `devbox build --output` writes what it built, in the
// words of docker buildx's --output: type=docker is a tarball that
// `docker load` reads, tagged Name; type=tar is the image's filesystem,
// flattened. Dest "-" is standard output.
type Output struct {
	Type, Dest, Name string
}

// ParseOutput reads "type=docker,dest=FILE[,name=REF]" or
// "type=tar,dest=FILE"; a bare "-" is type=tar to standard output, as in
// buildx. A bare path is buildx's type=local, the image's files as the
// host's: devbox refuses it (a set-id file of the image would be one on
// the host).
func ParseOutput(s string) (Output, error) {
	if s == "-" {
		return Output{Type: "tar", Dest: s}, nil
	}
	if !strings.Contains(s, "=") {
		return Output{}, fmt.Errorf("--output %q: devbox does not write an image's files into a directory (type=local); use type=tar,dest=FILE or type=docker,dest=FILE", s)
	}
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return Output{}, fmt.Errorf("--output %q: %w", s, err)
	}
	var o Output
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "type":
			o.Type = v
		case "dest":
			o.Dest = v
		case "name":
			o.Name = v
		default:
			return Output{}, fmt.Errorf("--output %q: unknown key %q (type, dest, name)", s, k)
		}
	}
	switch {
	case o.Type != "docker" && o.Type != "tar":
		return Output{}, fmt.Errorf("--output %q: type %q is not one devbox writes (docker, tar)", s, o.Type)
	case o.Dest == "":
		return Output{}, fmt.Errorf("--output %q: dest= is needed", s)
	}
	return o, nil
}

// WriteOutput exports layerDirs (bottom first) with cfg as o says;
// stdout is dest "-".
func WriteOutput(ctx context.Context, layerDirs []string, cfg Config, o Output, stdout io.Writer) (err error) {
	// Stored, not compressed, as `docker save` writes: gzip at the
	// default level took most of the time of a build.
	img, err := exportImage(ctx, layerDirs, cfg, nil, []tarball.LayerOption{tarball.WithCompressionLevel(gzip.NoCompression)})
	if err != nil {
		return err
	}
	w := stdout
	if o.Dest != "-" {
		f, err := os.Create(o.Dest)
		if err != nil {
			return fmt.Errorf("output: %w", err)
		}
		w = f
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("output: %w", cerr)
			}
			if err != nil {
				os.Remove(o.Dest)
			}
		}()
	}
	switch o.Type {
	case "docker":
		tag, err := name.NewTag(o.Name)
		if err != nil {
			return fmt.Errorf("output name %q: %w", o.Name, err)
		}
		return tarball.Write(tag, img, w)
	default:
		rc := mutate.Extract(img)
		defer rc.Close()
		_, err = io.Copy(w, rc)
		return err
	}
}
