package sshd

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/GehirnInc/crypt"
	_ "github.com/GehirnInc/crypt/sha512_crypt"
)

func TestNoWayToLogInRefused(t *testing.T) {
	if _, err := newAuthenticator(Config{User: "root"}); err == nil || !strings.Contains(err.Error(), "nobody could log in") {
		t.Errorf("a server with no key and no password: %v", err)
	}
}

func TestPasswordCheck(t *testing.T) {
	hash, err := crypt.SHA512.New().Generate([]byte("s3cret"), []byte("$6$saltsalt"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAuthenticator(Config{User: "root", PasswordHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	if !a.checkPassword("s3cret") || a.checkPassword("s3cret ") || a.checkPassword("") {
		t.Error("password check")
	}
	if _, err := newAuthenticator(Config{User: "root", PasswordHash: "$y$j9T$unsupported"}); err == nil {
		t.Error("an unsupported hash scheme was accepted")
	}
}

func TestPenalties(t *testing.T) {
	clock := time.Unix(1e9, 0)
	l := newLedger(defaultPolicy, func() time.Time { return clock })
	// A few failures are forgiven (OpenSSH's threshold), more are not.
	for i := 0; i < 4; i++ {
		if !l.reserve("127.0.0.7", "dev") {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if l.reserve("127.0.0.7", "dev") {
		t.Error("a fifth quick attempt was admitted")
	}
	if !l.reserve("127.0.0.8", "dev") || !l.reserve("127.0.0.7", "root") {
		t.Error("another source, or another user, was refused for dev's failures")
	}
	// Refused attempts charge nothing: one penalty later it is open again.
	for i := 0; i < 100; i++ {
		l.reserve("127.0.0.7", "dev")
	}
	clock = clock.Add(l.recovery())
	if !l.reserve("127.0.0.7", "dev") {
		t.Errorf("still refused %s after the last guess", l.recovery())
	}
	// The source's own account bounds attempts over every user name.
	admitted := 0
	for i := 0; i < 100; i++ {
		if l.reserve("127.0.0.9", fmt.Sprint("user", i)) {
			admitted++
		}
	}
	if want := int(defaultPolicy.sourceThreshold/defaultPolicy.penalty) + 1; admitted != want {
		t.Errorf("%d attempts under 100 user names admitted, want %d", admitted, want)
	}
}

func TestSourceIP(t *testing.T) {
	for _, c := range []struct{ ip, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
	} {
		if got := sourceIP(&net.TCPAddr{IP: net.ParseIP(c.ip), Port: 22}); got != c.want {
			t.Errorf("sourceIP(%s) = %s, want %s", c.ip, got, c.want)
		}
	}
}

func TestUnauthenticatedCap(t *testing.T) {
	a := &authenticator{unauth: map[string][]*connState{}, queue: map[string][]*connState{}}
	var held []*connState
	for i := 0; i < maxUnauthPerSource; i++ {
		st := &connState{source: "127.0.0.7"}
		if !a.enter(st) {
			t.Fatalf("connection %d refused", i+1)
		}
		held = append(held, st)
	}
	if a.enter(&connState{source: "127.0.0.7"}) {
		t.Error("connection past the cap accepted")
	}
	if !a.enter(&connState{source: "127.0.0.8"}) {
		t.Error("another source refused")
	}
	a.leave(held[0])
	a.leave(held[0]) // once only
	if !a.enter(&connState{source: "127.0.0.7"}) || a.enter(&connState{source: "127.0.0.7"}) {
		t.Error("leave did not free exactly one place")
	}
	// A connection that failed a password gives its place to a new one.
	held[3].failed = true
	if !a.enter(&connState{source: "127.0.0.7"}) || a.enter(&connState{source: "127.0.0.7"}) {
		t.Error("a failed connection did not give exactly one place")
	}
}

// TestWaitInLine: past the cap, connections wait in line; a place freed
// goes to the first waiting, and a newcomer does not pass those waiting
// (a guesser reconnecting fast would otherwise take every place a login
// waits for).
func TestWaitInLine(t *testing.T) {
	a := &authenticator{unauth: map[string][]*connState{}, queue: map[string][]*connState{}, enterWait: 5 * time.Second}
	var held []*connState
	for range maxUnauthPerSource {
		st := &connState{source: "127.0.0.7"}
		a.enter(st)
		held = append(held, st)
	}
	first, second := &connState{source: "127.0.0.7"}, &connState{source: "127.0.0.7"}
	done := make(chan *connState, 2)
	for i, st := range []*connState{first, second} {
		go func() {
			if a.enter(st) {
				done <- st
			}
		}()
		for { // in line before the next one comes
			a.mu.Lock()
			n := len(a.queue["127.0.0.7"])
			a.mu.Unlock()
			if n == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	a.leave(held[0])
	if got := <-done; got != first {
		t.Fatal("the second waiting passed the first")
	}
	// A place to take (a connection refused a password), not yet told to
	// the one waiting: a newcomer may not take it.
	a.mu.Lock()
	held[1].failed = true
	a.mu.Unlock()
	a.enterWait = 0
	if a.enter(&connState{source: "127.0.0.7"}) {
		t.Error("a newcomer passed the one waiting")
	}
	a.mu.Lock()
	a.wake()
	a.mu.Unlock()
	if got := <-done; got != second {
		t.Error("the one waiting did not get the place")
	}
}

func TestPreambleCiphers(t *testing.T) {
	openssh := &preamble{ciphers: []string{"chacha20-poly1305@openssh.com", "aes128-ctr", "aes128-gcm@openssh.com"}}
	if got := openssh.serverCiphers(); got[0] != "aes128-gcm@openssh.com" || slices.Contains(got, "chacha20-poly1305@openssh.com") {
		t.Errorf("a client with AES-GCM is offered %v", got)
	}
	dropbear := &preamble{ciphers: []string{"chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr"}}
	if got := dropbear.serverCiphers(); !slices.Contains(got, "chacha20-poly1305@openssh.com") || !slices.Contains(got, "aes128-ctr") {
		t.Errorf("a client without AES-GCM is offered %v", got)
	}
	if got := (&preamble{}).serverCiphers(); len(got) < 4 {
		t.Errorf("an unknown client is offered %v", got)
	}
}

func TestAcceptedEnv(t *testing.T) {
	for name, want := range map[string]bool{"LANG": true, "LC_ALL": true, "TERM": true, "LD_PRELOAD": false, "PATH": false, "BASH_ENV": false} {
		if acceptedEnv(name) != want {
			t.Errorf("acceptedEnv(%s) = %v", name, !want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	got := ShellQuote([]string{"sh", "-c", "echo 'a b'; exit 3", "", "x=y"})
	if want := `sh -c 'echo '\''a b'\''; exit 3' '' x=y`; got != want {
		t.Errorf("ShellQuote = %s, want %s", got, want)
	}
}

// TestPreambleKeepsLoginTimeout: a client that sends its identification
// and then nothing is cut off by the login timeout, which reading the
// preamble must not lift.
func TestPreambleKeepsLoginTimeout(t *testing.T) {
	srv, cli := net.Pipe()
	defer cli.Close()
	go io.Copy(io.Discard, cli) // the server's identification
	login := time.Now().Add(200 * time.Millisecond)
	srv.SetDeadline(login)
	go cli.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	rc, p, err := readPreamble(srv, login)
	if err != nil || p.ident != "SSH-2.0-OpenSSH_9.2" {
		t.Fatalf("preamble: %v %+v", err, p)
	}
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := rc.Read(buf); err != nil {
				close(done)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		srv.Close()
		t.Error("a silent client was held past its login timeout")
	}
}

// TestPreambleWithoutKexinit: a client that sends its identification but
// holds its KEXINIT back is served after kexinitWait with every cipher,
// and x/crypto/ssh still reads its identification.
func TestPreambleWithoutKexinit(t *testing.T) {
	srv, cli := net.Pipe()
	defer cli.Close()
	go io.Copy(io.Discard, cli)
	login := time.Now().Add(20 * time.Second)
	go cli.Write([]byte("SSH-2.0-waiter\r\n"))
	start := time.Now()
	rc, p, err := readPreamble(srv, login)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > kexinitWait+time.Second {
		t.Errorf("waited %s for a KEXINIT", d)
	}
	if got := p.serverCiphers(); !slices.Contains(got, "aes128-ctr") {
		t.Errorf("ciphers %v", got)
	}
	buf := make([]byte, 64)
	n, _ := rc.Read(buf)
	if string(buf[:n]) != "SSH-2.0-waiter\r\n" {
		t.Errorf("replayed %q", buf[:n])
	}
}
