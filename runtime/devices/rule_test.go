package devices

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
)

func TestDefault(t *testing.T) {
	var got []string
	for _, r := range Default() {
		if err := r.Validate(); err != nil {
			t.Error(err)
		}
		got = append(got, r.String())
	}
	want := "c 1:3 rwm,c 1:5 rwm,c 1:7 rwm,c 1:8 rwm,c 1:9 rwm,c 5:0 rwm,c 5:1 rwm,c 5:2 rwm,c 136:* rwm"
	if s := strings.Join(got, ","); s != want {
		t.Errorf("Default() = %s\nwant        %s", s, want)
	}
	d := Default()
	d[0].Major = 99
	if Default()[0].Major != 1 {
		t.Error("Default() shares its slice between calls")
	}
}

func TestParseRule(t *testing.T) {
	for _, s := range []string{"c 10:229 rwm", "b 7:* r", "a *:* m", "c 136:* rw"} {
		r, err := ParseRule(s)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", s, err)
			continue
		}
		if r.String() != s {
			t.Errorf("ParseRule(%q).String() = %q", s, r)
		}
	}
	for _, s := range []string{"", "c 1:3", "x 1:3 r", "c 1 r", "c 1:3 rx", "c 1:3 ", "c -1:3 r", "c 4096:0 r", "c 1:1048576 r", "cc 1:3 r"} {
		if r, err := ParseRule(s); err == nil {
			t.Errorf("ParseRule(%q) = %v, want an error", s, r)
		}
	}
	if err := (Rule{Char, 1, 3, 0}).Validate(); err == nil {
		t.Error("a rule with no access validated")
	}
	if err := (Rule{Char, 1, 3, 8}).Validate(); err == nil {
		t.Error("a rule with an unknown access bit validated")
	}
}

