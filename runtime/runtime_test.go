package runtime

import (
	"net"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReaperHandsStatusToItsWaiter(t *testing.T) {
	r := NewReaper()
	// An orphan-like child nobody waits for, and one we wait for.
	orphan := exec.Command("/bin/sh", "-c", "exit 9")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	pid, status, err := r.Start(func() (int, error) {
		return syscall.ForkExec("/bin/sh", []string{"sh", "-c", "exit 7"}, &syscall.ProcAttr{})
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		r.Reap()
		select {
		case ws := <-status:
			if ws.ExitStatus() != 7 {
				t.Errorf("pid %d: status %d, want 7", pid, ws.ExitStatus())
			}
			return
		default:
			unix.Nanosleep(&unix.Timespec{Nsec: 1e6}, nil)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		script string
		want   int
	}{{"exit 0", 0}, {"exit 42", 42}, {"kill -TERM $$", 143}, {"kill -KILL $$", 137}} {
		var ws unix.WaitStatus
		pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", c.script}, &syscall.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		unix.Wait4(pid, &ws, 0, nil)
		if got := ExitCode(ws); got != c.want {
			t.Errorf("%s: %d, want %d", c.script, got, c.want)
		}
	}
}

func TestAddresses(t *testing.T) {
	_, n, _ := net.ParseCIDR("10.88.0.0/16")
	if got := nthAddr(n, 1).String(); got != "10.88.0.1" {
		t.Errorf("gateway %s", got)
	}
	if got := nthAddr(n, 258).String(); got != "10.88.1.2" {
		t.Errorf("258th %s", got)
	}
	host, peer := vethNames(net.ParseIP("10.88.255.254"))
	if len(host) > 15 || len(peer) > 15 || host == peer {
		t.Errorf("veth names %q %q", host, peer)
	}
}

func TestLookPath(t *testing.T) {
	if p, err := LookPath("sh", []string{"PATH=/nonexistent:/bin"}); err != nil || p != "/bin/sh" {
		t.Errorf("LookPath(sh) = %q, %v", p, err)
	}
	if _, err := LookPath("no-such-command-here", nil); err == nil {
		t.Error("found a missing command")
	}
}
