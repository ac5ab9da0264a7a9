package builder

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/devbox/devbox/internal/idle"
)

// downloads fetches files on the host, resumably, into a cache keyed by
// their checksum, so that a second environment downloads nothing and a
// base without curl still gets what it needs.
type downloads struct {
	dir    string
	client *http.Client
	log    func(string)
}

func newDownloads(dir string, log func(string)) *downloads {
	return &downloads{dir: dir, client: &http.Client{Transport: idle.Transport(nil, 0)}, log: log}
}

// digest is an expected checksum: "sha256", "sha384" (ADD --checksum)
// or "sha512", hex.
type digest struct {
	algo, hex string
}

func (d digest) hasher() hash.Hash {
	switch d.algo {
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	}
	return sha256.New()
}

// integrityDigest turns an npm integrity field (sha512-BASE64) into a digest.
func integrityDigest(integrity string) (digest, error) {
	algo, b64, ok := strings.Cut(integrity, "-")
	if !ok || (algo != "sha512" && algo != "sha256") {
		return digest{}, fmt.Errorf("unsupported integrity %q", integrity)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return digest{}, fmt.Errorf("integrity %q: %w", integrity, err)
	}
	return digest{algo, hex.EncodeToString(raw)}, nil
}

// fetch returns the path of url's content, which must match want. A
// cached copy is used as is; a partial one is resumed.
func (d *downloads) fetch(ctx context.Context, url string, want digest) (string, error) {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return "", err
	}
	final := d.cachePath(want.algo + ":" + want.hex)
	if _, err := os.Stat(final); err == nil {
		d.log(fmt.Sprintf("%s: cached", filepath.Base(url)))
		return final, nil
	}
	part := final + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	offset, _ := f.Seek(0, io.SeekEnd)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", err
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
	case resp.StatusCode == http.StatusOK:
		if err := f.Truncate(0); err != nil {
			return "", err
		}
		f.Seek(0, io.SeekStart)
	default:
		return "", fmt.Errorf("download %s: %s", url, resp.Status)
	}
	n, err := io.Copy(f, resp.Body)
	if err != nil {
		return "", fmt.Errorf("download %s: %w (rerun to resume)", url, err)
	}
	d.log(fmt.Sprintf("%s: downloaded %d bytes", filepath.Base(url), n))
	if err := f.Close(); err != nil {
		return "", err
	}
	got, err := fileDigest(part, want)
	if err != nil {
		return "", err
	}
	if got != want.hex {
		os.Remove(part)
		return "", fmt.Errorf("download %s: checksum mismatch: %s is %s, want %s", url, want.algo, got, want.hex)
	}
	return final, os.Rename(part, final)
}

func fileDigest(path string, want digest) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := want.hasher()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// getJSON fetches url into v.
func (d *downloads) getJSON(ctx context.Context, url string, v any, accept string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (d *downloads) getText(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return string(b), err
}

var errNoVersion = errors.New("no such version")
