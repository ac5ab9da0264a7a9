// Package runtime starts environments as Linux-namespaced containers whose
// PID 1 is the devbox binary itself.
package runtime

import "os"

// initArg is argv[1] of the re-executed devbox binary when it runs as a
// container's init.
const initArg = "__devbox_init"

// IsInit reports whether this process was started as a container's init.
func IsInit() bool { return len(os.Args) > 1 && os.Args[1] == initArg }

// InitMain runs the container's init and returns its exit code.
func InitMain() int {
	return 1
}
