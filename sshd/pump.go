package sshd

import (
	"io"
	"os"
	"sync"
	"time"
)

// drainIdle is how long a command's output may stay silent after the
// command exited before the server stops reading it: a background process
// the command started may hold the output open for good. Time spent
// waiting for the client to take bytes (a full window: a pager, a slow
// disk, a slow network) never counts, so no output is ever dropped.
const drainIdle = 250 * time.Millisecond

// pump copies a process's output to the client and can be told, once the
// process has exited, to stop when the output goes idle.
type pump struct {
	src *os.File
	dst io.Writer

	mu      sync.Mutex
	writing bool      // blocked on the client
	last    time.Time // when a read or write last finished
	done    chan struct{}
}

func startPump(dst io.Writer, src *os.File) *pump {
	p := &pump{src: src, dst: dst, last: time.Now(), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *pump) run() {
	defer close(p.done)
	buf := make([]byte, 256<<10)
	for {
		n, err := p.src.Read(buf)
		if n > 0 {
			p.mark(true)
			_, werr := p.dst.Write(buf[:n])
			p.mark(false)
			if werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF: every writer closed; or the deadline drain set
		}
	}
}

func (p *pump) mark(writing bool) {
	p.mu.Lock()
	p.writing, p.last = writing, time.Now()
	p.mu.Unlock()
}

// idle reports whether nothing has been read for drainIdle and nothing
// is waiting to be written.
func (p *pump) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.writing && time.Since(p.last) >= drainIdle
}

// drain waits until every pump has reached the end of its output, or has
// gone idle: then its read is cut off. Call it once the process exited.
func drain(pumps ...*pump) {
	for _, p := range pumps {
		p.mu.Lock()
		p.last = time.Now() // the exit itself starts the idle clock
		p.mu.Unlock()
	}
	tick := time.NewTicker(drainIdle / 5)
	defer tick.Stop()
	for _, p := range pumps {
		for waiting := true; waiting; {
			select {
			case <-p.done:
				waiting = false
			case <-tick.C:
				if p.idle() {
					p.src.SetReadDeadline(time.Now())
				}
			}
		}
	}
}
