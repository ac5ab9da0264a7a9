package rootfs

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// CompareLayers compares two layer directories as the tars that give
// their diffIDs (WriteLayerTar, overlay form), entry by entry, and returns
// one line for each path that differs, sorted: the path, then how
// (content, mode, mtime, owner, type, link, hard link, xattrs), or that it
// is in one only. An opaque directory's marker and a whiteout are entries
// of the tar, and show as such.
func CompareLayers(ctx context.Context, a, b string) ([]string, error) {
	ea, err := tarEntries(ctx, a)
	if err != nil {
		return nil, err
	}
	eb, err := tarEntries(ctx, b)
	if err != nil {
		return nil, err
	}
	keys := append(slices.Collect(maps.Keys(ea)), slices.Collect(maps.Keys(eb))...)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var diffs []string
	for _, p := range keys {
		x, inA := ea[p]
		y, inB := eb[p]
		var what []string
		switch {
		case !inA:
			what = []string{"only in the second"}
		case !inB:
			what = []string{"only in the first"}
		default:
			what = x.differences(y)
		}
		if len(what) > 0 {
			diffs = append(diffs, "/"+p+": "+strings.Join(what, ", "))
		}
	}
	return diffs, nil
}

// tarEntry is one entry of a layer's tar and the digest of its content.
type tarEntry struct {
	hdr     *tar.Header
	content [sha256.Size]byte
}

// differences names what differs between e and f.
func (e tarEntry) differences(f tarEntry) []string {
	x, y := e.hdr, f.hdr
	if x.Typeflag == tar.TypeLink || y.Typeflag == tar.TypeLink {
		if x.Typeflag != y.Typeflag || x.Linkname != y.Linkname {
			return []string{fmt.Sprintf("hard link to %q vs %q", hardLink(x), hardLink(y))}
		}
	} else if x.Typeflag != y.Typeflag {
		return []string{fmt.Sprintf("type %v vs %v", x.FileInfo().Mode().Type(), y.FileInfo().Mode().Type())}
	}
	var out []string
	if e.content != f.content || x.Devmajor != y.Devmajor || x.Devminor != y.Devminor {
		out = append(out, "content")
	}
	if x.Typeflag == tar.TypeSymlink && x.Linkname != y.Linkname {
		out = append(out, fmt.Sprintf("link %q vs %q", x.Linkname, y.Linkname))
	}
	if x.Mode != y.Mode {
		out = append(out, fmt.Sprintf("mode %04o vs %04o", x.Mode, y.Mode))
	}
	if x.Uid != y.Uid || x.Gid != y.Gid {
		out = append(out, fmt.Sprintf("owner %d:%d vs %d:%d", x.Uid, x.Gid, y.Uid, y.Gid))
	}
	if !x.ModTime.Equal(y.ModTime) {
		out = append(out, fmt.Sprintf("mtime %s vs %s", stamp(x.ModTime), stamp(y.ModTime)))
	}
	if !maps.Equal(x.PAXRecords, y.PAXRecords) {
		out = append(out, "xattrs")
	}
	return out
}

// hardLink is the path a hard link entry names, "" for another entry.
func hardLink(h *tar.Header) string {
	if h.Typeflag != tar.TypeLink {
		return ""
	}
	return "/" + h.Linkname
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999999Z") }

// tarEntries reads the layer directory dir as its tar, by path.
func tarEntries(ctx context.Context, dir string) (map[string]tarEntry, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteLayerTar(ctx, dir, pw, true)) }()
	defer pr.Close() // a reader that stops early lets the writer end
	out := map[string]tarEntry{}
	tr := tar.NewReader(pr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", dir, err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, tr); err != nil {
			return nil, fmt.Errorf("layer %s: %w", dir, err)
		}
		e := tarEntry{hdr: hdr}
		copy(e.content[:], h.Sum(nil))
		out[path.Clean(hdr.Name)] = e
	}
}
