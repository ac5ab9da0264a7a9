// Command helper is a static binary the e2e tests mount into containers
// whose base (a Debian minbase) has no network tools or compilers.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: helper alloc MB | echo-server PORT | http PORT | dial ADDR | dial-unix PATH | hello-server PORT | spawn N | addrs | sleep")
		os.Exit(2)
	}
	arg := func(i int) string {
		if len(os.Args) <= i {
			fmt.Fprintln(os.Stderr, "missing argument")
			os.Exit(2)
		}
		return os.Args[i]
	}
	switch os.Args[1] {
	case "probe": // try what a container must not do; print one line each
		probe()
	case "alloc": // allocate and touch MB megabytes, then report
		mb, _ := strconv.Atoi(arg(2))
		var keep [][]byte
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep), "MB")
	case "spawn": // start N sleeping children, report how many started
		n, _ := strconv.Atoi(arg(2))
		started := 0
		var lastErr error
		for i := 0; i < n; i++ {
			cmd := exec.Command("/proc/self/exe", "sleep")
			if err := cmd.Start(); err != nil {
				lastErr = err
				continue
			}
			started++
		}
		fmt.Println("started", started, "error:", lastErr)
	case "addrs":
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			fmt.Println(a)
		}
	case "sleep":
		time.Sleep(time.Hour)
	default:
		if !network(os.Args[1], arg) {
			fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
			os.Exit(2)
		}
	}
}

// echo says it listens, then sends every connection's bytes back and
// half-closes when the client has.
func echo(ln net.Listener) {
	fmt.Println("listening")
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
			c.(interface{ CloseWrite() error }).CloseWrite()
		}()
	}
}

// probe tries syscalls Docker's default seccomp profile refuses, and
// device access the device policy refuses, and prints "NAME errno" (or
// "NAME ok") for each.
func probe() {
	report := func(name string, err error) {
		if err == nil {
			fmt.Println(name, "ok")
			return
		}
		fmt.Println(name, err.(syscall.Errno).Error())
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_KEYCTL, 0 /* KEYCTL_GET_KEYRING_ID */, 0xfffffffc /* the session keyring */, 0)
	report("keyctl", errnoOrNil(e))
	report("unshare-user", syscall.Unshare(syscall.CLONE_NEWUSER))
	report("mount", syscall.Mount("none", "/tmp", "tmpfs", 0, ""))
	_, _, e = syscall.RawSyscall(435 /* clone3 */, 0, 0, 0)
	report("clone3", errnoOrNil(e))
	// A block device node of the host (loop0, 7:0), made and opened: in
	// /tmp (a nodev mount) and in /dev (where devices live).
	for _, dir := range []string{"/tmp", "/dev"} {
		node := dir + "/probe-loop0"
		err := syscall.Mknod(node, syscall.S_IFBLK|0o600, 7<<8) // 7:0
		report("mknod-block-"+dir[1:], err)
		if err == nil {
			f, err := os.OpenFile(node, os.O_RDWR, 0)
			if err == nil {
				f.Close()
			}
			report("open-block-"+dir[1:], errOf(err))
			os.Remove(node)
		}
	}
	f, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	report("open-null", errOf(err))
}

func errnoOrNil(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func errOf(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
