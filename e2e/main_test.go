// Package e2e drives the built devbox binary the way a user does.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// devboxBin is the binary under test and helperBin a static helper for
// containers, both built once by TestMain.
var devboxBin, helperBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "devbox-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	devboxBin = filepath.Join(dir, "devbox")
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", devboxBin, "./cmd/devbox")
	build.Dir = filepath.Join(filepath.Dir(file), "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build devbox: %v\n%s", err, out)
		os.Exit(1)
	}
	helperBin = filepath.Join(dir, "helper")
	build = exec.Command("go", "build", "-o", helperBin, "./e2e/helper")
	build.Dir = filepath.Join(filepath.Dir(file), "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build helper: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// devbox runs the binary in dir with a private state root.
func devbox(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(devboxBin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run devbox %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

func mustCompile(expr string) *regexp.Regexp { return regexp.MustCompile(expr) }

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
