package devenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCappedLog(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "log"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := newCappedLog(f)
	var last string
	for i := 0; i < 400000; i++ { // ~12 MiB of numbered lines
		last = fmt.Sprintf("line %07d %s\n", i, strings.Repeat("x", 20))
		l.Write([]byte(last))
	}
	data, _ := os.ReadFile(f.Name())
	if len(data) > logCap || len(data) < logCap/2 {
		t.Errorf("log of %d bytes, want between %d and %d", len(data), logCap/2, logCap)
	}
	if !bytes.HasSuffix(data, []byte(last)) {
		t.Errorf("the newest line is not the log's last")
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if !strings.Contains(lines[0], "devbox: the log reached 10 MiB") {
		t.Errorf("the cut is not said: %q", lines[0])
	}
	for _, line := range lines[1:] {
		if !strings.HasPrefix(line, "line ") || len(line) != len(last)-1 {
			t.Fatalf("a line was cut in the middle: %q", line)
		}
	}
}

func TestRestartPolicy(t *testing.T) {
	for _, c := range []struct {
		policy  string
		max     int
		code, n int
		want    bool
	}{
		{"", 0, 1, 0, false},
		{"no", 0, 1, 0, false},
		{"always", 0, 0, 99, true},
		{"unless-stopped", 0, 0, 0, true},
		{"on-failure", 0, 0, 0, false},
		{"on-failure", 0, 137, 50, true},
		{"on-failure", 3, 1, 2, true},
		{"on-failure", 3, 1, 3, false},
	} {
		s := &supervised{Restart: c.policy, MaxRestarts: c.max}
		if got := s.restarts(c.code, c.n); got != c.want {
			t.Errorf("%s:%d after code %d and %d restarts: %v, want %v", c.policy, c.max, c.code, c.n, got, c.want)
		}
	}
}
