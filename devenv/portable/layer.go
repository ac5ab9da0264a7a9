package portable

import (
	"archive/tar"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/devbox/devbox/rootfs"
	"github.com/devbox/devbox/sshd"
)

// Where the image keeps devbox's own files. The directory is hidden and
// root-owned; the user's tree never has one of this name.
const (
	Dir        = "/.devbox"
	BinaryPath = Dir + "/bin/devbox"
	ConfigPath = Dir + "/sshd.json"
	// SecretDir is where a runtime mounts what must not be in the image:
	// the files host_key, authorized_keys and password_hash.
	SecretDir = "/etc/devbox"
	// ServeArg is the binary's command that Serve runs under.
	ServeArg = "serve"
	// SSHPort is the port the server listens on inside the container.
	SSHPort = 22
)

// Layer is the layer that makes a build runnable anywhere: the devbox
// binary at binary (a static one: this very executable) and cfg, the SSH
// server's configuration without secrets.
func Layer(binary string, cfg sshd.Config) (v1.Layer, error) {
	if cfg.PasswordHash != "" {
		return nil, fmt.Errorf("portable layer: a password hash does not go into an image")
	}
	conf, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := checkStatic(binary); err != nil {
		return nil, err
	}
	st, err := os.Stat(binary)
	if err != nil {
		return nil, fmt.Errorf("portable layer: %w", err)
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeLayer(pw, binary, st.Size(), conf)) }()
		return pr, nil
	})
}

// writeLayer writes the layer's tar: the directories, the binary and the
// configuration, owned by root.
func writeLayer(w io.Writer, binary string, size int64, conf []byte) error {
	tw := tar.NewWriter(w)
	for _, d := range []string{Dir, path.Dir(BinaryPath)} {
		if err := tw.WriteHeader(header(d+"/", tar.TypeDir, 0o755, 0)); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(header(BinaryPath, tar.TypeReg, 0o755, size)); err != nil {
		return err
	}
	f, err := os.Open(binary)
	if err != nil {
		return err
	}
	defer f.Close()
	if n, err := io.Copy(tw, io.LimitReader(f, size)); err != nil || n != size {
		return fmt.Errorf("copy %s: %d of %d bytes: %v", binary, n, size, err)
	}
	if err := tw.WriteHeader(header(ConfigPath, tar.TypeReg, 0o644, int64(len(conf)))); err != nil {
		return err
	}
	if _, err := tw.Write(conf); err != nil {
		return err
	}
	return tw.Close()
}

// checkStatic refuses a binary that needs a dynamic loader: the image's
// libc is not the one it was linked against, or there is none.
func checkStatic(binary string) error {
	f, err := elf.Open(binary)
	if err != nil {
		return fmt.Errorf("portable layer: %s: %w", binary, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("portable layer: %s is linked dynamically; an image needs a static devbox (make build: CGO_ENABLED=0)", binary)
		}
	}
	return nil
}

// header is an entry owned by root with the epoch as its time: the same
// binary and configuration make the same layer, whenever pushed.
func header(name string, typ byte, mode, size int64) *tar.Header {
	return &tar.Header{Name: name[1:], Typeflag: typ, Mode: mode, Size: size,
		ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
}

// ImageConfig is the config of the image made of a build whose config is
// build: its environment and workdir, devbox's entrypoint, run as root
// (the server switches to each login's user), and the SSH port exposed
// with the spec's own ports.
func ImageConfig(build rootfs.Config, ports []int) rootfs.Config {
	exposed := []string{strconv.Itoa(SSHPort) + "/tcp"}
	for _, p := range ports {
		exposed = append(exposed, strconv.Itoa(p)+"/tcp")
	}
	// The build's Dev Container metadata label goes along, for the CLI
	// and VS Code (spec.Spec.ImageMetadata).
	labels := maps.Clone(build.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels["dev.devbox.entrypoint"] = "ssh"
	return rootfs.Config{
		Env:          build.Env,
		WorkingDir:   build.WorkingDir,
		User:         "0:0",
		Entrypoint:   []string{BinaryPath, ServeArg},
		ExposedPorts: exposed,
		Labels:       labels,
	}
}
