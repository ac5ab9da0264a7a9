package rootfs

import (
	"archive/tar"
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/devbox/devbox/runtime/rootless"
	"github.com/devbox/devbox/runtime/userns"
)

// owners are the ids this process can give a file: every id, as the
// host's root (owners is nil then); in a user namespace, those it maps.
// Rootless with no subordinate ids only root is mapped, and a layer entry
// owned by another id is stored as root's and counted, as podman's
// ignore_chown_errors does; what then needs that owner fails at its use,
// with the hint the build prints.
type owners struct {
	uids, gids []idSpan
	squashed   int
}

type idSpan struct{ first, count int }

// ownersOf reads this process's id maps; nil in the host's namespace, or
// when they cannot be read (chown then says what it cannot do).
func ownersOf() *owners {
	if userns.Initial() {
		return nil
	}
	uids, err1 := readIDMap("/proc/self/uid_map")
	gids, err2 := readIDMap("/proc/self/gid_map")
	if err1 != nil || err2 != nil {
		return nil
	}
	return &owners{uids: uids, gids: gids}
}

// readIDMap reads the ids inside the namespace from a uid_map or gid_map.
func readIDMap(path string) ([]idSpan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var spans []idSpan
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) != 3 {
			continue
		}
		first, err1 := strconv.Atoi(fl[0])
		count, err2 := strconv.ParseUint(fl[2], 10, 32)
		if err1 == nil && err2 == nil {
			spans = append(spans, idSpan{first, int(count)})
		}
	}
	return spans, sc.Err()
}

func mapped(spans []idSpan, id int) bool {
	for _, s := range spans {
		if id >= s.first && id-s.first < s.count {
			return true
		}
	}
	return false
}

// fit gives hdr owners this process can set. A lost owner's rights must
// not become root's: its setuid or setgid bit goes, and so do the file
// capabilities of a lost user's file.
func (o *owners) fit(hdr *tar.Header) {
	if o == nil {
		return
	}
	uidOK, gidOK := mapped(o.uids, hdr.Uid), mapped(o.gids, hdr.Gid)
	if uidOK && gidOK {
		return
	}
	o.squashed++
	if !uidOK {
		hdr.Uid = 0
		hdr.Mode &^= 0o4000
		delete(hdr.PAXRecords, "SCHILY.xattr.security.capability")
	}
	if !gidOK {
		hdr.Gid = 0
		if hdr.Typeflag != tar.TypeDir { // a directory's setgid only passes its group on
			hdr.Mode &^= 0o2000
		}
	}
}

// report warns of squashed owners, once per layer.
func (o *owners) report(warn func(string)) {
	if o == nil || o.squashed == 0 {
		return
	}
	hint := "the user namespace lacks their ids"
	if h, ok := rootless.Active(); ok && h.Single {
		hint = "this user has no subordinate ids; " + rootless.AddRangeHint(h.Username())
	}
	warn(fmt.Sprintf("%d entries owned by other users are stored as root's: %s", o.squashed, hint))
}
