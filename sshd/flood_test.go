package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/GehirnInc/crypt"
	gossh "golang.org/x/crypto/ssh"
)

// fakeClock is the ledger's clock in tests: it moves only when told, so
// a flood's budget does not depend on how fast the machine is.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// floodServer serves dev, with a password and a key, on 127.0.0.1; it
// returns the address, the key and a counter of password checks.
func floodServer(t *testing.T, clock *fakeClock) (string, gossh.Signer, *atomic.Int64) {
	t.Helper()
	hash, err := crypt.SHA512.New().Generate([]byte("right"), []byte("$6$saltsalt"))
	if err != nil {
		t.Fatal(err)
	}
	_, hk, _ := ed25519.GenerateKey(rand.Reader)
	host, _ := gossh.NewSignerFromKey(hk)
	_, ck, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := gossh.NewSignerFromKey(ck)
	s := &Server{HostKey: host, Log: log.New(io.Discard, "", 0), Config: Config{
		User: "dev", PasswordHash: hash,
		AuthorizedKeys: []string{string(gossh.MarshalAuthorizedKey(key.PublicKey()))},
	}}
	if err := s.setup(); err != nil {
		t.Fatal(err)
	}
	p := defaultPolicy
	p.delay = 10 * time.Millisecond
	s.auth.ledger = newLedger(p, clock.now)
	checks := &atomic.Int64{}
	verify := s.auth.verify
	s.auth.verify = func(pw string) bool { checks.Add(1); return verify(pw) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return ln.Addr().String(), key, checks
}

func login(addr string, auth gossh.AuthMethod) error {
	cfg := &gossh.ClientConfig{User: "dev", Auth: []gossh.AuthMethod{auth},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
	c, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	return c.Close()
}

// guess is one flooding connection: six wrong passwords.
func guess(addr string, n *atomic.Int64) error {
	return login(addr, gossh.RetryableAuthMethod(gossh.PasswordCallback(func() (string, error) {
		return fmt.Sprint("guess-", n.Add(1)), nil
	}), maxAuthTries))
}

// TestPasswordFlood: 120 clients on 127.0.0.1 each open connection after
// connection of six wrong passwords. The password is checked no more
// often than a single client would get it checked, the owner's key
// logs in during the flood, and the right password is checked again one
// penalty after the flood.
func TestPasswordFlood(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	addr, key, checks := floodServer(t, clock)
	var conns, guesses, in atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 120; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				conns.Add(1)
				if guess(addr, &guesses) == nil {
					in.Add(1)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the flood is under way
	for i := 0; i < 3; i++ {
		start := time.Now()
		var err error
		tries := 0
		for time.Since(start) < 5*time.Second {
			tries++
			if err = login(addr, gossh.PublicKeys(key)); err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("key login %d during the flood: %v", i+1, err)
		}
		t.Logf("key login %d during the flood took %s, %d tries (%v)", i+1, time.Since(start).Round(time.Millisecond), tries, err)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d connections sent %d passwords; %d were checked", conns.Load(), guesses.Load(), checks.Load())
	if conns.Load() <= 100 {
		t.Errorf("only %d connections: not a flood", conns.Load())
	}
	if in.Load() != 0 {
		t.Errorf("%d wrong passwords got in", in.Load())
	}
	// The clock stood still: one client's quick guesses, no more.
	if want := int64(defaultPolicy.userThreshold/defaultPolicy.penalty) + 1; checks.Load() > want {
		t.Errorf("%d passwords were checked during the flood, want at most %d", checks.Load(), want)
	}
	if login(addr, gossh.Password("right")) == nil {
		t.Error("the right password got in while its source owed penalties")
	}
	clock.add(defaultPolicy.penalty)
	if err := login(addr, gossh.Password("right")); err != nil {
		t.Errorf("the right password %s after the flood: %v", defaultPolicy.penalty, err)
	}
}
