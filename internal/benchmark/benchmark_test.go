package benchmark

import (
	"bytes"
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
	medians, err := Interleave([]Side{peer, ours}, 3, []string{"cold", "warm"}, func(f string, a ...any) { order = append(order, a[1].(string)) })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, " ") != "peer ours peer ours peer ours" {
		t.Errorf("not interleaved: %v", order)
	}
	if medians[0][0] != 2*time.Second || medians[1][1] != 250*time.Millisecond {
		t.Errorf("medians %v", medians)
	}
	var out bytes.Buffer
	Report(&out, []Side{peer, ours}, []string{"cold", "warm"}, medians)
	if !strings.Contains(out.String(), "ratios are to peer\n") || !strings.Contains(out.String(), "ours:   cold       1s (0.50x)   warm    250ms (0.25x)") {
		t.Errorf("report:\n%s", out.String())
	}
	if Percentile([]time.Duration{3, 1, 2}, 99) != 3 || Median([]time.Duration{4, 1, 3, 2}) != 3 {
		t.Error("percentile")
	}
}
