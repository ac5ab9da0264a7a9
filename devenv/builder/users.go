package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/devbox/devbox/rootfs"
)

// The user step writes /etc/passwd, /etc/group, /etc/shadow (and
// /etc/gshadow where the image has one) itself, as useradd and chpasswd
// would leave them, so that a base without those tools (busybox,
// distroless) gets its SSH user and password too. The files are read from
// the layers below, changed line by line, and written whole into the
// step's layer, keeping the image's other entries and each file's mode
// and owner; the step's layer is committed only when all is written.

// account is what the user step makes or changes.
type account struct {
	name, shell string
}

// Ids of the first user an image's tools would make (login.defs).
const (
	firstID = 1000
	lastID  = 59999
)

// userFiles are the account files of a base, as read from its layers.
type userFiles struct {
	lower  []string // the layers, top first
	upper  string   // the step's layer
	passwd []string // lines
	group  []string
	shadow []string // nil: the image has none
	gshad  []string // nil: the image has none
}

func readUserFiles(lower []string, upper string) (*userFiles, error) {
	u := &userFiles{lower: lower, upper: upper}
	for _, f := range []struct {
		rel      string
		dst      *[]string
		required bool
	}{{"etc/passwd", &u.passwd, true}, {"etc/group", &u.group, false}, {"etc/shadow", &u.shadow, false}, {"etc/gshadow", &u.gshad, false}} {
		data, _, err := rootfs.ReadFromLayers(lower, f.rel)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !f.required:
			continue
		case errors.Is(err, fs.ErrNotExist):
			*f.dst = []string{"root:x:0:0:root:/root:/bin/sh"} // an image with no users at all
			continue
		case err != nil:
			return nil, fmt.Errorf("/%s: %w", f.rel, err)
		}
		*f.dst = splitLines(string(data))
	}
	if u.group == nil {
		u.group = []string{"root:x:0:"}
	}
	return u, nil
}

func splitLines(s string) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines
}

// find returns the index of name's line in lines, or -1.
func find(lines []string, name string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, name+":") {
			return i
		}
	}
	return -1
}

// ensureUser adds an account with its own group and a home directory
// with the base's skeleton files, unless the image has the user already.
func (u *userFiles) ensureUser(a account) error {
	if find(u.passwd, a.name) >= 0 {
		return nil
	}
	uid := freeID(u.passwd, 2)
	gid := uid
	if usedIDs(u.group, 2)[gid] {
		gid = freeID(u.group, 2)
	}
	home := "/home/" + a.name
	u.passwd = append(u.passwd, fmt.Sprintf("%s:x:%d:%d::%s:%s", a.name, uid, gid, home, a.shell))
	if find(u.group, a.name) < 0 {
		u.group = append(u.group, fmt.Sprintf("%s:x:%d:", a.name, gid))
		if u.gshad != nil {
			u.gshad = append(u.gshad, a.name+":!::")
		}
	}
	if u.shadow == nil {
		u.shadow = []string{}
	}
	return u.makeHome(home, uid, gid)
}

// usedIDs are the ids in field (2 for passwd's uid and group's gid).
func usedIDs(lines []string, field int) map[int]bool {
	used := map[int]bool{}
	for _, l := range lines {
		if f := strings.Split(l, ":"); len(f) > field {
			if id, err := strconv.Atoi(f[field]); err == nil {
				used[id] = true
			}
		}
	}
	return used
}

// freeID is the next id after the highest in [firstID, lastID], as useradd
// picks it.
func freeID(lines []string, field int) int {
	next := firstID
	for id := range usedIDs(lines, field) {
		if id >= firstID && id <= lastID && id >= next {
			next = id + 1
		}
	}
	return next
}

// shadowDays is the day a password change is dated in /etc/shadow: the
// build's source date epoch's, as shadow's tools date it, else today.
func shadowDays(epoch int64) string {
	if epoch == 0 {
		epoch = time.Now().Unix()
	}
	return strconv.FormatInt(epoch/86400, 10)
}

