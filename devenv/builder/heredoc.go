package builder

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
	container "github.com/devbox/devbox/runtime"
)

// Heredocs' documents, written where a step reads them.

// pipeMount is a RUN heredoc's script, in a directory of its own under
// tmp, to mount read-only at /dev/pipes as BuildKit does (mode 0755).
func pipeMount(f *dockerfile.InlineFile, tmp string) (container.Mount, error) {
	dir := filepath.Join(tmp, "pipes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return container.Mount{}, err
	}
	p := filepath.Join(dir, f.Name)
	if err := os.WriteFile(p, []byte(f.Data), 0o755); err != nil {
		return container.Mount{}, fmt.Errorf("heredoc %s: %w", f.Name, err)
	}
	if err := os.Chmod(p, 0o755); err != nil { // whatever devbox's umask
		return container.Mount{}, err
	}
	return container.Mount{Source: dir, Target: dockerfile.PipesDir, Readonly: true}, nil
}

// writeInline writes heredoc documents to tmp/inline, mode 0644 and
// root's, as BuildKit's Mkfile in a scratch state (convert_copy.go), and
// returns them as sources to copy after the others.
func writeInline(files []dockerfile.InlineFile, tmp string) ([]match, error) {
	if len(files) == 0 {
		return nil, nil
	}
	dir := filepath.Join(tmp, "inline")
	var out []match
	for i, f := range files {
		// One directory each: two heredocs may share a name.
		d := filepath.Join(dir, strconv.Itoa(i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		p := filepath.Join(d, f.Name)
		if err := os.WriteFile(p, []byte(f.Data), 0o644); err != nil {
			return nil, fmt.Errorf("heredoc %s: %w", f.Name, err)
		}
		if err := os.Chmod(p, 0o644); err != nil { // whatever devbox's umask
			return nil, err
		}
		out = append(out, match{name: f.Name, path: p})
	}
	return out, nil
}
