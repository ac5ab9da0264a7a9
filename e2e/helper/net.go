package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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
