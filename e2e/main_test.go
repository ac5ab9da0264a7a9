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

// TestMain builds the binaries under test, or takes prebuilt ones from
// DEVBOX_E2E_BIN and DEVBOX_E2E_HELPER: the cgroup-v2 VM that `make
// test-v2vm` runs this test binary in has no Go.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "devbox-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	devboxBin = prebuiltOr(dir, "DEVBOX_E2E_BIN", "devbox", "./cmd/devbox")
	helperBin = prebuiltOr(dir, "DEVBOX_E2E_HELPER", "helper", "./e2e/helper")
	// devbox runs the compose reader and the manifest writer from beside
	// itself; a prebuilt devbox (the VM's) runs no compose or kube test.
	if os.Getenv("DEVBOX_E2E_BIN") == "" {
		prebuiltOr(dir, "", "devbox-compose", "./cmd/devbox-compose")
		prebuiltOr(dir, "", "devbox-kube", "./cmd/devbox-kube")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// prebuiltOr is the prebuilt binary named by env, or pkg built into dir.
func prebuiltOr(dir, env, name, pkg string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	out := filepath.Join(dir, name)
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", out, pkg)
	build.Dir = filepath.Join(filepath.Dir(file), "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build %s: %v\n%s", name, err, msg)
		os.Exit(1)
	}
	return out
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// devbox runs the binary in dir.
func devbox(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return devboxIn(t, nil, dir, args...)
}

// devboxIn runs the binary in dir under the command prefix wrap (ip netns
// exec …, unshare -m), if any.
func devboxIn(t *testing.T, wrap []string, dir string, args ...string) result {
	t.Helper()
	argv := append(append(wrap[:len(wrap):len(wrap)], devboxBin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
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
