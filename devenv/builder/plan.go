package builder

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/devenv/spec/dockerfile"
	"github.com/devbox/devbox/rootfs"
)

// StepKind names what a build step does.
type StepKind string

const (
	StepBase     StepKind = "base"
	StepPackages StepKind = "packages"
	StepNode     StepKind = "node"
	StepNPM      StepKind = "npm"
	StepUser     StepKind = "user"
	StepConfig   StepKind = "config"
	StepRun      StepKind = "run"
	// StepFrom starts a Dockerfile stage after the first; StepDocker is
	// one of its instructions that changes files.
	StepFrom   StepKind = "from"
	StepDocker StepKind = "dockerfile"
	// StepFeature is a devcontainer.json's feature.
	StepFeature StepKind = "feature"
)

// Step is one build step. Its Key is sha256(parent key + canonical step), so
// a change to a step invalidates it and everything after it, and nothing
// before it.
type Step struct {
	Kind StepKind
	// Summary is what the build prints for the step: "node 12.9.1".
	Summary string
	// Canonical is the step's full input, in a stable text form.
	Canonical string
	Key       string
	// Parent is the index in Plan.Steps of the step this one builds on;
	// -1 for a base (StepBase, StepFrom).
	Parent int
	// Command is a run step's shell command.
	Command string
	// Image is a base's image (nil for scratch, a stage, or one not
	// resolved yet).
	Image *rootfs.Image
	// Docker is a Dockerfile step's instruction, and From the step a COPY
	// --from=STAGE copies from (-1 for none).
	Docker *dockerfile.Step
	From   int
	// Mounts are, for each of a RUN's --mount, the step of the stage it
	// mounts from (-1 for none).
	Mounts []int
	// Feature is a feature step's feature, fetched.
	Feature *Feature
}

// Layered says whether the step makes a layer: bases do not.
func (st Step) Layered() bool { return st.Kind != StepBase && st.Kind != StepFrom }

// Plan is the ordered list of steps a spec implies; Steps[0] is the base.
// A Dockerfile base adds its stages' steps first, each stage starting
// with its own base (StepFrom), the target last; devbox's steps follow.
type Plan struct {
	Steps []Step
	// Config is the image config the steps run over: the base image's,
	// or what the Dockerfile's target stage ends with.
	Config rootfs.Config
	// Dockerfile is the parsed Dockerfile of a dockerfile: base, and
	// context its build context as its COPY steps were keyed.
	Dockerfile *dockerfile.File
	context    *buildContext
	// remote fetches ADD's downloads (nil: keyed without their content).
	remote *remoteFiles
	// Spec is the spec the plan builds: a devcontainer.json's merged
	// over its image's metadata (spec.WithImageMetadata).
	Spec *spec.Spec
	// Epoch is the build's source date epoch (0: none) and EpochFrom
	// where it comes from (reproducible.go). Every step's key holds it:
	// the same step with another epoch makes another layer.
	Epoch     int64
	EpochFrom string
}

// Layered are the steps that make layers, in order.
func (p *Plan) Layered() []Step {
	var out []Step
	for _, st := range p.Steps {
		if st.Layered() {
			out = append(out, st)
		}
	}
	return out
}

// baseImage is what the spec's steps run over: the base image, or for a
// Dockerfile one that stands for its target stage (its config, and a
// digest that is its last step's key); either with the config the plan
// ends with (features add to its environment).
func baseImage(s *spec.Spec, p *Plan) *rootfs.Image {
	if p.Dockerfile == nil {
		// The image's, with the features' containerEnv.
		img := *p.Steps[0].Image
		img.Config = p.Config
		return &img
	}
	img := &rootfs.Image{Ref: s.Base, Config: p.Config}
	last := p.target()
	img.Digest = "sha256:" + p.Steps[last].Key
	for i := last; i >= 0; i = p.Steps[i].Parent {
		if st := p.Steps[i]; st.Parent < 0 {
			if st.Image != nil {
				img.Layers = st.Image.Layers
			}
			break
		}
	}
	return img
}

// featureFragments are the label fragments of the plan's features, in
// install order.
func (p *Plan) featureFragments() []json.RawMessage {
	var features []json.RawMessage
	for _, st := range p.Steps {
		if st.Feature != nil {
			features = append(features, st.Feature.label)
		}
	}
	return features
}

