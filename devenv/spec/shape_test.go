package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailscale/hujson"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
)

// quick is how long refusing a hostile spec may take: the decoder took
// over 10 s on 20,000 dots, 107 s on a devcontainer.json of nested objects.
const quick = 500 * time.Millisecond

// dotted are specs that nest without brackets: dotted table headers and
// keys, each thousands of parts deep.
func dotted(n int) map[string]string {
	parts := strings.Repeat("a.", n) + "a"
	return map[string]string{
		"table header":     "base = \"x\"\n[" + parts + "]\n",
		"array of tables":  "base = \"x\"\n[[" + parts + "]]\n",
		"quoted header":    "base = \"x\"\n[" + strings.Repeat(`"a".`, n) + "a]\n",
		"dotted key":       "base = \"x\"\n" + parts + " = 1\n",
		"key in a table":   "base = \"x\"\n[env]\n" + parts + " = 1\n",
		"key inline":       "base = \"x\"\nx = {" + parts + " = 1}\n",
		"key in an array":  "base = \"x\"\nx = [{y = 1, " + parts + " = 1}]\n",
		"header plus keys": "base = \"x\"\n[" + strings.Repeat("a.", 9) + "a]\n" + strings.Repeat("b.", 9) + "b = 1\n",
	}
}

// TestDottedNestingRefused: a spec nested by dots is refused before the
// decoder sees it, at once, naming the file, line and key.
func TestDottedNestingRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for name, spec := range dotted(20000) {
		start := time.Now()
		_, err := Load(writeSpec(t, dir, spec))
		took := time.Since(start)
		var se *Error
		if !errors.As(err, &se) {
			t.Fatalf("%s: %v, want a spec error", name, err)
		}
		if took > quick {
			t.Errorf("%s: refused after %s (want < %s)", name, took, quick)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "devbox.toml:") || !strings.Contains(msg, "nested more than 16") {
			t.Errorf("%s: %q", name, msg)
		}
		if want := strings.Count(spec, "\n"); se.Line != want { // the last line
			t.Errorf("%s: line %d, want %d", name, se.Line, want)
		}
		if !strings.HasPrefix(se.Key, "a.a.a") && !strings.HasPrefix(se.Key, "b.b") && !strings.HasPrefix(se.Key, `"a"`) {
			t.Errorf("%s: key %q, want the dotted key", name, se.Key)
		}
		if len(msg) > 200 {
			t.Errorf("%s: error line of %d bytes", name, len(msg))
		}
	}
}

// TestNestingAtTheLimit: 16 levels, however made, are not refused by the
// shape check (the decoder then says what it thinks of the keys), and
// the dots of values (floats, quoted strings) do not count.
func TestNestingAtTheLimit(t *testing.T) {
	for name, spec := range map[string]string{
		"16-part header":          "[" + strings.Repeat("a.", 15) + "a]\nx = 1.5\n",
		"header and key":          "[" + strings.Repeat("a.", 7) + "a]\n" + strings.Repeat("b.", 7) + "b = 1.5\n",
		"header and arrays":       "[a.b]\nx = " + strings.Repeat("[", 14) + strings.Repeat("]", 14) + "\n",
		"dots in strings":         "[a]\n\"" + strings.Repeat("a.", 100) + "\" = \"" + strings.Repeat("1.", 100) + "\"\n",
		"dots in a values' array": "[a]\nx = [" + strings.Repeat("1.5, ", 100) + "]\n",
	} {
		err := checkShape([]byte("base = \"x\"\n" + spec))
		if err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
	}
	if err := checkShape([]byte("[" + strings.Repeat("a.", 16) + "a]\n")); err == nil {
		t.Error("a 17-part header is not refused")
	}
	if err := checkShape([]byte("[" + strings.Repeat("a.", 15) + "a]\nb.c = 1\n")); err == nil {
		t.Error("a 16-part header with a dotted key under it is not refused")
	}
}

