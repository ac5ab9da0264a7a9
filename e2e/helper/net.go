package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh/agent"
)

// network runs the helper's network commands, servers and clients; it
// reports whether cmd is one of them.
func network(cmd string, arg func(int) string) bool {
	switch cmd {
	case "echo-server": // echo every connection back, with half-close
		ln, err := net.Listen("tcp", "127.0.0.1:"+arg(2))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		echo(ln)
	case "http": // a tiny HTTP server
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello from the container") })
		if err := http.ListenAndServe(":"+arg(2), nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "dial": // connect and print what the server sends
		c, err := net.DialTimeout("tcp", arg(2), 3*time.Second)
		if err != nil {
			fmt.Println("dial error:", err)
			os.Exit(1)
		}
		io.Copy(os.Stdout, c)
	case "hello-server": // greet every connection on every address, until killed
		ln, err := net.Listen("tcp", ":"+arg(2))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(1)
			}
			c.Write([]byte("hello container\n"))
			c.Close()
		}
	case "dial-gateway": // dial PORT on the default route's gateway (the host's bridge address)
		dialGateway(arg(2))
	case "dial-unix": // connect to a Unix socket, say whether it answered
		c, err := net.DialTimeout("unix", arg(2), 3*time.Second)
		if err != nil {
			fmt.Println("dial error:", err)
			return true
		}
		c.Close()
		fmt.Println("connected")
	case "unix-echo": // echo server on a Unix socket
		os.Remove(arg(2))
		ln, err := net.Listen("unix", arg(2))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		echo(ln)
	case "agent-list": // list the keys of the agent at $SSH_AUTH_SOCK
		c, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
		if err != nil {
			fmt.Println("agent error:", err)
			os.Exit(1)
		}
		keys, err := agent.NewClient(c).List()
		if err != nil {
			fmt.Println("agent error:", err)
			os.Exit(1)
		}
		for _, k := range keys {
			fmt.Println(k.Format, k.Comment)
		}
	default:
		return false
	}
	return true
}

// dialGateway connects to port on the default route's gateway and prints
// what it sends.
func dialGateway(port string) {
	gw, err := gateway()
	if err != nil {
		fmt.Println("dial error:", err)
		os.Exit(1)
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(gw, port), 3*time.Second)
	if err != nil {
		fmt.Println("dial error:", err)
		os.Exit(1)
	}
	io.Copy(os.Stdout, c)
}

// gateway is the default route's gateway, from /proc/net/route (a
// little-endian hex address in its third column).
func gateway() (string, error) {
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "00000000" {
			continue
		}
		v, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil {
			return "", err
		}
		return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).String(), nil
	}
	return "", fmt.Errorf("no default route")
}