// featureLabel is label with the plan's features' fragments after it.
func featureLabel(label string, p *Plan) string {
	joined, err := spec.JoinMetadata(label, p.featureFragments()...)
	if err != nil {
		return label // not JSON: WithImageMetadata said so already
	}
	return joined
}

// labelMetadata gives img the Dev Container metadata label of what s
// builds over it, for push to publish (the CLI and VS Code read it).
func labelMetadata(s *spec.Spec, p *Plan, img *rootfs.Image) error {
	// A devbox.toml's Dockerfile keeps its own LABEL, as docker build
	// does; the CLI labels what it builds from a devcontainer.json anew.
	base := img.Config.Labels[spec.MetadataLabel]
	if s.FromDevcontainer() {
		base = p.baseLabel()
	}
	label, err := s.ImageMetadata(base, p.featureFragments()...)
	if err != nil {
		return err
	}
	img.Config.Labels = maps.Clone(img.Config.Labels)
	if label == "" {
		delete(img.Config.Labels, spec.MetadataLabel)
		return nil
	}
	if img.Config.Labels == nil {
		img.Config.Labels = map[string]string{}
	}
	img.Config.Labels[spec.MetadataLabel] = label
	return nil
}

// target is the last step of a Dockerfile's target stage: devbox's own
// steps come after it.
func (p *Plan) target() int {
	last := len(p.Steps) - 1
	for last >= 0 && p.Steps[last].Kind != StepDocker && p.Steps[last].Kind != StepBase && p.Steps[last].Kind != StepFrom {
		last--
	}
	return last
}

// baseLabel is the metadata label a devcontainer.json is merged over:
// its image's, or for a Dockerfile the label of the image its target
// stage starts from, through earlier stages. The CLI reads that image's
// (getImageBuildInfoFromDockerfile inspects the base image); a LABEL of
// the Dockerfile itself is not read, and the CLI's own label on the
// container replaces it.
func (p *Plan) baseLabel() string {
	if p.Dockerfile == nil {
		return p.Config.Labels[spec.MetadataLabel]
	}
	if last := p.target(); last >= 0 {
		if img := p.root(last).Image; img != nil {
			return img.Config.Labels[spec.MetadataLabel]
		}
	}
	return ""
}

// root is the base step that step i's stage starts from.
func (p *Plan) root(i int) Step {
	for p.Steps[i].Parent >= 0 {
		i = p.Steps[i].Parent
	}
	return p.Steps[i]
}

// Top is the key of the last step: the build as a whole.
func (p *Plan) Top() string { return p.Steps[len(p.Steps)-1].Key }

// Resolver finds the image a reference names: pulled for a build, only
// looked up for `devbox plan` (nil, nil when not there).
type Resolver func(rootfs.Ref) (*rootfs.Image, error)

// add appends a step built on the step at index parent (-1: none).
func (p *Plan) add(parent int, kind StepKind, summary string, canonical ...string) *Step {
	parentKey := ""
	if parent >= 0 {
		parentKey = p.Steps[parent].Key
	}
	if parent < 0 && p.Epoch != 0 {
		canonical = append(canonical, fmt.Sprintf("source-date-epoch=%d", p.Epoch))
	}
	c := strings.Join(canonical, "\n")
	sum := sha256.Sum256([]byte(parentKey + "\n" + string(kind) + "\n" + c))
	p.Steps = append(p.Steps, Step{Kind: kind, Summary: summary, Canonical: c, Key: hex.EncodeToString(sum[:]), Parent: parent, From: -1})
	return &p.Steps[len(p.Steps)-1]
}

// NewPlan returns the plan of s. A base's image pins its content (an
// image's manifest digest); one resolve does not know is keyed by its
// reference alone.
func NewPlan(s *spec.Spec, resolve Resolver, features FeatureResolver) (*Plan, error) {
	return newPlan(s, resolve, features, nil)
}

