package builder

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/devbox/devbox/devenv/lock"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/safetext"
	"github.com/devbox/devbox/internal/subid"
	"github.com/devbox/devbox/rootfs"
)

// Options tune a build.
type Options struct {
	// NoCache rebuilds every step.
	NoCache bool
	// Check makes every step twice, from the same inputs and ignoring
	// the caches, and fails on the first step whose two layers differ
	// (devbox build --check).
	Check bool
	Pull  rootfs.PullOptions
	// Out gets a header per step; Stdout and Stderr the output of the
	// steps' commands.
	Out            io.Writer
	Stdout, Stderr *os.File
	Log            func(string)
	// Lock is what the build does with devbox.lock.
	Lock LockMode
	// Secrets are what RUN --mount=type=secret mounts, by id (devbox
	// build --secret); SSH the agent sockets of --mount=type=ssh, by id
	// ("default" is $SSH_AUTH_SOCK unless given).
	Secrets map[string]Secret
	SSH     map[string]string
}

// Secret is where a build secret's value is: a file, or an environment
// variable of devbox's.
type Secret struct {
	Src, Env string
}

// Result is a built environment: its layers, top first, over its image.
type Result struct {
	// Spec is what was built: the spec given, or for a devcontainer.json
	// that merged over its image's metadata label; what runs over the
	// layers follows it (the login, env, lifecycle commands).
	Spec  *spec.Spec
	Lower []string
	// Target are the layers of a Dockerfile's target stage, bottom
	// first: the image `docker build` makes, with Plan.Config.
	Target []string
	Image  *rootfs.Image
	Plan   *Plan
	// UserNS says whether containers over these layers get a user
	// namespace: the spec asks for one (the default) and the host can.
	UserNS bool
	// ids gives build steps their ranges when UserNS.
	ids *subid.Allocator
	// Lock is what the build resolved to, as devbox.lock says it (nil
	// when the spec has no file or locks are off).
	Lock *lock.File
	// records are the build records of Plan.Layered(), in its order.
	records []rootfs.BuildRecord
	// NodeVersion is the exact Node.js version installed, if any.
	NodeVersion string
}

// Run executes the spec's plan: each step not yet built runs (in a
// build container, or on the host for downloads) over the layers below it,
// and what it changed becomes the step's layer, committed under its cache
// key. A failing step commits nothing and leaves earlier steps cached.
func Run(ctx context.Context, store *rootfs.Store, s *spec.Spec, o Options) (*Result, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	leave, err := store.Enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	start := time.Now()
	pins, err := readPins(s, o.Lock)
	if err != nil {
		return nil, err
	}
	features, err := FetchFeatures(ctx, filepath.Join(store.Root().Downloads(), "features"), s, o.Pull)
	if err != nil {
		return nil, err
	}
	remote := newRemoteFiles(ctx, newDownloads(store.Root().Downloads(), o.Log))
	plan, err := newPlan(s, func(ref rootfs.Ref) (*rootfs.Image, error) { return store.Resolve(ctx, ref, o.Pull) }, features, remote)
	if err != nil {
		return nil, err
	}
	s = plan.Spec
	img := baseImage(s, plan)
	if err := labelMetadata(s, plan, img); err != nil {
		return nil, err
	}
	if err := checkBase(pins, s, img); err != nil {
		return nil, err
	}
	for _, w := range s.Warnings() {
		fmt.Fprintf(o.Out, "security: %s\n", w)
	}
	if plan.Dockerfile != nil {
		dockerfileNotes(o.Out, s, plan)
	}
	if plan.Epoch != 0 {
		fmt.Fprintf(o.Out, "reproducible: SOURCE_DATE_EPOCH=%d (%s)\n", plan.Epoch, plan.EpochFrom)
	}
	b := &Result{Image: img, Plan: plan, Spec: s}
	b.UserNS = useUserNS(store.Root(), s, store.LowerDirs(img), o.Out)
	if b.UserNS {
		ids := subid.New(store.Root())
		b.ids = &ids
	}
	w := &walk{store: store, s: s, b: b, pins: pins, o: o, start: start, stacks: make([][]string, len(plan.Steps))}
	for i := range plan.Steps {
		if err := w.step(ctx, i); err != nil {
			return nil, err
		}
	}
	b.Lower = w.stacks[len(plan.Steps)-1]
	if plan.Dockerfile != nil {
		b.Target = slices.Clone(w.stacks[plan.target()])
		slices.Reverse(b.Target)
	}
	if err := settleLock(ctx, store, s, b, pins, o); err != nil {
		return nil, err
	}
	return b, nil
}