// setPassword puts hash in name's shadow entry, dated days, making one if
// needed.
func (u *userFiles) setPassword(name, hash, days string) {
	if hash == "" {
		hash = "!" // locked for passwords; keys still log in, as after useradd
		if i := find(u.shadow, name); i >= 0 {
			return // keep what the image has
		}
	}
	if u.shadow == nil {
		u.shadow = []string{}
	}
	if i := find(u.shadow, name); i >= 0 {
		f := strings.Split(u.shadow[i], ":")
		for len(f) < 9 {
			f = append(f, "")
		}
		f[1], f[2] = hash, days
		u.shadow[i] = strings.Join(f, ":")
		return
	}
	u.shadow = append(u.shadow, name+":"+hash+":"+days+":0:99999:7:::")
}

// write writes the files into the step's layer.
func (u *userFiles) write() error {
	files := []struct {
		rel   string
		lines []string
		mode  os.FileMode
	}{{"etc/passwd", u.passwd, 0o644}, {"etc/group", u.group, 0o644}, {"etc/shadow", u.shadow, 0o600}, {"etc/gshadow", u.gshad, 0o600}}
	for _, f := range files {
		if f.lines == nil {
			continue
		}
		if err := u.writeLike(f.rel, []byte(strings.Join(f.lines, "\n")+"\n"), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeLike writes rel in the step's layer with the mode and owner the
// image gives it (mode for a new file), its directories made like the
// image's.
func (u *userFiles) writeLike(rel string, data []byte, mode os.FileMode) error {
	uid, gid := 0, 0
	if fi := rootfs.StatInLayers(u.lower, rel); fi != nil {
		mode = fi.Mode().Perm()
		st := fi.Sys().(*syscall.Stat_t)
		uid, gid = int(st.Uid), int(st.Gid)
	}
	if err := u.mkdirsLike(filepath.Dir(rel)); err != nil {
		return err
	}
	p := filepath.Join(u.upper, rel)
	tmp := p + ".devbox-tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil { // past the umask
		return err
	}
	if err := os.Lchown(tmp, uid, gid); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// mkdirsLike makes rel and its parents in the step's layer with the
// owner and mode the image gives them: in an overlay, the upper
// directory's attributes are the ones shown.
func (u *userFiles) mkdirsLike(rel string) error {
	if rel == "." || rel == "/" {
		return nil
	}
	if err := u.mkdirsLike(filepath.Dir(rel)); err != nil {
		return err
	}
	p := filepath.Join(u.upper, rel)
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	mode, uid, gid := os.FileMode(0o755), 0, 0
	if fi := rootfs.StatInLayers(u.lower, rel); fi != nil {
		if !fi.IsDir() {
			return fmt.Errorf("/%s is not a directory in the image", rel)
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode, uid, gid = fi.Mode().Perm()|fi.Mode()&os.ModeSticky, int(st.Uid), int(st.Gid)
	}
	if err := os.Mkdir(p, mode); err != nil {
		return err
	}
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return os.Lchown(p, uid, gid)
}

// makeHome makes the new user's home (private, as Debian's adduser
// makes it) with the image's /etc/skel files.
func (u *userFiles) makeHome(home string, uid, gid int) error {
	rel := strings.TrimPrefix(home, "/")
	if rootfs.StatInLayers(u.lower, rel) != nil {
		return nil
	}
	if err := u.mkdirsLike(filepath.Dir(rel)); err != nil {
		return err
	}
	p := filepath.Join(u.upper, rel)
	if err := os.Mkdir(p, 0o700); err != nil {
		return err
	}
	if err := os.Lchown(p, uid, gid); err != nil {
		return err
	}
	for _, name := range []string{".bashrc", ".profile", ".bash_logout", ".shrc"} {
		data, fi, err := rootfs.ReadFromLayers(u.lower, "etc/skel/"+name)
		if err != nil {
			continue
		}
		f := filepath.Join(p, name)
		if err := os.WriteFile(f, data, fi.Mode().Perm()); err != nil {
			return err
		}
		if err := os.Lchown(f, uid, gid); err != nil {
			return err
		}
	}
	return nil
}
