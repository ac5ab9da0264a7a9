package subid

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/internal/lockfile"
	"github.com/devbox/devbox/internal/proc"
	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/runtime/userns"
)

// User is the name devbox's subordinate ids are listed under.
const User = "devbox"

// defaultCount is how many ids devbox adds for itself when it has none:
// 1024 slots.
const defaultCount = 1024 * userns.Size

// HostDir is where the slots of every state root on the host are
// recorded: host-wide, as /etc/subuid is, so that no two environments of
// any two state roots (a second checkout's --root, a test run) share ids.
const HostDir = "/var/lib/devbox-userns"

// Allocator allocates slots under Dir, one file per slot in use, named
// for the slot and holding its owner; Root is the state root whose
// environments it allocates for.
type Allocator struct {
	Root   state.Root
	Dir    string
	SubUID string // /etc/subuid
	SubGID string // /etc/subgid
}

// New is the host-wide allocator, for the environments of a state root.
func New(root state.Root) Allocator {
	// One name per root however it is reached: a link to it, a relative
	// --root.
	if real, err := filepath.EvalSymlinks(root.Dir()); err == nil {
		root = state.Root(real)
	} else if abs, err := filepath.Abs(root.Dir()); err == nil {
		root = state.Root(abs)
	}
	return Allocator{Root: root, Dir: HostDir, SubUID: "/etc/subuid", SubGID: "/etc/subgid"}
}

// Env returns environment name's range, the same at every up until
// ReleaseEnv.
func (a Allocator) Env(name string) (userns.IDMap, error) { return a.acquire(a.envOwner(name)) }

// ReleaseEnv gives back environment name's range (devbox rm).
func (a Allocator) ReleaseEnv(name string) error { return a.release(a.envOwner(name)) }

// Transient returns a range for one build step or one-shot run of this
// process, and the function that gives it back; if the process dies
// first, the range is taken back by a later Acquire.
func (a Allocator) Transient() (userns.IDMap, func(), error) {
	b := make([]byte, 8)
	rand.Read(b)
	owner := "pid " + proc.Self().String() + " " + hex.EncodeToString(b)
	m, err := a.acquire(owner)
	if err != nil {
		return m, nil, err
	}
	return m, func() { a.release(owner) }, nil
}

// Holds reports whether host ids uid and gid lie in devbox's container
// ranges (/etc/subuid and /etc/subgid), which no host file outside
// devbox's own should be owned by.
func (a Allocator) Holds(uid, gid uint32) (bool, error) {
	for _, c := range []struct {
		path string
		id   uint32
	}{{a.SubUID, uid}, {a.SubGID, gid}} {
		ranges, err := readRanges(c.path)
		if err != nil {
			return false, err
		}
		if r, ok := ranges[User]; ok && c.id >= r.start && uint64(c.id) < uint64(r.start)+uint64(r.count) {
			return true, nil
		}
	}
	return false, nil
}

// envOwner names an environment host-wide: by its directory, an
// absolute path under its state root.
func (a Allocator) envOwner(name string) string { return "env " + a.Root.Env(name).Dir() }

// stale reports whether a slot's owner is gone (an environment whose
// directory was removed, a process that died) and nothing runs in its
// range any more: an environment whose state root was deleted under it
// keeps its ids until its last process ends.
func (a Allocator) stale(owner string, m userns.IDMap) bool {
	gone := false
	if dir, ok := strings.CutPrefix(owner, "env "); ok {
		_, err := os.Stat(dir)
		gone = errors.Is(err, os.ErrNotExist) || !filepath.IsAbs(dir)
	} else if rest, ok := strings.CutPrefix(owner, "pid "); ok {
		gone = !proc.Parse(rest).Alive()
	} else if owner == legacyOwner {
		gone = true
	}
	return gone && !proc.AnyIn(m.UID, m.Size)
}

// legacyOwner holds a slot that a container of an older devbox, which
// kept its ranges per state root, was found running in.
const legacyOwner = "legacy"

// importRunning records, once per host (the first time the host-wide
// registry is used), the slots that containers started by an older devbox
// run in, so that none is handed out again while they run.
func (a Allocator) importRunning(slots uint32, slot func(uint32) userns.IDMap) error {
	marker := filepath.Join(a.Dir, "imported")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if uids := proc.UIDs(); uids != nil {
		for i := uint32(0); i < slots; i++ {
			m := slot(i)
			for id := range uids {
				if id >= m.UID && id-m.UID < m.Size {
					if err := os.WriteFile(a.path(i), []byte(legacyOwner), 0o600); err != nil {
						return err
					}
					break
				}
			}
		}
	}
	return os.WriteFile(marker, nil, 0o600)
}