// walk is a build in progress: the layer stack (top first) after each
// step so far.
type walk struct {
	store  *rootfs.Store
	s      *spec.Spec
	b      *Result
	pins   *lock.File
	o      Options
	start  time.Time
	stacks [][]string
}

// step builds step i (reusing it if cached or pulled) and records its
// stack.
func (w *walk) step(ctx context.Context, i int) error {
	st := w.b.Plan.Steps[i]
	n := len(w.b.Plan.Steps)
	header := fmt.Sprintf("[%d/%d] %s", i+1, n, st.Summary)
	if !st.Layered() {
		switch {
		case st.From >= 0:
			w.stacks[i] = w.stacks[st.From]
		case st.Image != nil:
			w.stacks[i] = w.store.LowerDirs(st.Image)
		}
		if i == 0 {
			fmt.Fprintf(w.o.Out, "%s … %s\n", header, shortDur(time.Since(w.start)))
		} else {
			fmt.Fprintf(w.o.Out, "%s\n", header)
		}
		return nil
	}
	below := w.stacks[st.Parent]
	w.b.Lower = below
	rec, how, err := w.layer(ctx, i, header)
	if err != nil {
		return fmt.Errorf("step [%d/%d] %s: %w", i+1, n, st.Kind, err)
	}
	if rec.Node != "" {
		w.b.NodeVersion = rec.Node
	}
	fmt.Fprintf(w.o.Out, "%s … %s\n", header, how)
	w.stacks[i] = append([]string{w.store.BuildDir(st.Key)}, below...)
	w.b.records = append(w.b.records, rec)
	return nil
}

// layer is step i's layer: cached, pulled from the spec's cache, or made.
func (w *walk) layer(ctx context.Context, i int, header string) (rootfs.BuildRecord, string, error) {
	st := w.b.Plan.Steps[i]
	if rec, ok := cachedStep(w.store, st, w.pins, w.o); ok {
		return rec, "cached", nil
	}
	fmt.Fprintf(w.o.Out, "%s …\n", header)
	t0 := time.Now()
	if rec, ok := pullStep(ctx, w.store, w.s, w.b, st, header, w.pins, w.o); ok {
		return rec, "pulled " + shortDur(time.Since(t0)), nil
	}
	in := stepInputs{baseLayers: w.b.Image.Layers}
	if st.From >= 0 {
		in.from = w.stacks[st.From]
	} else if st.Image != nil {
		in.from = w.store.LowerDirs(st.Image)
	}
	for _, m := range st.Mounts {
		var stack []string
		if m >= 0 {
			stack = w.stacks[m]
		}
		in.mounts = append(in.mounts, stack)
	}
	if root := w.b.Plan.root(i); root.Image != nil {
		in.baseLayers = root.Image.Layers
	}
	rec, err := runStep(ctx, w.store, w.s, w.b, st, in, pinsFor(w.pins, st), w.o)
	if err != nil {
		return rootfs.BuildRecord{}, "", err
	}
	rec.Took = time.Since(t0)
	return *rec, shortDur(rec.Took), nil
}

// cachedStep returns the record of st's cached layer, if it may be used:
// not with --no-cache, nor for the steps `devbox lock --update` resolves
// afresh, nor when it is not what the lock pins. A broken record is
// rebuilt.
func cachedStep(store *rootfs.Store, st Step, pins *lock.File, o Options) (rootfs.BuildRecord, bool) {
	if o.NoCache || o.Check || !store.HasBuild(st.Key) {
		return rootfs.BuildRecord{}, false
	}
	if o.Lock == LockUpdate && (st.Kind == StepNode || st.Kind == StepPackages) {
		return rootfs.BuildRecord{}, false
	}
	rec, err := store.Build(st.Key)
	if err != nil || conflicts(pins, st, rec) {
		return rootfs.BuildRecord{}, false
	}
	return rec, true
}

