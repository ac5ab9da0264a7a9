// Package idle bounds network reads by silence rather than by total time:
// a large download may rightly take an hour, but a peer that has sent
// nothing for a minute has stalled, and waiting longer only hangs the
// command that waits on it.
package idle

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// DefaultTimeout is how long a response may stay silent.
const DefaultTimeout = 60 * time.Second

// ErrStalled is what a read fails with once the peer has been silent.
var ErrStalled = errors.New("stalled")

// Transport returns base (http.DefaultTransport if nil) with every
// response's headers and body bounded by silence: no byte for d is an
// error wrapping ErrStalled.
func Transport(base http.RoundTripper, d time.Duration) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if d <= 0 {
		d = DefaultTimeout
	}
	if t, ok := base.(*http.Transport); ok && t.ResponseHeaderTimeout == 0 {
		t = t.Clone()
		t.ResponseHeaderTimeout = d
		base = t
	}
	return &transport{base: base, d: d}
}

type transport struct {
	base http.RoundTripper
	d    time.Duration
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b := &body{rc: resp.Body, d: t.d, url: req.URL.Redacted()}
	b.timer = time.AfterFunc(t.d, b.expire)
	b.timer.Stop() // runs only while a Read waits
	resp.Body = b
	return resp, nil
}

// body fails a Read that waits longer than d for a byte. Time between
// reads (a slow consumer) does not count.
type body struct {
	rc      io.ReadCloser
	d       time.Duration
	url     string
	timer   *time.Timer
	expired atomic.Bool
}

func (b *body) expire() {
	b.expired.Store(true)
	b.rc.Close() // unblocks the Read
}

func (b *body) Read(p []byte) (int, error) {
	b.timer.Reset(b.d)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if err != nil && b.expired.Load() {
		return n, fmt.Errorf("%s: no data for %s: %w", b.url, b.d, ErrStalled)
	}
	return n, err
}

func (b *body) Close() error {
	b.timer.Stop()
	return b.rc.Close()
}
