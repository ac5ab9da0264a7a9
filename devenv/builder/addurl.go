package builder

import (
	"context"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
)

// ADD URL is downloaded on the host, into the download cache, as
// BuildKit's http source does (source/http/source.go): the file is 0600,
// root's, its mtime the response's Last-Modified (else the epoch), named
// by the URL's path (dispatchCopy sets llb.Filename), and not unpacked
// (convert_copy.go: "Resources from remote URLs are not decompressed")
// unless --unpack=true. With --checksum the step is keyed by the
// checksum and downloads when it runs; without, BuildKit resolves the
// URL before the step (its cache key is the content's digest and
// Last-Modified: httpSourceHandler.CacheKey), so devbox downloads it
// when it plans the build, and a changed file re-runs the step.

// remoteFile is a download: its path in the cache, digest, and mtime.
type remoteFile struct {
	path, digest string
	modTime      time.Time
}

// remoteFiles fetches a build's downloads; a plan without one (devbox
// plan) keys a download without --checksum as unknown content.
type remoteFiles struct {
	ctx context.Context
	d   *downloads
	got map[string]remoteFile // by URL, as planned
}

func newRemoteFiles(ctx context.Context, d *downloads) *remoteFiles {
	return &remoteFiles{ctx: ctx, d: d, got: map[string]remoteFile{}}
}

// remoteInput is a download's part of its step's key: as BuildKit's
// (formatCacheKey), the file's name and content, not the URL, so that a
// mirror with the same file is the same step.
func (p *Plan) remoteInput(ds *dockerfile.Step, r dockerfile.RemoteFile) (string, error) {
	in := "remote=" + r.Name + "\x00"
	switch {
	case ds.Checksum != "":
		return in + "checksum=" + ds.Checksum, nil
	case p.remote == nil:
		return in + r.URL + "\x00content=unknown", nil
	}
	f, ok := p.remote.got[r.URL]
	if !ok {
		var err error
		if f, err = p.remote.d.fetchURL(p.remote.ctx, r.URL, ""); err != nil {
			return "", err
		}
		p.remote.got[r.URL] = f
	}
	return in + f.digest + "\x00" + f.modTime.UTC().Format(time.RFC3339Nano), nil
}

// remoteMatches are the files a step downloads: with --checksum fetched
// now (or found in the cache by it), else what the plan downloaded
// (fetched again, and checked, if its cached copy is gone).
func (p *Plan) remoteMatches(ctx context.Context, ds *dockerfile.Step) ([]match, error) {
	if len(ds.Remote) > 0 && p.remote == nil {
		return nil, fmt.Errorf("%s:%d: ADD: no download cache (a plan is not a build)", p.Dockerfile.Path, ds.Line)
	}
	var out []match
	for _, r := range ds.Remote {
		f, ok := p.remote.got[r.URL]
		want := ds.Checksum
		if want != "" {
			ok = false
		} else if ok {
			if _, err := os.Stat(f.path); err != nil {
				ok, want = false, f.digest
			}
		}
		if !ok {
			var err error
			if f, err = p.remote.d.fetchURL(ctx, r.URL, want); err != nil {
				return nil, fmt.Errorf("%s:%d: ADD: %w", p.Dockerfile.Path, ds.Line, err)
			}
		}
		out = append(out, match{name: r.Name, path: f.path, remote: &f})
	}
	return out, nil
}

// fetchURL downloads url into the cache, named by its digest; with want
// (ALGO:HEX) a cached copy is used as is and the download must match.
func (d *downloads) fetchURL(ctx context.Context, url, want string) (remoteFile, error) {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return remoteFile{}, err
	}
	algo, _, _ := strings.Cut(want, ":")
	if want == "" {
		algo = "sha256"
	} else if fi, err := os.Stat(d.cachePath(want)); err == nil {
		d.log(fmt.Sprintf("%s: cached", filepath.Base(url)))
		return remoteFile{path: d.cachePath(want), digest: want, modTime: fi.ModTime()}, nil
	}
	tmp, lastMod, sum, err := d.get(ctx, url, digest{algo: algo}.hasher())
	if err != nil {
		return remoteFile{}, err
	}
	defer os.Remove(tmp)
	got := algo + ":" + sum
	if want != "" && got != want {
		return remoteFile{}, fmt.Errorf("%s: checksum mismatch: expected %s, got %s", url, want, got)
	}
	// The cached file keeps the mtime its copies get, for a later build
	// that finds it by its checksum.
	if err := os.Chtimes(tmp, lastMod, lastMod); err != nil {
		return remoteFile{}, err
	}
	if err := os.Rename(tmp, d.cachePath(got)); err != nil {
		return remoteFile{}, err
	}
	return remoteFile{path: d.cachePath(got), digest: got, modTime: lastMod}, nil
}

// cachePath is where fetch and fetchURL keep a download of digest
// ALGO:HEX.
func (d *downloads) cachePath(digest string) string {
	return filepath.Join(d.dir, strings.Replace(digest, ":", "-", 1))
}

// get downloads url into a new file in the cache directory, hashing it.
func (d *downloads) get(ctx context.Context, url string, h hash.Hash) (tmp string, lastMod time.Time, sum string, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", time.Time{}, "", err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", time.Time{}, "", fmt.Errorf("download %s: %s", url, resp.Status)
	}
	f, err := os.CreateTemp(d.dir, "add-*.part") // 0600, as BuildKit's
	if err != nil {
		return "", time.Time{}, "", err
	}
	n, err := io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", time.Time{}, "", fmt.Errorf("download %s: %w", url, err)
	}
	d.log(fmt.Sprintf("%s: downloaded %d bytes", filepath.Base(url), n))
	lastMod = time.Unix(0, 0)
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		lastMod = t
	}
	return f.Name(), lastMod, hex.EncodeToString(h.Sum(nil)), nil
}

// remoteEntry copies a download to dest: root's unless --chown, 0600
// unless --chmod, with its Last-Modified time.
func (c *copier) remoteEntry(m match, dest string) error {
	rc := *c
	if rc.owner == nil {
		rc.owner = &[2]int{0, 0}
	}
	if rc.mode == nil {
		m := os.FileMode(0o600)
		rc.mode = &m
	}
	if err := rc.entry(m.path, dest); err != nil {
		return err
	}
	p, err := securejoin.SecureJoin(c.root, dest)
	if err != nil {
		return err
	}
	t := unix.NsecToTimespec(m.remote.modTime.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
}

// unpacks says ADD unpacks m if it is an archive: a local file unless
// --unpack=false, a download only with --unpack=true.
func unpacks(ds *dockerfile.Step, src *copySource, m match) bool {
	if m.remote != nil {
		return ds.Unpack != nil && *ds.Unpack
	}
	return ds.Kind == dockerfile.Add && src.context != nil && (ds.Unpack == nil || *ds.Unpack)
}