// acquire returns owner's slot: the one it has, or a free one. A slot
// whose owner is gone is free.
func (a Allocator) acquire(owner string) (userns.IDMap, error) {
	if err := os.MkdirAll(a.Dir, 0o700); err != nil {
		return userns.IDMap{}, err
	}
	unlock, err := lockfile.Lock(filepath.Join(a.Dir, "lock"))
	if err != nil {
		return userns.IDMap{}, err
	}
	defer unlock()
	uids, err := ensureRange(a.SubUID)
	if err != nil {
		return userns.IDMap{}, err
	}
	gids, err := ensureRange(a.SubGID)
	if err != nil {
		return userns.IDMap{}, err
	}
	slots := min(uids.count, gids.count) / userns.Size
	slot := func(i uint32) userns.IDMap {
		return userns.IDMap{UID: uids.start + i*userns.Size, GID: gids.start + i*userns.Size, Size: userns.Size}
	}
	if err := a.importRunning(slots, slot); err != nil {
		return userns.IDMap{}, err
	}
	owners := map[uint32]string{}
	entries, err := os.ReadDir(a.Dir)
	if err != nil {
		return userns.IDMap{}, err
	}
	for _, e := range entries {
		i, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || uint32(i) >= slots {
			continue // the lock, temporary files, or a slot of a larger range than /etc/subuid now gives
		}
		data, err := os.ReadFile(filepath.Join(a.Dir, e.Name()))
		if err != nil {
			return userns.IDMap{}, err
		}
		if string(data) == owner {
			return slot(uint32(i)), nil
		}
		owners[uint32(i)] = string(data)
	}
	free := -1
	for i := uint32(0); i < slots && free < 0; i++ {
		if o, used := owners[i]; !used || a.stale(o, slot(i)) {
			free = int(i)
		}
	}
	if free < 0 {
		return userns.IDMap{}, fmt.Errorf("user namespace: all %d ranges of %s's ids in %s and %s are in use", slots, User, a.SubUID, a.SubGID)
	}
	// Atomically: a torn owner would be neither live nor stale.
	tmp := a.path(uint32(free)) + ".tmp"
	if err := os.WriteFile(tmp, []byte(owner), 0o600); err != nil {
		return userns.IDMap{}, err
	}
	if err := os.Rename(tmp, a.path(uint32(free))); err != nil {
		return userns.IDMap{}, err
	}
	return slot(uint32(free)), nil
}

// release gives back the slot of owner, if it has one.
func (a Allocator) release(owner string) error {
	if _, err := os.Stat(a.Dir); errors.Is(err, os.ErrNotExist) {
		return nil // nothing was ever allocated here (rootless, or userns = false)
	}
	unlock, err := lockfile.Lock(filepath.Join(a.Dir, "lock"))
	if errors.Is(err, os.ErrPermission) {
		return nil // only the host's root allocates: nothing there is ours (rootless)
	}
	if err != nil {
		return err
	}
	defer unlock()
	entries, _ := os.ReadDir(a.Dir)
	for _, e := range entries {
		p := filepath.Join(a.Dir, e.Name())
		if data, err := os.ReadFile(p); err == nil && string(data) == owner && e.Name() != "lock" {
			return os.Remove(p)
		}
	}
	return nil
}

func (a Allocator) path(slot uint32) string {
	return filepath.Join(a.Dir, strconv.FormatUint(uint64(slot), 10))
}

// idRange is one line of /etc/subuid: start and count.
type idRange struct{ start, count uint32 }

// ensureRange returns devbox's range in the file at path, added above
// every other range (aligned, and past the ids useradd gives out) when it
// has none.
func ensureRange(path string) (idRange, error) {
	ranges, err := readRanges(path)
	if err != nil {
		return idRange{}, err
	}
	if r, ok := ranges[User]; ok {
		if r.count < userns.Size {
			return idRange{}, fmt.Errorf("%s: %s has %d ids, a container needs %d", path, User, r.count, userns.Size)
		}
		return r, nil
	}
	end := uint64(1 << 20)
	for _, r := range ranges {
		end = max(end, uint64(r.start)+uint64(r.count))
	}
	start := (end + userns.Size - 1) / userns.Size * userns.Size
	if start+defaultCount > 1<<32-1 {
		return idRange{}, fmt.Errorf("%s: no room for %d ids for %s above the other ranges", path, defaultCount, User)
	}
	// Under shadow-utils' own lock, so that a concurrent useradd does
	// not write the file over this line.
	unlock, err := shadowLock(path)
	if err != nil {
		return idRange{}, err
	}
	defer unlock()
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return idRange{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return idRange{}, err
	}
	defer f.Close()
	line := fmt.Sprintf("%s:%d:%d\n", User, start, defaultCount)
	if len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		return idRange{}, fmt.Errorf("add %s's ids to %s: %w", User, path, err)
	}
	return idRange{uint32(start), defaultCount}, nil
}

// readRanges reads NAME:START:COUNT lines; a missing file has none. Of a
// name listed twice the first line counts, as for newuidmap it is the
// first that fits.
func readRanges(path string) (map[string]idRange, error) {
	ranges := map[string]idRange{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return ranges, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s:%d: want NAME:START:COUNT", path, n)
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: want NAME:START:COUNT", path, n)
		}
		if _, seen := ranges[parts[0]]; !seen {
			ranges[parts[0]] = idRange{uint32(start), uint32(count)}
		}
	}
	return ranges, sc.Err()
}

// shadowLock takes shadow-utils' lock of path (path.lock, made by link(2)
// from a file naming the holder, as lckpwdf does), waiting up to 15 s.
func shadowLock(path string) (unlock func(), err error) {
	lock := path + ".lock"
	tmp := fmt.Sprintf("%s.%d", lock, os.Getpid())
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := os.Link(tmp, lock)
		if err == nil {
			return func() { os.Remove(lock) }, nil
		}
		if !errors.Is(err, os.ErrExist) || time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s (held by useradd or another tool?): %w", path, err)
		}
		// A holder that died left its lock: shadow-utils takes it over too.
		if data, err := os.ReadFile(lock); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 && unix.Kill(pid, 0) == unix.ESRCH {
				os.Remove(lock)
			}
		}
	}
}
