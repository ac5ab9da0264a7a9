package idle

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A server that sends half a body and then nothing: the read fails after
// the idle time, not never; a slow reader of a server that keeps sending
// is not cut.
func TestStalledBody(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2000")
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		if r.URL.Path == "/stall" {
			<-release
			return
		}
		w.Write(make([]byte, 1000))
	}))
	defer srv.Close()
	defer close(release)
	c := &http.Client{Transport: Transport(nil, 300*time.Millisecond)}

	resp, err := c.Get(srv.URL + "/stall")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("read of a stalled body: %v, want ErrStalled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stall noticed after %s", d)
	}

	resp, err = c.Get(srv.URL + "/slow-reader")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 100)
	n := 0
	for {
		m, err := resp.Body.Read(buf)
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("slow reader cut off after %d bytes: %v", n, err)
		}
		time.Sleep(50 * time.Millisecond) // between reads: not silence
	}
	if n != 2000 {
		t.Errorf("read %d bytes, want 2000", n)
	}
}
