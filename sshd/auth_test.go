package sshd

import (
	"net"
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
	a := &authenticator{penalties: map[string]time.Time{}}
	addr := &net.TCPAddr{IP: net.ParseIP("127.0.0.7"), Port: 1}
	other := &net.TCPAddr{IP: net.ParseIP("127.0.0.8"), Port: 1}
	// A few failures are forgiven (OpenSSH's threshold), more are not.
	for i := 0; i < 3; i++ {
		a.fail(addr)
	}
	if a.penalized(addr) {
		t.Error("penalized after 3 failures")
	}
	a.fail(addr)
	if !a.penalized(addr) {
		t.Error("not penalized after 4 failures")
	}
	if a.penalized(other) {
		t.Error("another source was penalized")
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
