package devices

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkInstructions: building the default program (uncached).
func BenchmarkInstructions(b *testing.B) {
	rules, _ := expand(Default())
	for b.Loop() {
		instructions(rules)
	}
}

// BenchmarkLoad: BPF_PROG_LOAD (the verifier and JIT) of the default program, and close.
func BenchmarkLoad(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	rules, _ := expand(Default())
	for b.Loop() {
		p, err := load(rules)
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}

// BenchmarkAttachV2: all of AttachV2 on one cgroup, so each iteration also
// queries and replaces the previous program.
func BenchmarkAttachV2(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	parent, ok := ownCgroup(b, "")
	if !ok {
		b.Skip("no cgroup v2 hierarchy")
	}
	dir := parent + "/devbox-devbench"
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	defer unix.Rmdir(dir)
	for b.Loop() {
		if err := AttachV2(dir, Default()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyV1: ApplyV1 of the default rules on one devices cgroup.
func BenchmarkApplyV1(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	parent, ok := ownCgroup(b, "devices")
	if !ok {
		b.Skip("no cgroup v1 devices hierarchy")
	}
	dir := parent + "/devbox-devbench"
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	defer unix.Rmdir(dir)
	for b.Loop() {
		if err := ApplyV1(dir, Default()); err != nil {
			b.Fatal(err)
		}
	}
}