// newPlan is NewPlan with what fetches ADD's downloads, which a build
// needs to key them by content.
func newPlan(s *spec.Spec, resolve Resolver, features FeatureResolver, remote *remoteFiles) (*Plan, error) {
	p := &Plan{remote: remote}
	epoch, from, err := sourceDateEpoch(s)
	if err != nil {
		return nil, err
	}
	p.Epoch, p.EpochFrom = epoch, from
	resolve = snapshot(resolve)
	if s.BaseRef.Kind == rootfs.KindDockerfile {
		if err := p.addDockerfile(s, resolve); err != nil {
			return nil, err
		}
	} else {
		img, err := resolve(s.BaseRef)
		if err != nil {
			return nil, err
		}
		base := "ref=" + s.BaseRef.String()
		if img != nil {
			base += "\nid=" + img.Digest
			p.Config = img.Config
		}
		p.add(-1, StepBase, "base "+s.Base, base).Image = img
	}
	// A devcontainer.json is merged over the metadata label of its image,
	// as the CLI does once it knows the image (getImageBuildInfo); the
	// features and devbox's steps see the merged spec (its user, its env).
	file := s
	label := p.baseLabel()
	s, err = file.WithImageMetadata(label)
	if err != nil {
		return nil, err
	}
	if err := p.addFeatures(s, features); err != nil {
		return nil, err
	}
	// The features' own lifecycle commands run after the image's and
	// before the file's: their fragments come between.
	if s, err = file.WithImageMetadata(featureLabel(label, p)); err != nil {
		return nil, err
	}
	p.Spec = s
	var over []string
	if p.Dockerfile != nil || len(s.Features) > 0 {
		// devbox's steps run with the config the plan ends with, which no
		// step before has in its key: instructions after the target's
		// last RUN or COPY, and features' containerEnv, change it.
		over = []string{"image-env=" + strings.Join(p.Config.Env, "\x00"), "image-user=" + p.Config.User, "image-workdir=" + p.Config.WorkingDir}
	}
	p.addSpecSteps(s, over)
	return p, nil
}

// snapshot is resolve answering each reference once: a build sees one
// digest per tag, as BuildKit resolves an image once per build (two
// stages FROM image:tag, or a COPY --from=image:tag, get the same image
// even when the tag moves while the build pulls).
func snapshot(resolve Resolver) Resolver {
	type answer struct {
		img *rootfs.Image
		err error
	}
	seen := map[rootfs.Ref]answer{}
	return func(ref rootfs.Ref) (*rootfs.Image, error) {
		if a, ok := seen[ref]; ok {
			return a.img, a.err
		}
		img, err := resolve(ref)
		seen[ref] = answer{img, err}
		return img, err
	}
}

// addSpecSteps adds devbox's own steps over the last one; the first also
// reads over.
func (p *Plan) addSpecSteps(s *spec.Spec, over []string) {
	add := func(kind StepKind, summary string, canonical ...string) *Step {
		canonical = append(canonical, over...)
		over = nil
		return p.add(len(p.Steps)-1, kind, summary, canonical...)
	}
	if len(s.Packages.Install) > 0 {
		add(StepPackages, fmt.Sprintf("packages (%s) %s", s.Packages.Manager, strings.Join(s.Packages.Install, " ")),
			"manager="+s.Packages.Manager, "install="+strings.Join(s.Packages.Install, " "))
	}
	if s.Node.Version != "" {
		add(StepNode, "node "+s.Node.Version, "version="+s.Node.Version, "mirror="+s.Node.Mirror, "registry="+s.NPMRegistry())
	}
	if s.NPM.Registry != "" {
		add(StepNPM, "npm registry "+s.NPM.Registry, "registry="+s.NPM.Registry, "token_env="+s.NPM.TokenEnv)
	}
	add(StepUser, "user "+s.SSH.User, "user="+s.SSH.User, "shell="+s.Shell, "password="+s.PasswordFingerprint())

	var env []string
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	add(StepConfig, "config workdir="+cmp.Or(s.Workdir, "(image)")+fmt.Sprintf(" env=%d", len(env)),
		"workdir="+s.Workdir, "env="+strings.Join(env, "\x00"))

	for _, r := range s.Run {
		add(StepRun, "run "+r.Command, "command="+r.Command, "workdir="+s.Workdir).Command = r.Command
	}
}
