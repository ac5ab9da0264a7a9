package sshd

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	_ "github.com/GehirnInc/crypt/md5_crypt"    // $1$
	_ "github.com/GehirnInc/crypt/sha256_crypt" // $5$
	_ "github.com/GehirnInc/crypt/sha512_crypt" // $6$
	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

const (
	maxAuthTries     = 6
	handshakeTimeout = 20 * time.Second
	// Penalties, after OpenSSH's PerSourcePenalties but per source and
	// user: each failed password adds authFailPenalty to the account of
	// (source, user), which drains in real time; while it exceeds
	// penaltyThreshold, password attempts for that user from that source
	// are refused unchecked. Public-key logins are never delayed or
	// refused by a penalty: every local client is 127.0.0.1, and one
	// user's typos must not lock everyone out.
	authFailPenalty  = 5 * time.Second
	penaltyThreshold = 15 * time.Second
	penaltyMax       = 10 * time.Minute
	failureDelay     = 250 * time.Millisecond
	// maxUnauthPerSource caps connections from one source that have not
	// logged in yet (OpenSSH's MaxStartups starts refusing at 10).
	maxUnauthPerSource = 10
)

type authenticator struct {
	user         string
	keys         []gossh.PublicKey
	passwordHash string

	mu        sync.Mutex
	penalties map[penaltyKey]time.Time // when the penalty ends
	unauth    map[string]int           // source → connections not logged in
}

type penaltyKey struct{ source, user string }

func newAuthenticator(cfg Config) (*authenticator, error) {
	a := &authenticator{user: cfg.User, passwordHash: cfg.PasswordHash,
		penalties: map[penaltyKey]time.Time{}, unauth: map[string]int{}}
	for _, line := range cfg.AuthorizedKeys {
		k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("sshd: authorized key %q: %w", line, err)
		}
		a.keys = append(a.keys, k)
	}
	if a.passwordHash != "" && !HashSupported(a.passwordHash) {
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

const (
	connStateKey ctxKey = "devbox-conn"
	preambleKey  ctxKey = "devbox-preamble"
)

// connState is what the server keeps of a connection until login.
type connState struct {
	conn   net.Conn
	source string
	once   sync.Once // leaves the unauthenticated count once
}

// accept counts the connection against its source's unauthenticated
// connections (refusing it past the cap), arms the login timeout and
// reads the client's preamble.
func (a *authenticator) accept(ctx ssh.Context, conn net.Conn) net.Conn {
	st := &connState{conn: conn, source: sourceIP(conn.RemoteAddr())}
	if !a.enter(st.source) {
		return nil // gliderlabs/ssh closes it
	}
	login := time.Now().Add(handshakeTimeout)
	conn.SetDeadline(login)
	rc, p, err := readPreamble(conn, login)
	if err != nil {
		a.leave(st)
		return nil
	}
	ctx.SetValue(connStateKey, st)
	ctx.SetValue(preambleKey, p)
	go func() { <-ctx.Done(); a.leave(st) }() // done when the connection closes
	return rc
}

func (a *authenticator) enter(source string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.unauth[source] >= maxUnauthPerSource {
		return false
	}
	a.unauth[source]++
	return true
}

// leave takes a connection out of its source's unauthenticated count:
// at login or when it closes, whichever is first.
func (a *authenticator) leave(st *connState) {
	st.once.Do(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.unauth[st.source]--; a.unauth[st.source] <= 0 {
			delete(a.unauth, st.source)
		}
	})
}

// loggedIn lifts the login timeout and the connection's place among the
// unauthenticated.
func (a *authenticator) loggedIn(ctx ssh.Context) {
	if st, ok := ctx.Value(connStateKey).(*connState); ok {
		st.conn.SetDeadline(time.Time{})
		a.leave(st)
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
			a.loggedIn(ctx)
			return true
		}
	}
	return false
}

func (a *authenticator) password(ctx ssh.Context, password string) bool {
	key := penaltyKey{sourceIP(ctx.RemoteAddr()), ctx.User()}
	if !a.penalized(key) && ctx.User() == a.user && password != "" && a.checkPassword(password) {
		a.loggedIn(ctx)
		return true
	}
	a.fail(key)
	time.Sleep(failureDelay)
	return false
}

// checkPassword compares the password's hash with the configured one in
// constant time.
func (a *authenticator) checkPassword(password string) bool {
	return verifyHash(a.passwordHash, password)
}

func sourceIP(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return addr.String() // a unix socket: host root only
}

func (a *authenticator) fail(key penaltyKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	end := a.penalties[key]
	if end.Before(now) {
		end = now
	}
	end = end.Add(authFailPenalty)
	if end.Sub(now) > penaltyMax {
		end = now.Add(penaltyMax)
	}
	a.penalties[key] = end
}

// penalized reports whether password attempts of key are refused now.
func (a *authenticator) penalized(key penaltyKey) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	end, ok := a.penalties[key]
	if !ok {
		return false
	}
	left := time.Until(end)
	if left <= 0 {
		delete(a.penalties, key)
		return false
	}
	return left > penaltyThreshold
}

// HashSupported says the server can check passwords against a crypt(3)
// hash of this scheme ($1$, $5$, $6$ or yescrypt's $y$).
func HashSupported(hash string) bool { return hashSupported(hash) }
