package devenv

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLookupUser: the SSH user's ids come from the image's /etc/passwd;
// root needs no entry there, as for the SSH server.
func TestLookupUser(t *testing.T) {
	layer := t.TempDir()
	if uid, gid, err := lookupUser([]string{layer}, "root"); err != nil || uid != 0 || gid != 0 {
		t.Errorf("root without /etc/passwd: %d:%d %v", uid, gid, err)
	}
	os.MkdirAll(filepath.Join(layer, "etc"), 0o755)
	os.WriteFile(filepath.Join(layer, "etc/passwd"), []byte("dev:x:1000:1001::/home/dev:/bin/sh\n"), 0o644)
	if uid, gid, err := lookupUser([]string{layer}, "dev"); err != nil || uid != 1000 || gid != 1001 {
		t.Errorf("dev: %d:%d %v", uid, gid, err)
	}
	if uid, _, err := lookupUser([]string{layer}, "root"); err != nil || uid != 0 {
		t.Errorf("root not listed: %d %v", uid, err)
	}
	if _, _, err := lookupUser([]string{layer}, "ghost"); err == nil {
		t.Error("a user the image does not have")
	}
}
