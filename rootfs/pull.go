package rootfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	gzip "github.com/klauspost/pgzip"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
)

// PullOptions tune a pull.
type PullOptions struct {
	// Refresh fetches dir: and debootstrap: bases again although stored.
	Refresh  bool
	Insecure bool
	// Jobs is how many layers download at once (default 4).
	Jobs      int
	Progress  Progress
	Transport http.RoundTripper
	// IdleTimeout fails a registry read that gets no byte for that long
	// (default 60 s).
	IdleTimeout time.Duration
	// MaxLayerSize caps a layer's uncompressed size (default 32 GiB).
	MaxLayerSize int64
	// Log receives warnings and one-line notes; nil discards them.
	Log func(string)
}

// Progress reports a pull's layers as they download.
type Progress interface {
	// Layer announces a layer of size compressed bytes (-1 if unknown).
	Layer(id string, size int64) LayerProgress
}

// LayerProgress follows one layer.
type LayerProgress interface {
	Add(n int64)
	// Done ends the layer: cached, unpacked, or failed (err != nil).
	Done(cached bool, err error)
}

type nopProgress struct{}

func (nopProgress) Layer(string, int64) LayerProgress { return nopLayer{} }

type nopLayer struct{}

func (nopLayer) Add(int64)        {}
func (nopLayer) Done(bool, error) {}

func (o *PullOptions) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.MaxLayerSize <= 0 {
		o.MaxLayerSize = DefaultMaxLayerSize
	}
	if o.Progress == nil {
		o.Progress = nopProgress{}
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
}

// Resolve returns the stored image for ref, pulling it if it is not
// stored: what a build does with its base.
func (s *Store) Resolve(ctx context.Context, ref Ref, opts PullOptions) (*Image, error) {
	if img, err := s.Image(ref); err == nil && s.complete(img) {
		return img, nil
	}
	return s.Pull(ctx, ref, opts)
}