func TestFromPath(t *testing.T) {
	r, err := FromPath("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	if r != (Rule{Char, 1, 3, RWM}) {
		t.Errorf("FromPath(/dev/null) = %v", r)
	}
	if _, err := os.Stat("/dev/fuse"); err == nil {
		r, err := FromPath("/dev/fuse")
		if err != nil || r.String() != "c 10:229 rwm" {
			t.Errorf("FromPath(/dev/fuse) = %v, %v; want c 10:229 rwm", r, err)
		}
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "null-link")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	if r, err := FromPath(link); err != nil || r.String() != "c 1:3 rwm" {
		t.Errorf("FromPath(symlink to /dev/null) = %v, %v", r, err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for path, want := range map[string]string{
		file:                        "is a regular file, not a device node",
		dir:                         "is a directory, not a device node",
		sock:                        "is a socket, not a device node",
		filepath.Join(dir, "none"):  "no such device node on the host",
		filepath.Join(file, "none"): "not a directory",
	} {
		_, err := FromPath(path)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("FromPath(%s) error = %v, want one naming the path and saying %q", path, err, want)
		}
	}
}

func TestExpand(t *testing.T) {
	got, err := expand([]Rule{{All, 1, Wildcard, Read}, {Block, 7, 0, RWM}})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, r := range got {
		s = append(s, r.String())
	}
	if j := strings.Join(s, ","); j != "c 1:* r,b 1:* r,b 7:0 rwm" {
		t.Errorf("expand = %s", j)
	}
	if _, err := expand([]Rule{{Char, 5000, 0, Read}}); err == nil {
		t.Error("expand accepted major 5000")
	}
}

func TestInstructions(t *testing.T) {
	insts := instructions(Default())
	if n := len(insts); n != 20 {
		t.Errorf("default program has %d instructions, want 20:\n%v", n, insts)
	}
	if err := insts.Marshal(io.Discard, binary.LittleEndian); err != nil {
		t.Fatal(err)
	}
	a, _ := bytecode(Default())
	b, _ := bytecode(Default())
	if len(a) != 20*asm.InstructionSize || &a[0] != &b[0] {
		t.Errorf("bytecode: %d bytes, built twice: %v", len(a), &a[0] != &b[0])
	}
}

// TestProgramSemantics runs the programs built for many rule lists in a
// small interpreter of the instructions they use, over every request that
// matters, against the rules read directly.
func TestProgramSemantics(t *testing.T) {
	lists := [][]Rule{
		nil,
		Default(),
		{{Char, 1, 3, Read}},
		{{Char, 1, 3, Read}, {Char, 1, 3, Write}, {Block, 7, Wildcard, Read | Mknod}},
		{{All, Wildcard, Wildcard, RWM}},
		{{Char, Wildcard, Wildcard, RWM}, {Block, 8, 0, Read}},
		{{Block, Wildcard, Wildcard, Mknod}, {Char, Wildcard, Wildcard, Mknod}, {Char, 1, 3, RWM}},
		{{Char, Wildcard, 3, Read}, {Char, Wildcard, 3, Read}, {Char, 5, Wildcard, Write}, {Char, 5, 1, Write}},
		append(Default(), Rule{Char, 10, 229, RWM}, Rule{Block, 7, 0, Read | Write}, Rule{All, 4, Wildcard, Read}),
	}
	for i := range 200 { // random lists over a small space of numbers
		var l []Rule
		for j := range 1 + i%7 {
			n := uint(i*7 + j*13)
			num := func(k uint) int64 {
				if k%4 == 0 {
					return Wildcard
				}
				return int64(k % 4)
			}
			l = append(l, Rule{[]Type{Char, Block, All}[n%3], num(n / 3), num(n / 11), Access(1 + n%7)})
		}
		lists = append(lists, l)
	}
	for _, rules := range lists {
		exp, err := expand(rules)
		if err != nil {
			t.Fatal(err)
		}
		insts := instructions(exp)
		for _, typ := range []Type{Char, Block} {
			for major := range int64(12) {
				for minor := range int64(12) {
					if major > 9 && major != 136 && major != 10 {
						major = []int64{10, 136}[major%2]
					}
					for acc := Access(1); acc <= RWM; acc++ {
						want := false
						for _, r := range exp {
							if r.Type == typ && (r.Major == Wildcard || r.Major == major) &&
								(r.Minor == Wildcard || r.Minor == minor) && acc&^r.Access == 0 {
								want = true
							}
						}
						got, err := run(insts, typ, major, minor, acc)
						if err != nil {
							t.Fatalf("rules %v: %v\n%v", rules, err, insts)
						}
						if got != want {
							t.Fatalf("rules %v: %c %d:%d %s: program says %v, rules say %v\n%v",
								rules, typ, major, minor, acc, got, want, insts)
						}
					}
				}
			}
		}
	}
}

// run interprets insts on a bpf_cgroup_dev_ctx for the request.
func run(insts asm.Instructions, typ Type, major, minor int64, acc Access) (bool, error) {
	devType := uint32(1) // BPF_DEVCG_DEV_BLOCK
	if typ == Char {
		devType = 2
	}
	ctx := [3]uint32{uint32(bpfAccess(acc))<<16 | devType, uint32(major), uint32(minor)}
	at := map[string]int{}
	for i, in := range insts {
		if s := in.Symbol(); s != "" {
			at[s] = i
		}
	}
	var reg [11]uint64
	for pc, steps := 0, 0; pc < len(insts) && steps < 1000; steps++ {
		in := insts[pc]
		op := in.OpCode
		pc++
		switch {
		case op == asm.LoadMemOp(asm.Word) && in.Src == asm.R1:
			reg[in.Dst] = uint64(ctx[in.Offset/4])
		case op.Class() == asm.ALUClass: // 32-bit ALU
			src := uint64(uint32(in.Constant))
			if op.Source() == asm.RegSource {
				src = reg[in.Src]
			}
			switch op.ALUOp() {
			case asm.Mov:
				reg[in.Dst] = uint64(uint32(src))
			case asm.And:
				reg[in.Dst] = uint64(uint32(reg[in.Dst] & src))
			case asm.RSh:
				reg[in.Dst] = uint64(uint32(reg[in.Dst]) >> src)
			default:
				return false, fmt.Errorf("unexpected %v", in)
			}
		case op.Class() == asm.JumpClass:
			src := uint64(in.Constant) // sign-extended, as the kernel does
			if op.Source() == asm.RegSource {
				src = reg[in.Src]
			}
			var jump bool
			switch op.JumpOp() {
			case asm.Exit:
				return reg[asm.R0] == 1, nil
			case asm.Ja:
				jump = true
			case asm.JEq:
				jump = reg[in.Dst] == src
			case asm.JNE:
				jump = reg[in.Dst] != src
			default:
				return false, fmt.Errorf("unexpected %v", in)
			}
			if jump {
				target, ok := at[in.Reference()]
				if !ok {
					return false, fmt.Errorf("jump to unknown %q", in.Reference())
				}
				pc = target
			}
		default:
			return false, fmt.Errorf("unexpected %v", in)
		}
	}
	return false, fmt.Errorf("ran off the end")
}
