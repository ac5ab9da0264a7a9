package rootless

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/runtime/userns"
)

// The child learns from its environment that it runs rootless (envHost:
// the host user, and whether it has one id only); on its first exec, where
// to wait for its maps (envSync: a descriptor); on its second, its
// parent's pid (envParent), to die with it.
const (
	envHost   = "_DEVBOX_ROOTLESS"
	envSync   = "_DEVBOX_ROOTLESS_SYNC"
	envParent = "_DEVBOX_ROOTLESS_PARENT"
	syncFD    = 3
)

// Size is how many ids the namespace maps: root and the 16-bit ids
// images use (nobody is 65534).
const Size = 65536

// Host is the user on whose behalf a rootless devbox runs.
type Host struct {
	UID, GID int
	// Single is set when the user has no subordinate ids: the namespace
	// maps the user alone, as root.
	Single bool
}

func (h Host) String() string {
	s := strconv.Itoa(h.UID) + ":" + strconv.Itoa(h.GID)
	if h.Single {
		s += ":single"
	}
	return s
}

// Username is the host user's login name, or its uid.
func (h Host) Username() string {
	if u, err := user.LookupId(strconv.Itoa(h.UID)); err == nil {
		return u.Username
	}
	return strconv.Itoa(h.UID)
}

// Active returns the host user when this process runs rootless: it is
// the child of Reexec, or was started by it (and so in a user namespace).
func Active() (Host, bool) {
	if userns.Initial() {
		return Host{}, false // the host's root, whatever its environment says
	}
	return parseHost(os.Getenv(envHost))
}

// parseHost reads Host.String's form.
func parseHost(v string) (Host, bool) {
	parts := strings.Split(v, ":")
	var h Host
	var err1, err2 error
	if len(parts) >= 2 {
		h.UID, err1 = strconv.Atoi(parts[0])
		h.GID, err2 = strconv.Atoi(parts[1])
	}
	if len(parts) < 2 || err1 != nil || err2 != nil {
		return Host{}, false
	}
	h.Single = len(parts) > 2 && parts[2] == "single"
	return h, true
}

// Needed reports whether this process must re-execute itself rootless:
// it is not root and not in the namespace already.
func Needed() bool { return os.Geteuid() != 0 && os.Getenv(envHost) == "" }

// Current is the calling user, with the ids it runs as (a user under sg
// or newgrp has another group than its passwd entry's): the ones the
// kernel and newgidmap allow to map.
func Current() *user.User {
	u, err := user.LookupId(strconv.Itoa(os.Geteuid()))
	if err != nil {
		u = &user.User{Username: strconv.Itoa(os.Geteuid())}
	}
	u.Uid, u.Gid = strconv.Itoa(os.Geteuid()), strconv.Itoa(os.Getegid())
	return u
}

// Mapping is the namespace's id maps.
type Mapping struct {
	Host Host
	UIDs []syscall.SysProcIDMap
	GIDs []syscall.SysProcIDMap
}

// MappingFor maps root to the user and ids from 1 to the first range of
// its subordinate ids in subuid and subgid (by name or by uid), at most
// Size-1 of them; without a range in both, the user alone.
func MappingFor(u *user.User, subuid, subgid string) (Mapping, error) {
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return Mapping{}, fmt.Errorf("user %s: ids %s:%s", u.Username, u.Uid, u.Gid)
	}
	m := Mapping{
		Host: Host{UID: uid, GID: gid},
		UIDs: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		GIDs: []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
	}
	ustart, ucount, err := subRange(subuid, u)
	if err != nil {
		return m, err
	}
	gstart, gcount, err := subRange(subgid, u)
	if err != nil {
		return m, err
	}
	if ucount == 0 || gcount == 0 {
		m.Host.Single = true
		return m, nil
	}
	m.UIDs = append(m.UIDs, syscall.SysProcIDMap{ContainerID: 1, HostID: ustart, Size: min(ucount, Size-1)})
	m.GIDs = append(m.GIDs, syscall.SysProcIDMap{ContainerID: 1, HostID: gstart, Size: min(gcount, Size-1)})
	return m, nil
}

// subRange is u's first range in a subordinate id file (NAME:START:COUNT
// lines, NAME a login or a uid); a missing file has none.
func subRange(path string, u *user.User) (start, count int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 || parts[0] != u.Username && parts[0] != u.Uid {
			continue
		}
		s, err1 := strconv.Atoi(parts[1])
		c, err2 := strconv.Atoi(parts[2])
		if err1 == nil && err2 == nil && c > 0 {
			return s, c, nil
		}
	}
	return 0, 0, sc.Err()
}