// TestDevcontainerNestingRefused: a devcontainer.json of nested objects
// took 107 s to refuse; now the shape check refuses it at once, in Load
// and in ReadDevcontainer (devbox init --from).
func TestDevcontainerNestingRefused(t *testing.T) {
	const n = 1 << 17
	json := "{\"image\": \"x\",\n// a comment with [[[ and a \"\n/* and { */ \"a\": " +
		strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) + "}"
	p := workspace(t, json, nil)
	start := time.Now()
	_, err := Load(p)
	var se *Error
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "nested more than 16") || se.Line != 3 {
		t.Errorf("Load: %v, want line 3 nested more than 16", err)
	}
	if _, err := ReadDevcontainer(p); err == nil || !strings.Contains(err.Error(), "nested more than 16") {
		t.Errorf("ReadDevcontainer: %v", err)
	}
	if took := time.Since(start); took > quick {
		t.Errorf("refused after %s", took)
	}
}

// TestLargeDevcontainerLines: finding the line of each member of a flat
// devcontainer.json near 1 MiB took 6 s, counting from the start of the
// file for each; now it is one pass, and the lines are still right.
func TestLargeDevcontainerLines(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"image": "x", "containerEnv": {`)
	n := 0
	for ; b.Len() < MaxSize-100; n++ {
		fmt.Fprintf(&b, "\n\"A%d\": \"b\",", n)
	}
	b.WriteString("\n\"Z\": \"z\"}}\n")
	data := []byte(b.String())
	v, err := hujson.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	lines := map[string]int{}
	jsonLines(newLineIndex(data), &v, "", lines)
	if took := time.Since(start); took > quick {
		t.Errorf("took %s", took)
	}
	if got := lines[fmt.Sprintf("containerEnv.A%d", n-1)]; got != n+1 {
		t.Errorf("last member on line %d, want %d", got, n+1)
	}
	if got := lines["containerEnv.Z"]; got != n+2 {
		t.Errorf("Z on line %d, want %d", got, n+2)
	}
	if _, err := Load(workspace(t, b.String(), nil)); err != nil {
		t.Fatal(err)
	}
}

// TestHugeFilesRefused: every file devbox reads as a spec, or because a
// spec names it, is read up to its bound and no further: a sparse 10 GB
// file and /dev/zero (behind a symlink a cloned repository can hold) are
// refused at once.
func TestHugeFilesRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	sparse := filepath.Join(dir, "sparse")
	if err := os.WriteFile(sparse, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 10<<30); err != nil {
		t.Fatal(err)
	}
	for _, huge := range []string{sparse, "/dev/zero"} {
		for _, name := range []string{FileName, "devcontainer.json", "Dockerfile"} {
			os.MkdirAll(filepath.Join(dir, "ws", ".devcontainer"), 0o755)
			link := filepath.Join(dir, "ws", name)
			if name == "devcontainer.json" {
				link = filepath.Join(dir, "ws", ".devcontainer", name)
			}
			os.Remove(link)
			if err := os.Symlink(huge, link); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			var err error
			switch name {
			case "Dockerfile":
				_, err = dockerfile.Parse(link, nil, "")
			case "devcontainer.json":
				if _, err = Load(link); err != nil && strings.Contains(err.Error(), "over 1048576 bytes") {
					_, err = ReadDevcontainer(link)
				}
			default:
				_, err = Load(link)
			}
			if err == nil || !strings.Contains(err.Error(), "over 1048576 bytes") {
				t.Errorf("%s as %s: %v, want over 1048576 bytes", huge, name, err)
			}
			if took := time.Since(start); took > quick {
				t.Errorf("%s as %s: refused after %s", huge, name, took)
			}
		}
	}
	start := time.Now()
	_, err := Load(writeSpec(t, dir, "base = \"x\"\n[ssh]\nauthorized_keys = [\"/dev/zero\"]\n"))
	if err == nil || !strings.Contains(err.Error(), "over 1048576 bytes") || time.Since(start) > quick {
		t.Errorf("authorized_keys = /dev/zero: %v after %s", err, time.Since(start))
	}
}
