package devices

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Type is the kind of device a Rule matches.
type Type byte

const (
	Char  Type = 'c' // character devices
	Block Type = 'b' // block devices
	All   Type = 'a' // both; expanded into one Char and one Block rule
)

// Access is a set of the operations a Rule allows.
type Access uint8

const (
	Read  Access = 1 << iota // open for reading
	Write                    // open for writing
	Mknod                    // mknod(2) of the node
	RWM   = Read | Write | Mknod
)

// String gives the access in the kernel's "rwm" form.
func (a Access) String() string {
	var b strings.Builder
	if a&Read != 0 {
		b.WriteByte('r')
	}
	if a&Write != 0 {
		b.WriteByte('w')
	}
	if a&Mknod != 0 {
		b.WriteByte('m')
	}
	return b.String()
}

// Wildcard as a Major or Minor matches every number ("*").
const Wildcard int64 = -1

// Limits of a Linux dev_t (MKDEV: 12 bits of major, 20 of minor).
const (
	maxMajor = 1<<12 - 1
	maxMinor = 1<<20 - 1
)

// Rule allows one kind of access to a set of devices. A policy is a list of
// rules on top of "deny everything": what no rule allows is refused (EPERM).
type Rule struct {
	Type   Type
	Major  int64 // or Wildcard
	Minor  int64 // or Wildcard
	Access Access
}

// String gives the rule in the form devices.allow takes: "c 1:3 rwm".
func (r Rule) String() string {
	num := func(n int64) string {
		if n == Wildcard {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.Type, num(r.Major), num(r.Minor), r.Access)
}

// Validate reports a rule that matches nothing sensible or cannot be
// expressed in a cgroup: an unknown type, a number out of dev_t's range, no
// access or an unknown access bit.
func (r Rule) Validate() error {
	switch r.Type {
	case Char, Block, All:
	default:
		return fmt.Errorf("devices: rule %q: unknown type %q (want c, b or a)", r, rune(r.Type))
	}
	if r.Major != Wildcard && (r.Major < 0 || r.Major > maxMajor) {
		return fmt.Errorf("devices: rule %q: major %d out of range 0..%d", r, r.Major, maxMajor)
	}
	if r.Minor != Wildcard && (r.Minor < 0 || r.Minor > maxMinor) {
		return fmt.Errorf("devices: rule %q: minor %d out of range 0..%d", r, r.Minor, maxMinor)
	}
	if r.Access == 0 || r.Access&^RWM != 0 {
		return fmt.Errorf("devices: rule %q: access must be a non-empty subset of rwm (got %#x)", r, uint8(r.Access))
	}
	return nil
}

// ParseRule reads a rule in devices.allow form: "TYPE MAJOR:MINOR ACCESS",
// with "*" for a wildcard number, e.g. "c 10:229 rwm" or "c 136:* rw".
func ParseRule(s string) (Rule, error) {
	f := strings.Fields(s)
	bad := func(why string) (Rule, error) {
		return Rule{}, fmt.Errorf("devices: rule %q: %s (want e.g. \"c 10:229 rwm\")", s, why)
	}
	if len(f) != 3 || len(f[0]) != 1 {
		return bad("not TYPE MAJOR:MINOR ACCESS")
	}
	r := Rule{Type: Type(f[0][0])}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok {
		return bad("no MAJOR:MINOR")
	}
	num := func(t string) (int64, bool) {
		if t == "*" {
			return Wildcard, true
		}
		n, err := strconv.ParseInt(t, 10, 64)
		return n, err == nil && n >= 0
	}
	if r.Major, ok = num(maj); !ok {
		return bad("bad major")
	}
	if r.Minor, ok = num(min); !ok {
		return bad("bad minor")
	}
	for _, c := range f[2] {
		switch c {
		case 'r':
			r.Access |= Read
		case 'w':
			r.Access |= Write
		case 'm':
			r.Access |= Mknod
		default:
			return bad(fmt.Sprintf("unknown access %q", c))
		}
	}
	return r, r.Validate()
}

// Default is the standard set every container gets: the nodes devbox creates
// in /dev plus the terminal devices, each with rwm, as in runc's
// specconv.AllowedDevices (which Docker's default "deny all" is completed
// with):
//
//	c 1:3 null    c 1:5 zero    c 1:7 full    c 1:8 random    c 1:9 urandom
//	c 5:0 tty     c 5:1 console c 5:2 ptmx    c 136:* /dev/pts/N
//
// Unlike runc it does not allow mknod of every device ("c *:* m", "b *:* m"),
// nor /dev/net/tun (c 10:200): creating any other node fails as opening it
// does. Extra devices come from the spec, through FromPath. The slice is new
// on each call.
func Default() []Rule {
	return []Rule{
		{Char, 1, 3, RWM},          // /dev/null
		{Char, 1, 5, RWM},          // /dev/zero
		{Char, 1, 7, RWM},          // /dev/full
		{Char, 1, 8, RWM},          // /dev/random
		{Char, 1, 9, RWM},          // /dev/urandom
		{Char, 5, 0, RWM},          // /dev/tty
		{Char, 5, 1, RWM},          // /dev/console
		{Char, 5, 2, RWM},          // /dev/ptmx
		{Char, 136, Wildcard, RWM}, // /dev/pts/*
	}
}

// FromPath gives the rule that allows the host device node at path (rwm),
// for the spec's `[security] devices = ["/dev/fuse"]`. A symlink is followed
// (e.g. /dev/disk/by-id/...). A path that does not exist or is not a
// character or block device is an error that says so.
func FromPath(path string) (Rule, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Rule{}, fmt.Errorf("devices: %s: no such device node on the host", path)
		}
		return Rule{}, fmt.Errorf("devices: %w", &fs.PathError{Op: "stat", Path: path, Err: err})
	}
	var t Type
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		t = Char
	case unix.S_IFBLK:
		t = Block
	default:
		return Rule{}, fmt.Errorf("devices: %s is %s, not a device node", path, kind(os.FileMode(st.Mode&0o777)|modeType(st.Mode)))
	}
	r := Rule{Type: t, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)), Access: RWM}
	return r, r.Validate()
}

func modeType(m uint32) os.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return os.ModeDir
	case unix.S_IFIFO:
		return os.ModeNamedPipe
	case unix.S_IFSOCK:
		return os.ModeSocket
	case unix.S_IFLNK:
		return os.ModeSymlink
	}
	return 0
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a device"
}

// expand checks rules and gives them with every All rule replaced by a Char
// and a Block rule, so that both cgroup versions see the same list. In v1 an
// "a" line in devices.allow would switch the cgroup to allow-everything
// whatever its numbers say; here "a 1:3 r" means what it reads as.
func expand(rules []Rule) ([]Rule, error) {
	out := make([]Rule, 0, len(rules)+1)
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		if r.Type == All {
			c, b := r, r
			c.Type, b.Type = Char, Block
			out = append(out, c, b)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}
