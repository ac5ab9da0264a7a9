package runtime

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Published ports are host sockets, bound by the parent before the
// container exists and passed to the init (design decision 3).

// listenPorts binds every published port on the host.
func listenPorts(o Options) ([]*os.File, error) {
	if o.Config.Network == NetworkHost && len(o.PortMaps) > 0 {
		return nil, errors.New("ports cannot be published with network mode host: the container's ports are the host's")
	}
	var files []*os.File
	for _, p := range o.PortMaps {
		addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			if start := unprivilegedPortStart(); errors.Is(err, unix.EACCES) && p.HostPort < start {
				err = fmt.Errorf("%w: ports below %d need root here (sysctl net.ipv4.ip_unprivileged_port_start); publish a higher one, as \"%d:%d\"", err, start, p.HostPort+8000, p.ContainerPort)
			}
			return nil, fmt.Errorf("publish %s -> %d: %w", addr, p.ContainerPort, err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close()
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// unprivilegedPortStart is the lowest port a user may bind.
func unprivilegedPortStart() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if n, err2 := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && err2 == nil {
		return n
	}
	return 1024
}
