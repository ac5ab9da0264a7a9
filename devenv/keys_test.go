package devenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageLogins: the image's authorized_keys and SHA-512 password are
// taken, and a yescrypt one (Debian's default); one the server cannot
// check (bcrypt) is left off with a note.
func TestImageLogins(t *testing.T) {
	layer := t.TempDir()
	os.MkdirAll(filepath.Join(layer, "etc"), 0o755)
	os.MkdirAll(filepath.Join(layer, "home/dev/.ssh"), 0o700)
	os.WriteFile(filepath.Join(layer, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\ndev:x:1000:1000::/home/dev:/bin/sh\n"), 0o644)
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test"
	os.WriteFile(filepath.Join(layer, "home/dev/.ssh/authorized_keys"), []byte(key+"\n"), 0o600)
	shadow := func(root, dev string) {
		os.WriteFile(filepath.Join(layer, "etc/shadow"), []byte("root:"+root+":19000:0:99999:7:::\ndev:"+dev+":19000:0:99999:7:::\n"), 0o600)
	}
	shadow("!", "$6$salt$hash")
	keys, hash, note, err := imageLogins([]string{layer}, "dev")
	if err != nil || len(keys) != 1 || keys[0] != key || hash != "$6$salt$hash" || note != "" {
		t.Errorf("dev: %q %q %q %v", keys, hash, note, err)
	}
	if keys, hash, _, err := imageLogins([]string{layer}, "root"); err != nil || len(keys) != 0 || hash != "" {
		t.Errorf("root (locked, no keys): %q %q %v", keys, hash, err)
	}
	// yescrypt, Debian's default (made by libxcrypt here), is taken.
	const yescrypt = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$PmNgGTLMFjJn.URBv11CpTEm5RwlKtPjRtztKe6.b33"
	shadow("!", yescrypt)
	if _, hash, note, err := imageLogins([]string{layer}, "dev"); err != nil || hash != yescrypt || note != "" {
		t.Errorf("yescrypt: %q %q %v", hash, note, err)
	}
	shadow("!", "$2b$10$abcdefghijklmnopqrstuuGmUx9YPmxs4UQl3Bt5KI/1qhS2tXv7e")
	os.WriteFile(filepath.Join(layer, "home/dev/.ssh/authorized_keys"), []byte(key+"\ncommand=\"x\" "+key+"\n"), 0o600)
	keys, hash, note, err = imageLogins([]string{layer}, "dev")
	if err != nil || len(keys) != 1 || hash != "" || !strings.Contains(note, "$2b$ hash") || !strings.Contains(note, "line 2 left out") {
		t.Errorf("bcrypt and a key with options: %q %q %q %v", keys, hash, note, err)
	}
}
