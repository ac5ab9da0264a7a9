package seccomp

import "golang.org/x/sys/unix"

// nativeArch is the only ABI the filter lets through on amd64: x86_64 with
// syscall numbers below the x32 bit. The i386 (int 0x80) and x32 ABIs are
// killed, as libseccomp does for a filter that names only SCMP_ARCH_X86_64.
var nativeArch = archInfo{
	name:      "amd64",
	auditArch: unix.AUDIT_ARCH_X86_64,
	nrLimit:   0x40000000, // __X32_SYSCALL_BIT
}
