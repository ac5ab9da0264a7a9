package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// smallFile is the largest file handed to the write-behind pool; larger
// ones are streamed by the extractor itself.
const smallFile = 1 << 20

// writePool creates and fills small regular files on other cores while the
// extractor goes on decompressing and parsing the stream: file creation is
// most of the kernel's share of an unpack. The extractor calls wait before
// anything that could touch a file still in flight.
type writePool struct {
	jobs    chan writeJob
	wg      sync.WaitGroup // jobs in flight
	workers sync.WaitGroup
	mu      sync.Mutex
	err     error
	pending map[string]bool // paths submitted since the last wait
	bufs    sync.Pool
	warn    func(string)
}

type writeJob struct {
	pfd        int
	base       string
	rel        string
	hdr        *tar.Header
	parentSgid bool
	data       *[]byte
}

func newWritePool(warn func(string)) *writePool {
	p := &writePool{jobs: make(chan writeJob, 64), pending: map[string]bool{}, warn: warn}
	p.bufs.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	// One core goes to decompression and one to parsing; more writers
	// than the rest only contend in the kernel (measured: on 2 cores one
	// writer unpacks Debian in 1.6 s, two in 1.8 s).
	n := max(runtime.NumCPU()-1, 1)
	for i := 0; i < n; i++ {
		p.workers.Add(1)
		go p.work()
	}
	return p
}

func (p *writePool) work() {
	defer p.workers.Done()
	for j := range p.jobs {
		if err := writeSmall(j, p.warn); err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = &ExtractError{Entry: j.hdr.Name, Err: err}
			}
			p.mu.Unlock()
		}
		*j.data = (*j.data)[:0]
		p.bufs.Put(j.data)
		p.wg.Done()
	}
}

// writeSmall creates one file with as few system calls as it can: the
// mode is given to openat, and chown and chmod are made only when the
// new file's owner or mode would differ from the header's.
func writeSmall(j writeJob, warn func(string)) error {
	mode := tarMode(j.hdr)
	fd, err := unix.Openat(j.pfd, j.base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode&0o777)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for b := *j.data; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	c := creator()
	ownerOK := j.hdr.Uid == c.uid && j.hdr.Gid == c.gid && !j.parentSgid
	if !ownerOK {
		if err := unix.Fchown(fd, j.hdr.Uid, j.hdr.Gid); err != nil {
			return err
		}
	}
	if !ownerOK || mode&^0o777 != 0 || mode&c.umask != 0 {
		if err := unix.Fchmod(fd, mode); err != nil {
			return err
		}
	}
	if err := setXattrs(fd, j.hdr, warn); err != nil {
		return err
	}
	ts := unix.NsecToTimespec(j.hdr.ModTime.UnixNano())
	return unix.UtimesNanoAt(j.pfd, j.base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// submit queues a file whose content read fills (j.hdr.Size bytes).
func (p *writePool) submit(j writeJob, read func([]byte) error) error {
	buf := p.bufs.Get().(*[]byte)
	if cap(*buf) < int(j.hdr.Size) {
		*buf = make([]byte, j.hdr.Size)
	}
	*buf = (*buf)[:j.hdr.Size]
	if err := read(*buf); err != nil {
		p.bufs.Put(buf)
		return err
	}
	j.data = buf
	p.pending[j.rel] = true
	p.wg.Add(1)
	p.jobs <- j
	return nil
}

// wait blocks until every submitted file is written and returns the first
// error of any.
func (p *writePool) wait() error {
	p.wg.Wait()
	clear(p.pending)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// failed reports a worker's error without waiting.
func (p *writePool) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// close waits for the workers to finish and stops them.
func (p *writePool) close() error {
	err := p.wait()
	close(p.jobs)
	p.workers.Wait()
	return err
}

// fileCreator is the owner and umask files made by this process get.
type fileCreator struct {
	uid, gid int
	umask    uint32
}

// creator is read once, on first use (not at package load: the same binary
// is every container's init), as it does not change while devbox runs.
var creator = sync.OnceValue(func() fileCreator {
	return fileCreator{unix.Geteuid(), unix.Getegid(), readUmask()}
})

// readUmask reads the umask without changing it (umask(2) can only be
// read by setting it, which would race with other goroutines).
func readUmask() uint32 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777 // unknown: always chmod
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return uint32(m)
			}
		}
	}
	return 0o777
}

var errShortFile = errors.New("short file in layer")

func readFull(r interface{ Read([]byte) (int, error) }, b []byte) error {
	for n := 0; n < len(b); {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			if n == len(b) {
				return nil
			}
			return fmt.Errorf("%w: %v", errShortFile, err)
		}
	}
	return nil
}
