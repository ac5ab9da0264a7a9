package rootfs

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	gzip "github.com/klauspost/pgzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

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
	// Log receives warnings and one-line notes; nil discards them.
	Log func(string)

	// storeAs records the image under another reference (Import).
	storeAs *Ref
}

// dest is the reference the image of src is recorded under.
func (o *PullOptions) dest(src Ref) Ref {
	if o.storeAs != nil {
		return *o.storeAs
	}
	return src
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
	opts.defaults()
	// Prune must not delete layers between their unpacking and the image
	// record that keeps them.
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	var img *Image
	switch ref.Kind {
	case KindDir, KindDebootstrap:
		img, err = s.pullDir(ctx, ref, opts)
	default:
		img, err = s.pullImage(ctx, ref, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	return img, nil
}

func (s *Store) complete(img *Image) bool {
	for _, id := range img.Layers {
		if !s.HasLayer(id) {
			return false
		}
	}
	return true
}

func (s *Store) pullImage(ctx context.Context, ref Ref, opts PullOptions) (*Image, error) {
	src, uncompressed, err := openImage(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	digest, err := src.Digest()
	if err != nil {
		return nil, err
	}
	dst := opts.dest(ref)
	if old, err := s.Image(dst); err == nil && old.Digest == digest.String() && s.complete(old) {
		return old, nil
	}
	cf, err := src.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	layers, err := src.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image has %d layers but %d diffIDs", len(layers), len(cf.RootFS.DiffIDs))
	}
	chain := ChainIDs(cf.RootFS.DiffIDs)
	var size int64
	for _, l := range layers {
		if n, err := l.Size(); err == nil {
			size += n
		}
	}
	err = s.unpackAll(ctx, chain, cf.RootFS.DiffIDs, func(i int) (io.ReadCloser, int64, error) {
		l := layers[i]
		if uncompressed {
			rc, err := l.Uncompressed()
			return rc, -1, err
		}
		n, err := l.Size()
		if err != nil {
			n = -1
		}
		rc, err := l.Compressed()
		return rc, n, err
	}, opts)
	if err != nil {
		return nil, err
	}
	img := &Image{
		Ref:     dst.String(),
		Digest:  digest.String(),
		Config:  configOf(cf),
		Layers:  chain,
		DiffIDs: hashStrings(cf.RootFS.DiffIDs),
		Size:    size,
		Pulled:  time.Now().UTC(),
	}
	return img, s.putImage(dst, img)
}

func configOf(cf *v1.ConfigFile) Config {
	return Config{
		Env:        cf.Config.Env,
		WorkingDir: cf.Config.WorkingDir,
		User:       cf.Config.User,
		Cmd:        cf.Config.Cmd,
		Entrypoint: cf.Config.Entrypoint,
	}
}

func hashStrings(hs []v1.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

// unpackAll unpacks a stack of layers, downloading up to opts.Jobs at
// once. Each layer is unpacked under its own lock, into tmp/, checked
// against its diffID, completed against the layers below it and only then
// renamed into place, so a layer directory is either whole or absent.
func (s *Store) unpackAll(ctx context.Context, chain []string, diffIDs []v1.Hash, open func(int) (io.ReadCloser, int64, error), opts PullOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(chain)
	done := make([]chan struct{}, n)
	errs := make([]error, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	sem := make(chan struct{}, opts.Jobs)
	var wg sync.WaitGroup
	for i := range chain {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			errs[i] = s.unpackOne(ctx, i, chain, diffIDs[i], open, sem, done, errs, opts)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Store) unpackOne(ctx context.Context, i int, chain []string, diffID v1.Hash, open func(int) (io.ReadCloser, int64, error), sem chan struct{}, done []chan struct{}, errs []error, opts PullOptions) error {
	id := chain[i]
	short := shortID(diffID.String())
	// waitLower waits until the layer below is in place.
	waitLower := func() error {
		if i == 0 {
			return nil
		}
		select {
		case <-done[i-1]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if errs[i-1] != nil {
			return errors.New("layer below failed")
		}
		return nil
	}
	if s.HasLayer(id) {
		opts.Progress.Layer(short, 0).Done(true, nil)
		return waitLower()
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	held := true
	release := func() {
		if held {
			<-sem
			held = false
		}
	}
	defer release()

	unlock, err := s.lock(strings.TrimPrefix(id, "sha256:"))
	if err != nil {
		return err
	}
	defer unlock()
	if s.HasLayer(id) { // another devbox unpacked it while we waited
		opts.Progress.Layer(short, 0).Done(true, nil)
		release()
		return waitLower()
	}
	final := s.LayerDir(id)
	// Leftovers of a killed pull of this layer; we hold its lock.
	stale, _ := filepath.Glob(filepath.Join(s.root, "tmp", filepath.Base(final)+".*"))
	for _, d := range append(stale, final) {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), filepath.Base(final)+".")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}

	rc, size, err := open(i)
	if err != nil {
		return fmt.Errorf("layer %s: %w", short, err)
	}
	lp := opts.Progress.Layer(short, size)
	x, tarSize, err := unpackStream(ctx, &countingReader{r: rc, p: lp}, tmp, diffID, opts.Log)
	rc.Close()
	if err != nil {
		lp.Done(false, err)
		return fmt.Errorf("layer %s: %w", short, err)
	}
	release()
	if err := waitLower(); err != nil {
		lp.Done(false, err)
		return err
	}
	var lowers []string
	for j := i - 1; j >= 0; j-- {
		lowers = append(lowers, s.LayerDir(chain[j]))
	}
	if err := fixup(tmp, x, lowers); err != nil {
		lp.Done(false, err)
		return fmt.Errorf("layer %s: %w", short, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	parent := ""
	if i > 0 {
		parent = chain[i-1]
	}
	info := LayerInfo{ChainID: id, DiffID: diffID.String(), Parent: parent, Size: tarSize, Unpacked: time.Now().UTC()}
	if err := writeJSON(filepath.Join(s.root, "tmp"), final+".json", info); err != nil {
		return err
	}
	lp.Done(false, nil)
	return nil
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
func unpackStream(ctx context.Context, r io.Reader, dir string, diffID v1.Hash, log func(string)) (*extractor, int64, error) {
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
	cr := &ctxReader{ctx: ctx, r: io.TeeReader(plain, h)}
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

// ctxReader stops a stream when its context ends, and counts it.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
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

// pullDir takes a directory (dir:) or a fresh debootstrap (debootstrap:)
// in as a one-layer image. It is stored until Refresh asks for it again.
func (s *Store) pullDir(ctx context.Context, ref Ref, opts PullOptions) (*Image, error) {
	if old, err := s.Image(opts.dest(ref)); err == nil && !opts.Refresh && s.complete(old) {
		return old, nil
	}
	dir := ref.Name
	if ref.Kind == KindDebootstrap {
		unlock, err := s.lock("debootstrap-" + ref.Name)
		if err != nil {
			return nil, err
		}
		defer unlock()
		if old, err := s.Image(ref); err == nil && !opts.Refresh && s.complete(old) {
			return old, nil // built by a concurrent devbox
		}
		tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "debootstrap-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		opts.Log(fmt.Sprintf("debootstrap %s (minbase) from %s", ref.Name, cmp.Or(ref.Mirror, "Debian's default mirror")))
		if err := debootstrap(ctx, ref.Name, ref.Mirror, tmp, opts.Log); err != nil {
			return nil, err
		}
		// Leave nothing of the host's behind in the image.
		os.Remove(filepath.Join(tmp, "etc", "hostname"))
		dir = tmp
	} else if fi, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return s.importTree(ctx, ref, dir, opts)
}

// importTree stores the tree at dir as a one-layer image under ref. The
// layer goes through the same tar form as any other, so its diffID is a
// content hash and it is unpacked as safely.
func (s *Store) importTree(ctx context.Context, ref Ref, dir string, opts PullOptions) (*Image, error) {
	// First pass: hash the tree's tar form to know its diffID.
	h := sha256.New()
	if err := WriteLayerTar(ctx, dir, h, false); err != nil {
		return nil, err
	}
	diffID := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	chain := ChainIDs([]v1.Hash{diffID})
	err := s.unpackAll(ctx, chain, []v1.Hash{diffID}, func(int) (io.ReadCloser, int64, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(WriteLayerTar(ctx, dir, pw, false)) }()
		return pr, -1, nil
	}, opts)
	if err != nil {
		return nil, err
	}
	dst := opts.dest(ref)
	img := &Image{
		Ref:     dst.String(),
		Digest:  diffID.String(),
		Config:  Config{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		Layers:  chain,
		DiffIDs: []string{diffID.String()},
		Pulled:  time.Now().UTC(),
	}
	if li, err := s.Layer(chain[0]); err == nil {
		img.Size = li.Size
	}
	return img, s.putImage(dst, img)
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
	opts.storeAs = &as
	img, err := s.Pull(ctx, src, opts)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return img, nil
}
