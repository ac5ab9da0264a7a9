package testenv

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// StallingRegistry is an in-process registry whose blob downloads stall
// while it is stalling: a GET of a blob that Stall picks gets the
// headers and the first bytes Stall says, then nothing until the test
// ends, as a registry whose connection hangs mid-transfer.
type StallingRegistry struct {
	Host     string // host:port
	stalling atomic.Bool
}

// NewStallingRegistry starts one, stalling. Stall is given a blob's path
// and content; it says how many bytes to send before stalling, and
// whether this blob stalls at all.
func NewStallingRegistry(tb testing.TB, stall func(path string, blob []byte) (send int, ok bool)) *StallingRegistry {
	s := &StallingRegistry{}
	s.stalling.Store(true)
	hold := make(chan struct{})
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.stalling.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			rec := httptest.NewRecorder()
			reg.ServeHTTP(rec, r)
			if n, ok := stall(r.URL.Path, rec.Body.Bytes()); ok && rec.Code == http.StatusOK {
				n = min(max(n, 0), rec.Body.Len())
				w.Header().Set("Content-Length", strconv.Itoa(rec.Body.Len()))
				w.WriteHeader(http.StatusOK)
				w.Write(rec.Body.Bytes()[:n])
				w.(http.Flusher).Flush()
				<-hold
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	tb.Cleanup(func() { close(hold) }) // first: Close waits for the stalled
	s.Host = strings.TrimPrefix(srv.URL, "http://")
	return s
}

// Resume ends the stalling of the downloads that start from now on.
func (s *StallingRegistry) Resume() { s.stalling.Store(false) }
