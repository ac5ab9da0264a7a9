package seccomp

import "golang.org/x/sys/unix"

// nativeArch is the only ABI the filter lets through on arm64: AArch64. The
// AArch32 compat ABI (AUDIT_ARCH_ARM) is killed.
var nativeArch = archInfo{
	name:      "arm64",
	auditArch: unix.AUDIT_ARCH_AARCH64,
}
