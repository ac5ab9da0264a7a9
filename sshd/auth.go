package sshd

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"slices"
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
	// maxUnauthPerSource caps connections from one source that have not
	// logged in yet (OpenSSH's MaxStartups starts refusing at 10).
	maxUnauthPerSource = 10
	// A connection past the cap waits up to enterWait for a place, with
	// at most maxWaitingPerSource others from its source.
	enterWait           = 5 * time.Second
	maxWaitingPerSource = 200
)

type authenticator struct {
	user         string
	keys         []gossh.PublicKey
	passwordHash string
	ledger       *ledger
	// verify checks a password against passwordHash; a field so that a
	// test can count the checks a flood gets.
	verify func(password string) bool

	enterWait time.Duration // enterWait; zero in tests of the cap

	mu     sync.Mutex
	unauth map[string][]*connState // source → connections not logged in
	queue  map[string][]*connState // source → connections waiting for a place, oldest first
	freed  chan struct{}           // closed when a place may be taken
}

func newAuthenticator(cfg Config) (*authenticator, error) {
	a := &authenticator{user: cfg.User, passwordHash: cfg.PasswordHash,
		ledger: newLedger(defaultPolicy, time.Now), unauth: map[string][]*connState{}, queue: map[string][]*connState{},
		enterWait: enterWait}
	a.verify = a.checkPassword
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
	failed bool // a password was refused: the first to go when the source is full
}

// accept counts the connection against its source's unauthenticated
// connections (refusing it past the cap), arms the login timeout and
// reads the client's preamble.
func (a *authenticator) accept(ctx ssh.Context, conn net.Conn) net.Conn {
	st := &connState{conn: conn, source: sourceIP(conn.RemoteAddr())}
	if !a.enter(st) {
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

// enter takes st among its source's unauthenticated connections. A full
// source makes room by closing one that has had a password refused, or
// else st waits its turn a while, in line: otherwise a flood of
// guessers, all on 127.0.0.1 like every local client, reconnecting faster
// than anyone, would keep the owner's key login from even connecting. No
// one passes those waiting: a guesser that reconnects goes to the back.
func (a *authenticator) enter(st *connState) bool {
	deadline := time.Now().Add(a.enterWait)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queue[st.source]) == 0 && a.admit(st) {
		return true
	}
	if time.Until(deadline) <= 0 || len(a.queue[st.source]) >= maxWaitingPerSource {
		return false
	}
	a.queue[st.source] = append(a.queue[st.source], st)
	defer a.dequeue(st)
	for {
		if a.queue[st.source][0] == st && a.admit(st) {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		if a.freed == nil {
			a.freed = make(chan struct{})
		}
		freed := a.freed
		a.mu.Unlock()
		select {
		case <-freed:
		case <-time.After(left):
		}
		a.mu.Lock()
	}
}

// dequeue takes st out of its source's line, and lets the next one try.
func (a *authenticator) dequeue(st *connState) {
	q := slices.DeleteFunc(a.queue[st.source], func(c *connState) bool { return c == st })
	if len(q) == 0 {
		delete(a.queue, st.source)
	} else {
		a.queue[st.source] = q
	}
	a.wake()
}

// wake tells the waiting that a place may be taken.
func (a *authenticator) wake() {
	if a.freed != nil {
		close(a.freed)
		a.freed = nil
	}
}

// admit adds st if its source has a place, or one to take.
func (a *authenticator) admit(st *connState) bool {
	held := a.unauth[st.source]
	if len(held) >= maxUnauthPerSource {
		i := slices.IndexFunc(held, func(c *connState) bool { return c.failed })
		if i < 0 {
			return false
		}
		if held[i].conn != nil {
			held[i].conn.Close()
		}
		held = slices.Delete(held, i, i+1)
	}
	a.unauth[st.source] = append(held, st)
	return true
}

// leave takes a connection out of its source's unauthenticated
// connections: at login or when it closes, whichever is first.
func (a *authenticator) leave(st *connState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wake()
	held := slices.DeleteFunc(a.unauth[st.source], func(c *connState) bool { return c == st })
	if len(held) == 0 {
		delete(a.unauth, st.source)
		return
	}
	a.unauth[st.source] = held
}

// refused marks the connection as one that failed a password.
func (a *authenticator) refused(ctx ssh.Context) {
	if st, ok := ctx.Value(connStateKey).(*connState); ok {
		a.mu.Lock()
		st.failed = true // the first waiting may take its place
		a.wake()
		a.mu.Unlock()
	}
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

// password admits the attempt through the ledger before checking it, so
// that every connection from a source draws on one budget.
func (a *authenticator) password(ctx ssh.Context, password string) bool {
	source, user := sourceIP(ctx.RemoteAddr()), ctx.User()
	if a.ledger.reserve(source, user) {
		if user == a.user && password != "" && a.verify(password) {
			a.ledger.refund(source, user)
			a.loggedIn(ctx)
			return true
		}
	}
	a.refused(ctx)
	time.Sleep(a.ledger.delay)
	return false
}

// checkPassword compares the password's hash with the configured one in
// constant time.
func (a *authenticator) checkPassword(password string) bool {
	return verifyHash(a.passwordHash, password)
}

// sourceIP is the source a connection is counted against: its address,
// or its /64 for IPv6, which one host usually has whole (as OpenSSH's
// PerSourceNetBlockSize).
func sourceIP(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String() // a unix socket: host root only
	}
	if ta.IP.To4() != nil {
		return ta.IP.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// HashSupported says the server can check passwords against a crypt(3)
// hash of this scheme ($1$, $5$, $6$ or yescrypt's $y$).
func HashSupported(hash string) bool { return hashSupported(hash) }
