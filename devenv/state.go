package devenv

import (
	"os"
	"path/filepath"
)

// DefaultStateRoot is where devbox keeps layers, builds and environments:
// /var/lib/devbox for root, the user's data directory otherwise.
func DefaultStateRoot() string {
	if os.Geteuid() == 0 {
		return "/var/lib/devbox"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "devbox")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "devbox")
	}
	return filepath.Join(home, ".local", "share", "devbox")
}
