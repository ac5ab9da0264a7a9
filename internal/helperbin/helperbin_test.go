package helperbin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun: a helper found on PATH gets the arguments and standard input
// and its output comes back; one that fails comes back as what it said,
// without its name; one that is nowhere says what it is for.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\nif [ \"$1\" = fail ]; then echo 'devbox-test-helper: it broke' >&2; exit 1; fi\necho \"$@\"; cat; echo warn >&2\n"
	if err := os.WriteFile(filepath.Join(dir, "devbox-test-helper"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	out, errOut, err := Run("devbox-test-helper", "tests are run by", []string{"a", "b"}, []byte("in\n"))
	if err != nil || string(out) != "a b\nin\n" || string(errOut) != "warn\n" {
		t.Errorf("run: %q %q %v", out, errOut, err)
	}
	if _, _, err := Run("devbox-test-helper", "tests are run by", []string{"fail"}, nil); err == nil || err.Error() != "it broke" {
		t.Errorf("a failing helper: %v", err)
	}
	_, _, err = Run("devbox-no-such-helper", "nothing is done by", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "nothing is done by devbox-no-such-helper, installed beside devbox") {
		t.Errorf("a missing helper: %v", err)
	}
}
