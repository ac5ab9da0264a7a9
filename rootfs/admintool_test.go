package rootfs

import (
	"os"
	"testing"
)

// TestAdminToolInSbin: an ordinary user's PATH has no sbin directory, yet
// debootstrap (in /usr/sbin on Debian) is found.
func TestAdminToolInSbin(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/debootstrap"); err != nil {
		t.Fatal("debootstrap is not installed in /usr/sbin (make test installs it)")
	}
	t.Setenv("PATH", "/usr/bin:/bin")
	if p, err := adminTool("debootstrap"); err != nil || p != "/usr/sbin/debootstrap" {
		t.Errorf("adminTool: %q %v", p, err)
	}
	if _, err := adminTool("no-such-tool-devbox"); err == nil {
		t.Error("a tool that is nowhere was found")
	}
}
