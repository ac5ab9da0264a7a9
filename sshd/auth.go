package sshd

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/GehirnInc/crypt"
	_ "github.com/GehirnInc/crypt/md5_crypt"    // $1$
	_ "github.com/GehirnInc/crypt/sha256_crypt" // $5$
	_ "github.com/GehirnInc/crypt/sha512_crypt" // $6$
	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

const (
	maxAuthTries     = 6
	handshakeTimeout = 20 * time.Second
	// Penalties, after OpenSSH's PerSourcePenalties: each failed login
	// adds authFailPenalty to its source's account, which drains in real
	// time; a source whose account exceeds penaltyThreshold is refused
	// connections until it drains.
	authFailPenalty  = 5 * time.Second
	penaltyThreshold = 15 * time.Second
	penaltyMax       = 10 * time.Minute
	failureDelay     = 250 * time.Millisecond
)

type authenticator struct {
	user         string
	keys         []gossh.PublicKey
	passwordHash string

	mu        sync.Mutex
	penalties map[string]time.Time // source IP → when its penalty ends
}

func newAuthenticator(cfg Config) (*authenticator, error) {
	a := &authenticator{user: cfg.User, passwordHash: cfg.PasswordHash, penalties: map[string]time.Time{}}
	for _, line := range cfg.AuthorizedKeys {
		k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("sshd: authorized key %q: %w", line, err)
		}
		a.keys = append(a.keys, k)
	}
	if a.passwordHash != "" && !crypt.IsHashSupported(a.passwordHash) {
		return nil, fmt.Errorf("sshd: password hash: unsupported scheme (use $1$, $5$ or $6$)")
	}
	// gliderlabs/ssh lets everyone in when no handler is set: refuse to
	// start rather than serve an open door.
	if len(a.keys) == 0 && a.passwordHash == "" {
		return nil, errors.New("sshd: no authorized key and no password: nobody could log in")
	}
	return a, nil
}

type ctxKey string

const handshakeKey ctxKey = "handshake-conn"

// accept refuses sources under penalty and arms the handshake timeout.
func (a *authenticator) accept(ctx ssh.Context, conn net.Conn) net.Conn {
	if a.penalized(conn.RemoteAddr()) {
		conn.Close()
		return conn
	}
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	ctx.SetValue(handshakeKey, conn)
	return conn
}

// loggedIn lifts the handshake timeout of a connection.
func loggedIn(ctx ssh.Context) {
	if c, ok := ctx.Value(handshakeKey).(net.Conn); ok {
		c.SetDeadline(time.Time{})
	}
}

// publicKey decides on key alone, keeping no state about which key was
// offered: x/crypto/ssh calls it for keys that are merely offered too, so
// remembering "the" key here would trust a key the client never proved it
// holds (CVE-2024-45337).
func (a *authenticator) publicKey(ctx ssh.Context, key ssh.PublicKey) bool {
	if ctx.User() != a.user {
		return false
	}
	for _, k := range a.keys {
		if subtle.ConstantTimeCompare(k.Marshal(), key.Marshal()) == 1 {
			loggedIn(ctx)
			return true
		}
	}
	return false
}

func (a *authenticator) password(ctx ssh.Context, password string) bool {
	ok := ctx.User() == a.user && password != "" && a.checkPassword(password)
	if ok {
		loggedIn(ctx)
		return true
	}
	a.fail(ctx.RemoteAddr())
	time.Sleep(failureDelay)
	return false
}

// checkPassword compares the password's hash with the configured one in
// constant time.
func (a *authenticator) checkPassword(password string) bool {
	if !crypt.IsHashSupported(a.passwordHash) {
		return false
	}
	c := crypt.NewFromHash(a.passwordHash)
	got, err := c.Generate([]byte(password), []byte(a.passwordHash))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(a.passwordHash)) == 1
}

func sourceIP(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return addr.String() // a unix socket: host root only
}

func (a *authenticator) fail(addr net.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ip := sourceIP(addr)
	now := time.Now()
	end := a.penalties[ip]
	if end.Before(now) {
		end = now
	}
	end = end.Add(authFailPenalty)
	if end.Sub(now) > penaltyMax {
		end = now.Add(penaltyMax)
	}
	a.penalties[ip] = end
}

func (a *authenticator) penalized(addr net.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	ip := sourceIP(addr)
	end, ok := a.penalties[ip]
	if !ok {
		return false
	}
	left := time.Until(end)
	if left <= 0 {
		delete(a.penalties, ip)
		return false
	}
	return left > penaltyThreshold
}
