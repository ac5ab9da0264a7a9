package builder

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// chownIDs resolves COPY/ADD --chown=USER[:GROUP] in the layers as
// BuildKit does (solver/llbsolver/ops/user_linux.go, readUser): a numeric
// user without a group gets the same number as its group (UserOpt_ByID
// sets UID and GID alike), a name its primary group from /etc/passwd; a
// group is a number, or a name in /etc/group. This differs from USER,
// whose numeric user gets its passwd entry's group (LookupUser).
func chownIDs(lower []string, chown string) (uid, gid int, err error) {
	name, group, hasGroup := strings.Cut(chown, ":")
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		uid, gid = n, n
	} else if uid, gid, err = lookupIn(lower, "etc/passwd", name, 2, 3); err != nil {
		return 0, 0, fmt.Errorf("user %s: %w", name, err)
	}
	if hasGroup {
		if gid, _, err = lookupIn(lower, "etc/group", group, 2, -1); err != nil {
			return 0, 0, fmt.Errorf("group %s: %w", group, err)
		}
	}
	return uid, gid, nil
}

// chownTar is the tar stream r with every entry owned by uid:gid (names
// dropped, so that nothing maps them back). Closing it ends the copy.
func chownTar(r io.Reader, uid, gid int) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(rewriteOwners(tar.NewReader(r), tar.NewWriter(pw), uid, gid))
	}()
	return pr
}

func rewriteOwners(tr *tar.Reader, tw *tar.Writer, uid, gid int) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		h.Uid, h.Gid, h.Uname, h.Gname = uid, gid, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
