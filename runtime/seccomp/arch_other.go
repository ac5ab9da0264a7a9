//go:build linux && !amd64 && !arm64

package seccomp

// Other architectures have no filter: Default returns an error.
var nativeArch = archInfo{}

var sysnums = [...]sysnum{}
