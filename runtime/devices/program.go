package devices

import (
	"slices"
	"strconv"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// The program's input is struct bpf_cgroup_dev_ctx (include/uapi/linux/bpf.h):
//
//	u32 access_type;  // (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*
//	u32 major;
//	u32 minor;
//
// and it returns 1 to allow the access, 0 to refuse it (EPERM).
const (
	ctxAccessType = 0
	ctxMajor      = 4
	ctxMinor      = 8
)

// bpfAccess maps an Access to the kernel's BPF_DEVCG_ACC_* bits.
func bpfAccess(a Access) int32 {
	var b int32
	if a&Read != 0 {
		b |= unix.BPF_DEVCG_ACC_READ
	}
	if a&Write != 0 {
		b |= unix.BPF_DEVCG_ACC_WRITE
	}
	if a&Mknod != 0 {
		b |= unix.BPF_DEVCG_ACC_MKNOD
	}
	return b
}

// instructions builds the device program for rules that expand() has
// checked (Char and Block only). It matches what runc's and crun's programs
// match (type, then access, major and minor, default deny), with the rules
// grouped so that each test is made once:
//
//	r2 = ctx->access_type & 0xffff   // type
//	r3 = ctx->access_type >> 16      // requested access (if a rule is not rwm)
//	r4 = ctx->major
//	r5 = ctx->minor
//	if r2 != CHAR goto type1         // one section per type
//	  [r1 = r3; r1 &= A; if r1 != r3 goto group1]   // one group per access set; no test for rwm
//	    if r4 != 1 goto major1       // one block per major
//	      if r5 == 3 goto allow      // one test per minor
//	      if r5 == 5 goto allow
//	  major1:
//	    if r4 == 136 goto allow      // minor *
//	  group1: ...
//	type1: ...
//	r0 = 0; exit                     // default deny
//	allow: r0 = 1; exit
//
// Every rule allows, so order does not matter and no rule can punch a hole
// in another. runc's layout (every rule a block that tests everything) gives
// 52 instructions for the 9 default rules and the verifier walks 190 of them
// (~230 µs to load here); this one gives 20, and every branch to "allow" is
// pruned at once.
func instructions(rules []Rule) asm.Instructions {
	b := &builder{at: map[string]int{}}
	b.emit(
		asm.LoadMem(asm.R2, asm.R1, ctxAccessType, asm.Word),
		asm.And.Imm32(asm.R2, 0xffff),
	)
	if slices.ContainsFunc(rules, func(r Rule) bool { return r.Access != RWM }) {
		b.emit(
			asm.LoadMem(asm.R3, asm.R1, ctxAccessType, asm.Word),
			asm.RSh.Imm32(asm.R3, 16),
		)
	}
	b.emit(
		asm.LoadMem(asm.R4, asm.R1, ctxMajor, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, ctxMinor, asm.Word),
	)
	for _, t := range []Type{Char, Block} {
		var typed []Rule
		for _, r := range rules {
			if r.Type == t {
				typed = append(typed, r)
			}
		}
		if len(typed) == 0 {
			continue
		}
		typ := int32(unix.BPF_DEVCG_DEV_CHAR)
		if t == Block {
			typ = unix.BPF_DEVCG_DEV_BLOCK
		}
		if slices.Contains(typed, Rule{t, Wildcard, Wildcard, RWM}) {
			b.allow(asm.JEq.Imm(asm.R2, typ, "allow"))
			continue
		}
		next := b.label()
		b.emit(asm.JNE.Imm(asm.R2, typ, next))
		for _, acc := range firsts(typed, func(r Rule) Access { return r.Access }) {
			var group []Rule
			for _, r := range typed {
				if r.Access == acc {
					group = append(group, r)
				}
			}
			b.group(acc, group)
		}
		b.place(next)
	}
	b.emit(asm.Mov.Imm32(asm.R0, 0), asm.Return())
	if b.allowed {
		b.place("allow")
		b.emit(asm.Mov.Imm32(asm.R0, 1), asm.Return())
	}
	return b.finish()
}

// group emits the tests of rules of one type that all have access acc.
func (b *builder) group(acc Access, rules []Rule) {
	next := ""
	if acc != RWM {
		next = b.label()
		b.emit(
			asm.Mov.Reg32(asm.R1, asm.R3),
			asm.And.Imm32(asm.R1, bpfAccess(acc)),
			asm.JNE.Reg(asm.R1, asm.R3, next),
		)
	}
	if slices.ContainsFunc(rules, func(r Rule) bool { return r.Major == Wildcard && r.Minor == Wildcard }) {
		// Only here with a test above (rwm *:* is handled by the caller),
		// so the code after the jump stays reachable through next.
		b.allow(asm.Ja.Label("allow"))
		b.place(next)
		return
	}
	for _, r := range rules {
		if r.Major == Wildcard && !slices.Contains(b.minors, r.Minor) {
			b.minors = append(b.minors, r.Minor)
			b.allow(asm.JEq.Imm(asm.R5, int32(r.Minor), "allow"))
		}
	}
	b.minors = b.minors[:0]
	for _, maj := range firsts(rules, func(r Rule) int64 { return r.Major }) {
		if maj == Wildcard {
			continue
		}
		if slices.Contains(rules, Rule{rules[0].Type, maj, Wildcard, acc}) {
			b.allow(asm.JEq.Imm(asm.R4, int32(maj), "allow"))
			continue
		}
		other := b.label()
		b.emit(asm.JNE.Imm(asm.R4, int32(maj), other))
		for _, r := range rules {
			if r.Major == maj {
				b.allow(asm.JEq.Imm(asm.R5, int32(r.Minor), "allow"))
			}
		}
		b.place(other)
	}
	if next != "" {
		b.place(next)
	}
}

// firsts gives the distinct values of key over rules, in order of first use.
func firsts[K comparable](rules []Rule, key func(Rule) K) []K {
	var ks []K
	for _, r := range rules {
		if k := key(r); !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	return ks
}

// builder places labels at instruction indexes; several labels may land on
// one instruction, which can carry only one symbol, so finish renames every
// target after its index.
type builder struct {
	insts   asm.Instructions
	at      map[string]int // label -> index of the instruction it names
	n       int
	allowed bool    // some jump goes to "allow"
	minors  []int64 // scratch
}

func (b *builder) emit(in ...asm.Instruction) { b.insts = append(b.insts, in...) }

func (b *builder) allow(in asm.Instruction) { b.allowed = true; b.emit(in) }

func (b *builder) label() string { b.n++; return "l" + strconv.Itoa(b.n) }

func (b *builder) place(label string) {
	if label != "" {
		b.at[label] = len(b.insts)
	}
}

func (b *builder) finish() asm.Instructions {
	name := func(i int) string { return "i" + strconv.Itoa(i) }
	for i, in := range b.insts {
		if ref := in.Reference(); ref != "" {
			b.insts[i] = in.WithReference(name(b.at[ref]))
		}
	}
	for _, i := range b.at {
		b.insts[i] = b.insts[i].WithSymbol(name(i))
	}
	return b.insts
}
