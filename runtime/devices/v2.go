package devices

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// progName shows in `bpftool cgroup tree` and `bpftool prog`.
const progName = "devbox_devices"

// AttachV2 builds the device program for rules, loads it and attaches it to
// the cgroup-v2 directory cgroupDir (e.g. /sys/fs/cgroup/devbox/NAME). The
// program stays attached after the calling process exits and goes away with
// the cgroup (rmdir).
//
// The attach is the legacy BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI, as runc's
// and systemd's: the attachment belongs to the cgroup, not to a file
// descriptor. A bpf_link (BPF_LINK_CREATE) would be detached as soon as its
// last fd closed, i.e. when `devbox up` returns, unless it were pinned in a
// bpffs that devbox would then have to mount and clean up. ALLOW_MULTI means
// that programs of the cgroup's ancestors (systemd's, a parent runtime's) all
// still run and must all allow, and that a program attached below ours (by
// whoever could) can only refuse more, never override ours.
//
// A device program already attached to cgroupDir (AttachV2 called again) is
// replaced atomically (BPF_F_REPLACE); if there are several, the new program
// is attached first and the old ones then detached, so the cgroup is never
// without a filter.
//
// Needs CAP_BPF and CAP_NET_ADMIN or CAP_SYS_ADMIN in the initial user
// namespace, i.e. host root; kernel 5.15 or later (the kernel charges the
// program to the memory cgroup since 5.11; on an older one RLIMIT_MEMLOCK is
// raised for the load and put back).
func AttachV2(cgroupDir string, rules []Rule) error {
	rules, err := expand(rules)
	if err != nil {
		return err
	}
	dir, err := unix.Open(cgroupDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("devices: open cgroup %s: %w", cgroupDir, err)
	}
	defer unix.Close(dir)

	prog, err := load(rules)
	if err != nil {
		return err
	}
	defer prog.Close()

	old, err := attached(dir)
	if err != nil {
		return fmt.Errorf("devices: cgroup %s: %w", cgroupDir, err)
	}
	defer func() {
		for _, p := range old {
			p.Close()
		}
	}()

	opts := link.RawAttachProgramOptions{
		Target:  dir,
		Program: prog,
		Attach:  ebpf.AttachCGroupDevice,
		Flags:   unix.BPF_F_ALLOW_MULTI,
	}
	if len(old) == 1 {
		opts.Anchor = link.ReplaceProgram(old[0]) // BPF_F_REPLACE, Linux 5.6
	}
	if err := link.RawAttachProgram(opts); err != nil {
		return fmt.Errorf("devices: attach device program to %s (BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI): %w", cgroupDir, err)
	}
	if len(old) > 1 {
		for _, p := range old {
			err := link.RawDetachProgram(link.RawDetachProgramOptions{
				Target:  dir,
				Program: p,
				Attach:  ebpf.AttachCGroupDevice,
			})
			if err != nil {
				return fmt.Errorf("devices: detach old device program from %s: %w", cgroupDir, err)
			}
		}
	}
	return nil
}

// load loads the program for rules (already expanded).
//
// It makes the BPF_PROG_LOAD call itself rather than through
// ebpf.NewProgram, which in a fresh process first probes the kernel for
// object names and BTF func/line info by loading throwaway programs and BTF:
// measured here, ~0.45 ms for the first load in a process against ~0.15 ms
// for the bare call, and devbox loads one program per process, on the
// container start path.
func load(rules []Rule) (*ebpf.Program, error) {
	code, err := bytecode(rules)
	if err != nil {
		return nil, err
	}
	fd, err := progLoad(code, nil)
	if errors.Is(err, unix.EPERM) {
		// Before Linux 5.11 a program is charged to RLIMIT_MEMLOCK, whose
		// default (64 KiB or 8 MiB) may be spent. Raise it for this load
		// only: the limit would be inherited by the container's processes.
		fd, err = loadUnlimited(code)
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EACCES) {
		// Refused by the verifier: load again for its log.
		log := make([]byte, 64<<10)
		if _, lerr := progLoad(code, log); lerr != nil {
			err = fmt.Errorf("%w; verifier log:\n%s", err, unix.ByteSliceToString(log))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("devices: load device program (BPF_PROG_LOAD; needs host root: CAP_BPF and CAP_SYS_ADMIN): %w", err)
	}
	prog, err := ebpf.NewProgramFromFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("devices: %w", err)
	}
	return prog, nil
}

