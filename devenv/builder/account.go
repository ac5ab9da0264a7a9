package builder

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/devbox/devbox/rootfs"
)

// LookupUser resolves an image's USER in layers as runc does: NAME or
// UID, with an optional :GROUP or :GID; a name must be in the layers'
// /etc/passwd (or /etc/group); a user without a group gets its primary
// group, or its own id when it is only a number with no passwd line.
// (COPY --chown differs: see chownIDs.)
func LookupUser(lower []string, user string) (uid, gid int, err error) {
	if user == "" {
		return 0, 0, nil
	}
	name, group, hasGroup := strings.Cut(user, ":")
	uid, primary, err := lookupIn(lower, "etc/passwd", name, 2, 3)
	if err != nil {
		return 0, 0, fmt.Errorf("user %s: %w", user, err)
	}
	gid = primary
	if hasGroup {
		if gid, _, err = lookupIn(lower, "etc/group", group, 2, -1); err != nil {
			return 0, 0, fmt.Errorf("group %s: %w", group, err)
		}
	}
	return uid, gid, nil
}

// lookupIn finds name (or a number) in a colon-separated account file and
// returns the id in field idField and the one in field otherField (or the
// id itself when there is no line, or no such field).
func lookupIn(lower []string, file, name string, idField, otherField int) (int, int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		other := n
		if data, _, err := rootfs.ReadFromLayers(lower, file); err == nil && otherField >= 0 {
			if f := fieldsOf(data, idField, name); f != nil && len(f) > otherField {
				if o, err := strconv.Atoi(f[otherField]); err == nil {
					other = o
				}
			}
		}
		return n, other, nil
	}
	data, _, err := rootfs.ReadFromLayers(lower, file)
	if err != nil {
		return 0, 0, fmt.Errorf("no /%s to find it in", file)
	}
	f := fieldsOf(data, 0, name)
	if f == nil || len(f) <= idField {
		return 0, 0, fmt.Errorf("not in /%s", file)
	}
	id, err := strconv.Atoi(f[idField])
	if err != nil {
		return 0, 0, fmt.Errorf("/%s: %q is not an id", file, f[idField])
	}
	other := id
	if otherField >= 0 && len(f) > otherField {
		if o, err := strconv.Atoi(f[otherField]); err == nil {
			other = o
		}
	}
	return id, other, nil
}

// fieldsOf is the first line whose field i is v, split.
func fieldsOf(data []byte, i int, v string) []string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) > i && f[i] == v {
			return f
		}
	}
	return nil
}

// ImageAccount is what the layers' /etc/passwd and /etc/shadow say of
// user: its home and its password field ("" for what they do not say).
func ImageAccount(lower []string, user string) (home, password string) {
	if data, _, err := rootfs.ReadFromLayers(lower, "etc/passwd"); err == nil {
		if f := fieldsOf(data, 0, user); len(f) > 5 {
			home = f[5]
		}
	}
	if data, _, err := rootfs.ReadFromLayers(lower, "etc/shadow"); err == nil {
		if f := fieldsOf(data, 0, user); len(f) > 1 {
			password = f[1]
		}
	}
	return home, password
}

// homeOf is uid's home in the layers' /etc/passwd, or / as Docker has it.
func homeOf(lower []string, uid int) string {
	if data, _, err := rootfs.ReadFromLayers(lower, "etc/passwd"); err == nil {
		if f := fieldsOf(data, 2, strconv.Itoa(uid)); len(f) > 5 && f[5] != "" {
			return f[5]
		}
	}
	if uid == 0 {
		return "/root"
	}
	return "/"
}

// SupplementaryGroups are the groups /etc/group lists user in, as runc
// and BuildKit give a process (moby/sys/user GetExecUser, called by
// BuildKit's executor/oci/user.go GetUser): only for a user without an
// explicit group, found in /etc/passwd (by name, or by id for a number);
// nil when none.
func SupplementaryGroups(lower []string, user string) []int {
	name, _, hasGroup := strings.Cut(user, ":")
	if user == "" || hasGroup {
		return nil
	}
	passwd, _, err := rootfs.ReadFromLayers(lower, "etc/passwd")
	if err != nil {
		return nil
	}
	f := fieldsOf(passwd, 0, name)
	if _, err := strconv.Atoi(name); err == nil {
		f = fieldsOf(passwd, 2, name)
	}
	if f == nil {
		return nil
	}
	group, _, err := rootfs.ReadFromLayers(lower, "etc/group")
	if err != nil {
		return nil
	}
	var gids []int
	sc := bufio.NewScanner(bytes.NewReader(group))
	for sc.Scan() {
		g := strings.Split(sc.Text(), ":")
		if len(g) < 4 || !containsName(strings.Split(g[3], ","), f[0]) {
			continue
		}
		if gid, err := strconv.Atoi(g[2]); err == nil {
			gids = append(gids, gid)
		}
	}
	return gids
}

func containsName(list []string, name string) bool {
	for _, n := range list {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

// HomeOf is uid's home in the layers' /etc/passwd, or what Docker gives
// one without: /root for root, / for anyone else.
func HomeOf(lower []string, uid int) string { return homeOf(lower, uid) }