// Pull fetches ref into the store and returns its record. A registry
// image is checked against the registry even when stored (its tag may have
// moved); layers already unpacked are never fetched again.
func (s *Store) Pull(ctx context.Context, ref Ref, opts PullOptions) (*Image, error) {
	img, err := s.pull(ctx, ref, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	return img, nil
}

// pull is the one way into the store: whatever kind src is, it becomes a
// source, whose layers are unpacked and whose record is stored under dst.
func (s *Store) pull(ctx context.Context, src, dst Ref, opts PullOptions) (*Image, error) {
	opts.defaults()
	// Prune must not delete layers between their unpacking and the image
	// record that keeps them.
	leave, err := s.Enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	so, cleanup, err := s.openSource(ctx, src, dst, opts)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if so.stored != nil {
		return so.stored, nil
	}
	chain := ChainIDs(so.diffIDs)
	u := &unpackRun{store: s, chain: chain, diffIDs: so.diffIDs, open: so.open, opts: opts}
	if err := u.all(ctx); err != nil {
		return nil, err
	}
	img := &Image{
		Ref:     dst.String(),
		Digest:  so.digest,
		Config:  so.config,
		Layers:  chain,
		DiffIDs: hashStrings(so.diffIDs),
		Size:    so.size,
		Pulled:  time.Now().UTC(),
	}
	if so.size < 0 { // a tree: its size is its tar's
		img.Size = 0
		if li, err := s.Layer(chain[0]); err == nil {
			img.Size = li.Size
		}
	}
	return img, s.putImage(dst, img)
}

func (s *Store) complete(img *Image) bool {
	for _, id := range img.Layers {
		if !s.HasLayer(id) {
			return false
		}
	}
	return true
}

func configOf(cf *v1.ConfigFile) Config {
	c := cf.Config
	return Config{
		Env: c.Env, Labels: c.Labels, ExposedPorts: slices.Sorted(maps.Keys(c.ExposedPorts)),
		WorkingDir: c.WorkingDir, User: c.User, Cmd: c.Cmd, Entrypoint: c.Entrypoint,
		Shell: c.Shell, OnBuild: c.OnBuild, Healthcheck: c.Healthcheck, StopSignal: c.StopSignal,
		Volumes: slices.Sorted(maps.Keys(c.Volumes)), Author: cf.Author,
	}
}

func hashStrings(hs []v1.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

// unpackRun unpacks a stack of layers, downloading up to opts.Jobs at
// once. Each layer is unpacked under its own lock, into tmp/, checked
// against its diffID, completed against the layers below it and only then
// renamed into place, so a layer directory is either whole or absent.
type unpackRun struct {
	store   *Store
	chain   []string  // chain IDs, bottom first
	diffIDs []v1.Hash // likewise
	open    func(i int) (io.ReadCloser, int64, error)
	opts    PullOptions

	sem  chan struct{}   // download slots
	done []chan struct{} // closed when layer i is in place or failed
	errs []error         // layer i's error, read after done[i]
}

func (u *unpackRun) all(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(u.chain)
	u.sem = make(chan struct{}, u.opts.Jobs)
	u.done = make([]chan struct{}, n)
	u.errs = make([]error, n)
	for i := range u.done {
		u.done[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for i := range u.chain {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(u.done[i])
			u.errs[i] = u.one(ctx, i)
			if u.errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(u.errs...)
}

// waitLower waits until the layer below i is in place.
func (u *unpackRun) waitLower(ctx context.Context, i int) error {
	if i == 0 {
		return nil
	}
	select {
	case <-u.done[i-1]:
	case <-ctx.Done():
		return ctx.Err()
	}
	if u.errs[i-1] != nil {
		return errors.New("layer below failed")
	}
	return nil
}

// one puts layer i in place: download and unpack in a slot, then wait for
// the layer below (fixup needs it), then commit.
func (u *unpackRun) one(ctx context.Context, i int) error {
	id, short := u.chain[i], shortID(u.diffIDs[i].String())
	s := u.store
	if s.HasLayer(id) {
		u.opts.Progress.Layer(short, 0).Done(true, nil)
		return u.waitLower(ctx, i)
	}
	release, err := u.slot(ctx)
	if err != nil {
		return err
	}
	defer release()
	unlock, err := s.lock(strings.TrimPrefix(id, "sha256:"))
	if err != nil {
		return err
	}
	defer unlock()
	if s.HasLayer(id) { // another devbox unpacked it while we waited
		u.opts.Progress.Layer(short, 0).Done(true, nil)
		release()
		return u.waitLower(ctx, i)
	}
	tmp, err := s.layerTemp(id)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	x, tarSize, lp, err := u.unpack(ctx, i, tmp)
	if err != nil {
		return fmt.Errorf("layer %s: %w", short, err)
	}
	release()
	if err := u.commit(ctx, i, tmp, x, tarSize); err != nil {
		lp.Done(false, err)
		return fmt.Errorf("layer %s: %w", short, err)
	}
	lp.Done(false, nil)
	return nil
}

// slot waits for a download slot; release may be called more than once.
func (u *unpackRun) slot(ctx context.Context) (release func(), err error) {
	select {
	case u.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() { once.Do(func() { <-u.sem }) }, nil
}

// layerTemp makes the staging directory of layer id, after removing what
// a killed pull of it left; the caller holds the layer's lock.
func (s *Store) layerTemp(id string) (string, error) {
	final := s.LayerDir(id)
	stale, _ := filepath.Glob(filepath.Join(s.root.Tmp(), filepath.Base(final)+".*"))
	for _, d := range append(stale, final) {
		if err := os.RemoveAll(d); err != nil {
			return "", err
		}
	}
	tmp, err := os.MkdirTemp(s.root.Tmp(), filepath.Base(final)+".")
	if err != nil {
		return "", err
	}
	return tmp, os.Chmod(tmp, 0o755)
}

// unpack downloads layer i and unpacks it into tmp.
func (u *unpackRun) unpack(ctx context.Context, i int, tmp string) (*extractor, int64, LayerProgress, error) {
	rc, size, err := u.open(i)
	if err != nil {
		return nil, 0, nil, err
	}
	defer rc.Close()
	lp := u.opts.Progress.Layer(shortID(u.diffIDs[i].String()), size)
	lim := &layerLimits{max: u.opts.MaxLayerSize, compressed: size, dir: tmp}
	x, tarSize, err := unpackStream(ctx, &countingReader{r: rc, p: lp}, tmp, u.diffIDs[i], lim, u.opts.Log)
	if err != nil {
		lp.Done(false, err)
		return nil, 0, nil, err
	}
	return x, tarSize, lp, nil
}

// commit completes layer i against the layers below it and moves it into
// place; its record, written last, is what makes it count.
func (u *unpackRun) commit(ctx context.Context, i int, tmp string, x *extractor, tarSize int64) error {
	if err := u.waitLower(ctx, i); err != nil {
		return err
	}
	s := u.store
	var lowers []string
	for j := i - 1; j >= 0; j-- {
		lowers = append(lowers, s.LayerDir(u.chain[j]))
	}
	if err := fixup(tmp, x, lowers); err != nil {
		return err
	}
	final := s.LayerDir(u.chain[i])
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	parent := ""
	if i > 0 {
		parent = u.chain[i-1]
	}
	info := LayerInfo{ChainID: u.chain[i], DiffID: u.diffIDs[i].String(), Parent: parent, Size: tarSize, Unpacked: time.Now().UTC()}
	return writeJSON(s.root.Tmp(), final+".json", info)
}

func shortID(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// unpackStream decompresses r (gzip, zstd or plain tar), unpacks it into
// dir and checks the uncompressed bytes against diffID as they stream by:
// go-containerregistry verifies only the compressed digest.
func unpackStream(ctx context.Context, r io.Reader, dir string, diffID v1.Hash, lim *layerLimits, log func(string)) (*extractor, int64, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, _ := br.Peek(4)
	var plain io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, err
		}
		defer zr.Close()
		plain = zr
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, 0, err
		}
		defer zr.Close()
		plain = zr
	}
	h := sha256.New()
	cr := &ctxReader{ctx: ctx, r: io.TeeReader(plain, h), lim: lim}
	x, err := extractTar(cr, dir, log)
	if err != nil {
		return nil, 0, err
	}
	// The tar reader stops at the end-of-archive marker; the digest covers
	// the padding after it too.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, 0, err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID.String() {
		return nil, 0, fmt.Errorf("content does not match its diffID: got %s, want %s", got, diffID)
	}
	return x, cr.n, nil
}

// ctxReader stops a layer's uncompressed stream when its context ends or
// it goes past its limits, and counts it.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	lim *layerLimits
	n   int64
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if lerr := c.lim.check(c.n); lerr != nil {
		return n, lerr
	}
	return n, err
}

type countingReader struct {
	r io.Reader
	p LayerProgress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.Add(int64(n))
	return n, err
}

// Import stores the image at path (a docker-archive tarball, an OCI layout
// or a root filesystem directory) under the reference as.
func (s *Store) Import(ctx context.Context, path string, as Ref, opts PullOptions) (*Image, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	src := Ref{Kind: KindDockerArchive, Name: path}
	if fi.IsDir() {
		src.Kind = KindDir
		if _, err := os.Stat(filepath.Join(path, "oci-layout")); err == nil {
			src.Kind = KindOCI
		}
	}
	opts.Refresh = true
	img, err := s.pull(ctx, src, as, opts)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return img, nil
}