// codeCache keeps each rule list's bytecode for the life of the process.
var codeCache sync.Map // rule list key -> []byte

// bytecode gives the marshalled program for rules, made once per distinct
// rule list in a process.
func bytecode(rules []Rule) ([]byte, error) {
	var key strings.Builder
	for _, r := range rules {
		key.WriteString(r.String())
		key.WriteByte('\n')
	}
	if code, ok := codeCache.Load(key.String()); ok {
		return code.([]byte), nil
	}
	var buf bytes.Buffer
	insts := instructions(rules)
	buf.Grow(int(insts.Size()))
	if err := insts.Marshal(&buf, nativeEndian()); err != nil {
		return nil, fmt.Errorf("devices: [internal error] marshal program: %w", err)
	}
	codeCache.Store(key.String(), buf.Bytes())
	return buf.Bytes(), nil
}

// nativeEndian is binary.LittleEndian or binary.BigEndian, the values asm
// accepts (not binary.NativeEndian).
func nativeEndian() binary.ByteOrder {
	x := uint16(1)
	if *(*byte)(unsafe.Pointer(&x)) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}

// progLoadAttr is the head of union bpf_attr for BPF_PROG_LOAD, up to
// prog_name (Linux 4.15); the kernel zero-fills what follows.
type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64 // pointer
	license     uint64 // pointer
	logLevel    uint32
	logSize     uint32
	logBuf      uint64 // pointer
	kernVersion uint32
	progFlags   uint32
	progName    [unix.BPF_OBJ_NAME_LEN]byte
}

var license = []byte("Apache-2.0\x00")

// progLoad loads code as a BPF_PROG_TYPE_CGROUP_DEVICE program, with the
// verifier's log in log if it is not nil.
func progLoad(code, log []byte) (int, error) {
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(code) / asm.InstructionSize),
		insns:    uint64(uintptr(unsafe.Pointer(unsafe.SliceData(code)))),
		license:  uint64(uintptr(unsafe.Pointer(unsafe.SliceData(license)))),
	}
	copy(attr.progName[:], progName)
	if log != nil {
		attr.logLevel = 1
		attr.logSize = uint32(len(log))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(log))))
	}
	for {
		fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(code)
		runtime.KeepAlive(log)
		switch errno {
		case 0:
			unix.CloseOnExec(int(fd)) // BPF fds are O_CLOEXEC since 4.14; be sure
			return int(fd), nil
		case unix.EAGAIN: // the verifier was interrupted by a signal
			continue
		}
		return -1, errno
	}
}

// loadUnlimited retries a load with RLIMIT_MEMLOCK raised to infinity, then
// puts the limit back. (cilium/ebpf's rlimit package raises it for the whole
// process, and probes the kernel with a BPF map in its init, i.e. in every
// devbox process, container init included, for the sake of kernels older
// than our 5.15 minimum.)
func loadUnlimited(code []byte) (int, error) {
	var old unix.Rlimit
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, &inf, &old); err != nil {
		return -1, fmt.Errorf("%w (and raising RLIMIT_MEMLOCK: %w)", unix.EPERM, err)
	}
	fd, err := progLoad(code, nil)
	if rerr := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, &old, nil); rerr != nil && err == nil {
		unix.Close(fd)
		return -1, fmt.Errorf("restore RLIMIT_MEMLOCK: %w", rerr)
	}
	return fd, err
}

// attached gives the device programs attached directly to the cgroup dir
// (not inherited ones), as open programs the caller closes.
func attached(dir int) ([]*ebpf.Program, error) {
	res, err := link.QueryPrograms(link.QueryOptions{Target: dir, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return nil, err
	}
	progs := make([]*ebpf.Program, 0, len(res.Programs))
	for _, ap := range res.Programs {
		p, err := ebpf.NewProgramFromID(ap.ID)
		if err != nil {
			for _, q := range progs {
				q.Close()
			}
			return nil, fmt.Errorf("open attached program %d: %w", ap.ID, err)
		}
		progs = append(progs, p)
	}
	return progs, nil
}
