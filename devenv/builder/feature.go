package builder

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/idle"
	"github.com/devbox/devbox/rootfs"
	container "github.com/devbox/devbox/runtime"
)

// A devcontainer.json's features are build steps between the base and
// devbox's own, as the Dev Container CLI adds them: each feature's folder
// (an OCI artifact's one layer, or a folder beside the devcontainer.json)
// is mounted read-only in a build container where its install.sh runs as
// root, with its options as upper-case variables and the users' names and
// homes (_REMOTE_USER…). They are ordered by dependsOn and installsAfter;
// devcontainer-lock.json, when there is one, pins each to a digest.

// Feature is a feature fetched: its folder and what its
// devcontainer-feature.json says.
type Feature struct {
	spec.Feature
	// Folder is its folder on the host (a local one's Dir, or where the
	// artifact is unpacked); Digest the artifact's manifest digest, or
	// the local folder's content.
	Folder string
	Digest string
	Meta   FeatureMeta
	// label is its fragment of the image's metadata label.
	label json.RawMessage
}

// FeatureMeta is the part of devcontainer-feature.json devbox reads.
type FeatureMeta struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Options map[string]struct {
		Default any `json:"default"`
	} `json:"options"`
	InstallsAfter []string                   `json:"installsAfter"`
	DependsOn     map[string]json.RawMessage `json:"dependsOn"`
	ContainerEnv  map[string]string          `json:"containerEnv"`
	Privileged    bool                       `json:"privileged"`
	CapAdd        []string                   `json:"capAdd"`
	Mounts        []json.RawMessage          `json:"mounts"`
	Entrypoint    string                     `json:"entrypoint"`
}

// FeatureResolver fetches a feature; nil plans features by what the
// devcontainer.json says of them only (`devbox plan`).
type FeatureResolver func(spec.Feature) (*Feature, error)

// featureLock is devcontainer-lock.json.
type featureLock struct {
	Features map[string]struct {
		Version   string `json:"version"`
		Resolved  string `json:"resolved"`
		Integrity string `json:"integrity"`
	} `json:"features"`
}

// FetchFeatures returns a resolver that fetches OCI features into dir
// (by digest, once) and reads local ones where they are. pull's
// transport and idle timeout are the registry's, as for a base.
func FetchFeatures(ctx context.Context, dir string, s *spec.Spec, pull rootfs.PullOptions) (FeatureResolver, error) {
	var lk featureLock
	if s.FeaturesLock != "" {
		data, err := os.ReadFile(s.FeaturesLock)
		if err == nil {
			err = json.Unmarshal(data, &lk)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.FeaturesLock, err)
		}
	}
	return func(f spec.Feature) (*Feature, error) {
		out := &Feature{Feature: f}
		var err error
		if f.Dir != "" {
			out.Folder = f.Dir
			var bc *buildContext
			if bc, err = openContext(f.Dir); err == nil {
				out.Digest, err = bc.digest([]string{"."})
			}
		} else {
			pinned := lk.Features[f.Ref]
			out.Folder, out.Digest, err = fetchFeature(ctx, dir, f.Ref, pinned.Resolved, pinned.Integrity, pull)
		}
		if err != nil {
			return nil, fmt.Errorf("feature %s: %w", f.Ref, err)
		}
		if err := out.readMeta(); err != nil {
			return nil, fmt.Errorf("feature %s: %w", f.Ref, err)
		}
		return out, nil
	}, nil
}

// fetchFeature pulls the artifact ref (or the lock's resolved digest) and
// unpacks its one layer under dir/DIGEST.
func fetchFeature(ctx context.Context, dir, ref, resolved, integrity string, pull rootfs.PullOptions) (string, string, error) {
	if resolved != "" {
		ref = resolved
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", "", err
	}
	base := pull.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	// A registry that stops sending fails the build instead of hanging it.
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(idle.Transport(base, pull.IdleTimeout)))
	if err != nil {
		return "", "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", "", err
	}
	layers, err := img.Layers()
	if err != nil {
		return "", "", err
	}
	if len(layers) != 1 {
		return "", "", fmt.Errorf("%d layers: a feature has one", len(layers))
	}
	ld, err := layers[0].Digest()
	if err != nil {
		return "", "", err
	}
	if integrity != "" && integrity != ld.String() {
		return "", "", fmt.Errorf("its layer is %s, devcontainer-lock.json says %s", ld, integrity)
	}
	out := filepath.Join(dir, digest.Hex)
	if _, err := os.Stat(filepath.Join(out, "devcontainer-feature.json")); err == nil {
		return out, digest.String(), nil
	}
	blob, err := layers[0].Compressed()
	if err != nil {
		return "", "", err
	}
	defer blob.Close()
	return out, digest.String(), unpackFeature(blob, dir, out)
}

