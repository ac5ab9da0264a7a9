package helperbin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Find is the helper name beside the running devbox, else on PATH; the
// error says what it is for (role, a sentence that ends with its name:
// "compose files are read by") and how it is installed.
func Find(name, role string) (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s %s, installed beside devbox (make build makes it): not found", role, name)
}

// Run runs the helper name with args and stdin, and returns what it
// printed. When it fails, the error is what it said on its standard
// error, without its "name: " prefix.
func Run(name, role string, args []string, stdin []byte) (stdout, stderr []byte, err error) {
	path, err := Find(name, role)
	if err != nil {
		return nil, nil, err
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(strings.TrimPrefix(errOut.String(), name+": "))
		if msg == "" {
			return nil, errOut.Bytes(), fmt.Errorf("%s: %w", name, err)
		}
		return nil, errOut.Bytes(), errors.New(msg)
	}
	return out.Bytes(), errOut.Bytes(), nil
}
