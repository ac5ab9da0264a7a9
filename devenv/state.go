package devenv

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/devbox/devbox/runtime"
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

// ownerLine identifies a live process: its pid and start time.
func ownerLine(pid int) string {
	return fmt.Sprintf("%d %d\n", pid, runtime.ProcessStart(pid))
}

// ownerAlive reports whether the process of an ownerLine still runs.
func ownerAlive(line string) bool {
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(line, "%d %d", &pid, &start); err != nil {
		return false
	}
	return start != 0 && runtime.ProcessStart(pid) == start
}
