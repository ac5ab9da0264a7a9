package benchmark

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestInterleave(t *testing.T) {
	n := 0
	peer := Side{"peer", func() ([]time.Duration, error) {
		n++
		return []time.Duration{time.Duration(n) * time.Second, time.Second}, nil
	}}
	ours := Side{"ours", func() ([]time.Duration, error) { return []time.Duration{time.Second, 250 * time.Millisecond}, nil }}
	var order []string
	logf := func(f string, a ...any) { order = append(order, a[1].(string)) }
	medians, err := Interleave([]Side{peer, ours}, Rounds{N: 3, Warmup: 1, Logf: logf}, []string{"cold", "warm"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, " ") != "ours peer peer ours ours peer" {
		t.Errorf("not interleaved, each round from the next side: %v", order)
	}
	if n != 4 || medians[0][0] != 3*time.Second || medians[1][1] != 250*time.Millisecond {
		t.Errorf("medians %v", medians)
	}
	var out bytes.Buffer
	Report(&out, []Side{peer, ours}, []string{"cold", "warm"}, medians)
	if !strings.Contains(out.String(), "ratios are to peer\n") || !strings.Contains(out.String(), "ours:   cold       1s (0.33x)   warm    250ms (0.25x)") {
		t.Errorf("report:\n%s", out.String())
	}
	cmd := Command(func() *exec.Cmd { return exec.Command("sh", "-c", "echo oops; exit 3") })
	if _, err := cmd(); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("a failed command: %v", err)
	}
	if got, err := Command(func() *exec.Cmd { return exec.Command("true") })(); err != nil || len(got) != 1 || got[0] <= 0 {
		t.Errorf("true: %v %v", got, err)
	}
	if Percentile([]time.Duration{3, 1, 2}, 99) != 3 || Median([]time.Duration{4, 1, 3, 2}) != 3 {
		t.Error("percentile")
	}
}