// unpackFeature extracts a feature's tar (gzipped or not) to out, whole
// or not at all.
func unpackFeature(blob io.Reader, dir, out string) error {
	br := bytes.NewBuffer(nil)
	head := make([]byte, 2)
	n, _ := io.ReadFull(blob, head)
	br.Write(head[:n])
	r := io.MultiReader(br, blob)
	if n == 2 && head[0] == 0x1f && head[1] == 0x8b {
		z, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		defer z.Close()
		r = z
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, "unpack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// Readable by the build container's root, which is not the host's.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := rootfs.ExtractTar(r, tmp, nil); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// readMeta reads the folder's devcontainer-feature.json and refuses what
// devbox does not do.
func (f *Feature) readMeta() error {
	data, err := os.ReadFile(filepath.Join(f.Folder, "devcontainer-feature.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &f.Meta); err != nil {
		return fmt.Errorf("devcontainer-feature.json: %w", err)
	}
	f.label = spec.FeatureMetadata(f.Ref, data)
	switch {
	case f.Meta.Privileged || len(f.Meta.CapAdd) > 0:
		return fmt.Errorf("asks for privileges (privileged, capAdd), which devbox does not give")
	case len(f.Meta.Mounts) > 0 || f.Meta.Entrypoint != "":
		return fmt.Errorf("needs mounts or an entrypoint of its own, which devbox does not do")
	}
	if _, ok := f.Meta.Options["version"]; ok && f.Value != nil {
		// getFeatureValueObject: the string is the version option's.
		f.Options = maps.Clone(f.Options)
		f.Options["version"] = *f.Value
	}
	for k := range f.Options {
		if _, ok := f.Meta.Options[k]; !ok {
			return fmt.Errorf("no option %q (it has: %s)", k, strings.Join(slices.Sorted(maps.Keys(f.Meta.Options)), ", "))
		}
	}
	if _, err := os.Stat(filepath.Join(f.Folder, "install.sh")); err != nil {
		return fmt.Errorf("no install.sh")
	}
	return nil
}

// addFeatures adds s's features, fetched by fetch, as steps, and their
// containerEnv to the plan's config.
func (p *Plan) addFeatures(s *spec.Spec, fetch FeatureResolver) error {
	if len(s.Features) == 0 {
		return nil
	}
	if fetch == nil {
		for _, f := range s.Features {
			p.add(len(p.Steps)-1, StepFeature, "feature "+f.Ref, "ref="+f.Ref, "options="+optionsLine(f.Options), "unresolved")
		}
		return nil
	}
	var fs []*Feature
	for _, f := range s.Features {
		got, err := fetch(f)
		if err != nil {
			return err
		}
		fs = append(fs, got)
	}
	fs, err := orderFeatures(fs, filepath.Dir(s.File))
	if err != nil {
		return err
	}
	for _, f := range fs {
		env := f.installEnv(s)
		st := p.add(len(p.Steps)-1, StepFeature, "feature "+f.Ref, "ref="+f.Ref, "digest="+f.Digest, "env="+strings.Join(env, "\x00"))
		st.Feature = f
		if len(f.Meta.ContainerEnv) > 0 && !hasVar(p.Config.Env, "PATH") {
			// ${PATH} is the one processes get when the image sets none.
			p.Config.Env = append([]string{"PATH=" + container.DefaultPath}, p.Config.Env...)
		}
		for _, k := range slices.Sorted(maps.Keys(f.Meta.ContainerEnv)) {
			p.Config.Env = setVar(p.Config.Env, k, expandVars(f.Meta.ContainerEnv[k], p.Config.Env))
		}
	}
	return nil
}

func optionsLine(opts map[string]string) string {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		kv = append(kv, k+"="+opts[k])
	}
	return strings.Join(kv, "\x00")
}

// installEnv is what install.sh gets besides the image's environment:
// every option (the devcontainer.json's value or the default) as an
// upper-case variable, and the users.
func (f *Feature) installEnv(s *spec.Spec) []string {
	var env []string
	for _, id := range slices.Sorted(maps.Keys(f.Meta.Options)) {
		v, ok := f.Options[id]
		if !ok {
			if d := f.Meta.Options[id].Default; d != nil {
				v = fmt.Sprint(d)
			}
		}
		env = append(env, optionVar(id)+"="+v)
	}
	home := "/root"
	if s.SSH.User != "root" {
		home = "/home/" + s.SSH.User
	}
	return append(env, "_REMOTE_USER="+s.SSH.User, "_REMOTE_USER_HOME="+home, "_CONTAINER_USER=root", "_CONTAINER_USER_HOME=/root")
}

// optionVar is an option id as install.sh sees it: upper case, anything
// but letters, digits and _ made _.
func optionVar(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			return r
		}
		return '_'
	}, id)
}

// setVar sets k in env.
func setVar(env []string, k, v string) []string {
	env = slices.Clone(env)
	for i, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// expandVars replaces ${X} and $X with env's X (containerEnv's
// "PATH": "/opt/x/bin:${PATH}").
func expandVars(v string, env []string) string {
	return os.Expand(v, func(k string) string {
		for _, kv := range env {
			if name, val, _ := strings.Cut(kv, "="); name == k {
				return val
			}
		}
		return ""
	})
}

// featureStep runs a feature's install.sh over b's layers.
func featureStep(ctx context.Context, s *spec.Spec, b *Result, st Step, tmp string, o Options) error {
	f := st.Feature
	const at = "/tmp/devbox-feature"
	proc := container.Process{
		Args: []string{"/bin/sh", "-c", "cd " + at + " && if [ -x /bin/bash ]; then exec /bin/bash ./install.sh; else exec /bin/sh ./install.sh; fi"},
		Env:  s.Environ(b.Image.Config, append(append([]string{"HOME=/root", "HOSTNAME=" + s.Hostname}, epochEnv(b.Plan.Epoch)...), f.installEnv(s)...)...),
		Cwd:  "/",
	}
	return runProcess(ctx, s, b, tmp, proc, o, runExtra{mounts: []container.Mount{{Source: f.Folder, Target: at, Readonly: true}}})
}