func shortDur(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// stepInputs are what a step reads besides the layers below it: the tree
// a COPY --from copies from, and the image layers its stage starts from
// (kept from pruning while the step's layer is).
type stepInputs struct {
	from, baseLayers []string
	// mounts are the trees of a RUN's --mount from= stages, by mount
	// (nil for one with no stage).
	mounts [][]string
}

// runStep makes one step's layer in tmp/ and commits it. With
// Options.Check it makes the layer twice and commits it only if both are
// the same.
func runStep(ctx context.Context, store *rootfs.Store, s *spec.Spec, b *Result, st Step, in stepInputs, pins *lock.File, o Options) (*rootfs.BuildRecord, error) {
	// Built already, it is built again on purpose (--no-cache, a lock's
	// pins, --check) and replaces the old; built meanwhile, it was a
	// concurrent build's, which is kept.
	replace := store.HasBuild(st.Key)
	tmp, rec, err := makeStep(ctx, store, s, b, st, in, pins, o)
	defer os.RemoveAll(tmp)
	if err != nil {
		return nil, err
	}
	if o.Check {
		again, rec2, err := makeStep(ctx, store, s, b, st, in, pins, o)
		defer os.RemoveAll(again)
		if err != nil {
			return nil, fmt.Errorf("--check, second build: %w", err)
		}
		if rec2.DiffID != rec.DiffID {
			err := layerDifference(ctx, filepath.Join(tmp, "upper"), filepath.Join(again, "upper"))
			return nil, fmt.Errorf("%s: %w", safetext.Escape(st.Summary), err)
		}
	}
	if err := store.CommitBuild(filepath.Join(tmp, "upper"), *rec, replace); err != nil {
		return nil, err
	}
	// What is stored, which a concurrent build may have made instead.
	stored, err := store.Build(st.Key)
	if err != nil {
		return nil, err
	}
	return &stored, nil
}

// makeStep runs one step into the layer directory tmp/upper of a new
// tmp, which the caller removes, and returns its record.
func makeStep(ctx context.Context, store *rootfs.Store, s *spec.Spec, b *Result, st Step, in stepInputs, pins *lock.File, o Options) (tmp string, _ *rootfs.BuildRecord, err error) {
	if tmp, err = store.TempDir("build-" + st.Key[:12] + "-"); err != nil {
		return "", nil, err
	}
	upper := filepath.Join(tmp, "upper")
	if err := os.Mkdir(upper, 0o755); err != nil {
		return tmp, nil, err
	}
	rec := &rootfs.BuildRecord{Key: st.Key, Kind: string(st.Kind), Summary: st.Summary, Built: time.Now().UTC(), BaseLayers: in.baseLayers}
	if err := doStep(ctx, store, s, b, st, in, tmp, pins, rec, o); err != nil {
		return tmp, nil, err
	}
	if b.Plan.Epoch != 0 {
		// A Dockerfile's instructions keep what they wrote, as BuildKit's
		// do (a cache a later RUN reads); their times are clamped, as
		// BuildKit's rewrite-timestamp does.
		noise := st.Kind != StepDocker
		if err := makeReproducible(upper, b.Lower, b.Plan.Epoch, rec.Built.Add(-time.Second), noise); err != nil {
			return tmp, nil, fmt.Errorf("reproducible layer: %w", err)
		}
	}
	if rec.DiffID, err = rootfs.DiffID(ctx, upper); err != nil {
		return tmp, nil, err
	}
	return tmp, rec, nil
}

// doStep does what step st does, writing into tmp/upper, and notes in
// rec what it resolved.
func doStep(ctx context.Context, store *rootfs.Store, s *spec.Spec, b *Result, st Step, in stepInputs, tmp string, pins *lock.File, rec *rootfs.BuildRecord, o Options) (err error) {
	upper := filepath.Join(tmp, "upper")
	switch st.Kind {
	case StepPackages:
		rec.Resolved, err = packagesStep(ctx, s, b, tmp, pins, o)
	case StepNode:
		err = nodeStep(ctx, store, s, b, upper, pins, rec, o)
	case StepNPM:
		err = writeFile(filepath.Join(upper, "usr/local/etc/npmrc"), s.NPMRC())
	case StepUser:
		err = userStep(s, b, upper, st.Key)
	case StepConfig:
		err = configStep(s, upper)
	case StepRun:
		err = runInBuild(ctx, s, b, tmp, []string{"/bin/sh", "-c", st.Command}, nil, o)
	case StepDocker:
		err = dockerStep(ctx, store.Root(), s, b, st, in, tmp, o)
	case StepFeature:
		err = featureStep(ctx, s, b, st, tmp, o)
	default:
		err = fmt.Errorf("unknown step kind %q", st.Kind)
	}
	return err
}

// nodeStep installs Node.js (and npm) into upper, at the version the
// lock pins if it does.
func nodeStep(ctx context.Context, store *rootfs.Store, s *spec.Spec, b *Result, upper string, pins *lock.File, rec *rootfs.BuildRecord, o Options) error {
	musl := existsInLayers(b.Lower, "lib/ld-musl-x86_64.so.1") || existsInLayers(b.Lower, "lib/ld-musl-aarch64.so.1")
	var pin *lock.Node
	if pins != nil {
		pin = pins.Node
	}
	node, err := installNode(ctx, newDownloads(store.Root().Downloads(), o.Log), s, musl, upper, pin)
	if err != nil {
		return err
	}
	rec.Node, rec.Resolved = node.Version, nodeResolved(node)
	b.NodeVersion = rec.Node
	if s.Node.Version != rec.Node {
		o.Log(fmt.Sprintf("node %s resolved to %s", s.Node.Version, rec.Node))
	}
	return nil
}

func writeFile(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

// layerPasswordHash is the SSH user's password hash as the user step
// writes it. A reproducible build's salt comes from the step's key, which
// holds the password's fingerprint (another password, another salt).
func layerPasswordHash(s *spec.Spec, epoch int64, key string) (string, error) {
	if pw := s.Password(); epoch != 0 && s.SSH.PasswordHash == "" && pw != "" {
		seed := sha256.Sum256([]byte("devbox password salt\n" + key))
		return spec.HashPasswordSalted(pw, seed[:])
	}
	return s.PasswordHash()
}

// userStep makes the SSH user (with a home and login shell) and sets its
// password hash in /etc/shadow, so that su and sudo agree with SSH; it
// needs no tool in the image (see users.go).
func userStep(s *spec.Spec, b *Result, upper, key string) error {
	hash, err := layerPasswordHash(s, b.Plan.Epoch, key)
	if err != nil {
		return err
	}
	if s.SSH.User == "root" && hash == "" {
		return nil // nothing to change: an empty layer
	}
	shell := s.Shell
	if shell == "" {
		shell = "/bin/sh"
		if rootfs.LayersHave(b.Lower, "bin/bash") || rootfs.LayersHave(b.Lower, "usr/bin/bash") {
			shell = "/bin/bash"
		}
	}
	u, err := readUserFiles(b.Lower, upper)
	if err != nil {
		return err
	}
	if s.SSH.User != "root" {
		if err := u.ensureUser(account{name: s.SSH.User, shell: shell}); err != nil {
			return err
		}
	}
	u.setPassword(s.SSH.User, hash, shadowDays(b.Plan.Epoch))
	return u.write()
}

// configStep makes the working directory and puts the spec's [env] in
// /etc/profile.d for login shells (the server gives it to every session).
func configStep(s *spec.Spec, upper string) error {
	if s.Workdir != "" {
		if err := os.MkdirAll(filepath.Join(upper, s.Workdir), 0o755); err != nil {
			return err
		}
	}
	if len(s.Env) == 0 {
		return nil
	}
	var sb strings.Builder
	sb.WriteString("# written by devbox from the spec's [env]\n")
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		sb.WriteString("export " + k + "='" + strings.ReplaceAll(s.Env[k], "'", `'\''`) + "'\n")
	}
	return writeFile(filepath.Join(upper, "etc/profile.d/devbox-env.sh"), sb.String())
}
