package runtime

import (
	"sync"

	"golang.org/x/sys/unix"
)

// Reaper is PID 1's wait loop. It reaps every child (orphans of the
// container included) and hands the status of a process someone waits for
// to that waiter only, so that reaping orphans never steals the exit status
// of a session's command (the go-reap problem).
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
}

// NewReaper returns a Reaper; call its Reap on every SIGCHLD.
func NewReaper() *Reaper {
	return &Reaper{waiters: map[int]chan unix.WaitStatus{}}
}

// Start runs start (which forks a process) and registers its pid before
// the reap loop can see it exit: the loop's Wait4 may collect the status
// first, but it hands it out only under the same lock.
func (r *Reaper) Start(start func() (int, error)) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiters[pid] = ch
	return pid, ch, nil
}

// Reap collects every exited child; call it on SIGCHLD.
func (r *Reaper) Reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		}
		r.mu.Unlock()
	}
}
