package testbase

import (
	_ "embed"
	"os"
	"path/filepath"
	"testing"
)

// classic is the classic hand-made Dockerfile devbox replaces (CentOS 7,
// the gcc toolchain, sshd, Node by curl, the npm registry, a root
// password and key), a copy of the project's shared test fixture.
//
//go:embed testdata/classic.Dockerfile
var classic []byte

// ClassicDockerfile is the classic Dockerfile's content.
func ClassicDockerfile() []byte { return classic }

// WriteClassicDockerfile writes it as dir/Dockerfile and returns the path.
func WriteClassicDockerfile(tb testing.TB, dir string) string {
	tb.Helper()
	p := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(p, classic, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}
