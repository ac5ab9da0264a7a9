package devices

import (
	"fmt"
	"os"
	"path/filepath"
)

// ApplyV1 sets the policy on an existing cgroup-v1 devices cgroup directory
// (e.g. /sys/fs/cgroup/devices/devbox/NAME): it writes "a" to devices.deny,
// which empties the allow list and makes the default "deny", then each rule
// to devices.allow, one write per rule as the kernel wants.
//
// Call it before any process of the container joins the cgroup: between
// the deny and the last allow the container would see a partial list. A rule
// the parent cgroup does not allow fails with EPERM, naming the rule.
func ApplyV1(dir string, rules []Rule) error {
	rules, err := expand(rules)
	if err != nil {
		return err
	}
	if err := writeV1(filepath.Join(dir, "devices.deny"), "a"); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "devices.allow"), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	defer f.Close()
	for _, r := range rules {
		if _, err := f.WriteString(r.String()); err != nil {
			return fmt.Errorf("devices: allow %q in %s: %w", r, dir, err)
		}
	}
	return f.Close()
}

func writeV1(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("devices: write %q to %s: %w", line, path, err)
	}
	return nil
}