// AddRangeHint is how a user gets subordinate ids: the line for the admin.
func AddRangeHint(username string) string {
	return fmt.Sprintf("give %s subordinate ids (sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s, with a range no other user has)", username, username)
}

// Reexec runs this command again as root of a user namespace mapped by
// MappingFor the current user, and returns its exit code. Standard files,
// the terminal and the environment are the child's too; signals sent to
// this process are passed on.
func Reexec() (int, error) {
	m, err := MappingFor(Current(), "/etc/subuid", "/etc/subgid")
	if err != nil {
		return 1, fmt.Errorf("rootless: %w", err)
	}
	cmd, err := start(m)
	if err != nil {
		return 1, err
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	// ^C and ^\ reach the child from the terminal itself when this
	// process group is the terminal's foreground: passing them on would
	// deliver them twice.
	keyboard := foreground()
	go func() {
		for s := range sigs {
			if !(keyboard && (s == unix.SIGINT || s == unix.SIGQUIT)) {
				cmd.Process.Signal(s)
			}
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// foreground reports whether this process's group is the foreground of
// the terminal on its standard input.
func foreground() bool {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// start starts the child in its namespaces and maps them: Go writes a
// one-id map itself; a range takes newuidmap and newgidmap, run once the
// child exists, which then waits on the sync pipe.
func start(m Mapping) (*exec.Cmd, error) {
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envHost+"="+m.Host.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
		Pdeathsig:  unix.SIGKILL,
	}
	if m.Host.Single {
		cmd.SysProcAttr.UidMappings, cmd.SysProcAttr.GidMappings = m.UIDs, m.GIDs
		if err := cmd.Start(); err != nil {
			return nil, userNSError(err)
		}
		return cmd, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	cmd.ExtraFiles = []*os.File{r}
	cmd.Env = append(cmd.Env, envSync+"="+strconv.Itoa(syncFD), envParent+"="+strconv.Itoa(os.Getpid()))
	err = cmd.Start()
	r.Close()
	if err != nil {
		return nil, userNSError(err)
	}
	if err := writeMaps(cmd.Process.Pid, m); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	if _, err := w.Write([]byte{1}); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("rootless: %w", err)
	}
	return cmd, nil
}

// userNSError explains a user namespace the host refuses to a user.
func userNSError(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOSPC) {
		return fmt.Errorf("rootless: the host does not let users make user namespaces (%w): allow them with sudo sysctl -w kernel.unprivileged_userns_clone=1 (Debian) and user.max_user_namespaces > 0, or run devbox as root", err)
	}
	return fmt.Errorf("rootless: start in a user namespace: %w", err)
}

// writeMaps writes pid's maps with the setuid helpers, which check them
// against /etc/subuid and /etc/subgid.
func writeMaps(pid int, m Mapping) error {
	for _, h := range []struct {
		tool string
		maps []syscall.SysProcIDMap
	}{{"newuidmap", m.UIDs}, {"newgidmap", m.GIDs}} {
		bin, err := exec.LookPath(h.tool)
		if err != nil {
			return fmt.Errorf("rootless: %s is not installed: sudo apt-get install uidmap", h.tool)
		}
		args := []string{strconv.Itoa(pid)}
		for _, e := range h.maps {
			args = append(args, strconv.Itoa(e.ContainerID), strconv.Itoa(e.HostID), strconv.Itoa(e.Size))
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("rootless: %s %s: %v: %s", h.tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// Enter, in the child of Reexec, waits until its maps are written and
// re-executes this command, now as the namespace's root with its
// capabilities; then, re-executed, it asks to die with its parent again
// (the exec that gave it capabilities cleared that). It returns at once in
// any other process.
func Enter() {
	if p := os.Getenv(envParent); p != "" && os.Getenv(envSync) == "" {
		os.Unsetenv(envParent)
		unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
		if strconv.Itoa(os.Getppid()) != p {
			os.Exit(1) // the parent is gone already
		}
		return
	}
	if os.Getenv(envSync) == "" || userns.Initial() {
		return
	}
	os.Unsetenv(envSync)
	var st unix.Stat_t
	if err := unix.Fstat(syncFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		fmt.Fprintln(os.Stderr, "devbox: rootless: no sync pipe from the parent")
		os.Exit(1)
	}
	f := os.NewFile(syncFD, "rootless-sync")
	b := make([]byte, 1)
	n, _ := f.Read(b)
	f.Close()
	if n != 1 {
		os.Exit(1) // the parent failed to map us and says why
	}
	err := unix.Exec("/proc/self/exe", os.Args, os.Environ())
	fmt.Fprintf(os.Stderr, "devbox: rootless: re-execute: %v\n", err)
	os.Exit(1)
}
