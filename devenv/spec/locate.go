package spec

import (
	"slices"
	"strconv"
	"strings"
)

// locator finds the line on which a key is written, so that errors found
// after decoding (unknown keys, bad values) can point at the source the way
// the TOML parser does for syntax errors. It understands what specs use:
// [table] and [[array]] headers, bare and quoted keys, dotted keys.
type locator struct {
	lines []string
}

func newLocator(data []byte) *locator {
	return &locator{lines: strings.Split(string(data), "\n")}
}

// line returns the 1-based line of key path (e.g. "ssh.port",
// "mounts.1.target", "bse"), or of its closest located parent, or 1.
func (l *locator) line(path string) int {
	parts := strings.Split(path, ".")
	for n := len(parts); n > 0; n-- {
		if ln := l.find(parts[:n]); ln > 0 {
			return ln
		}
	}
	return 1
}

// find looks for the exact path. Numeric parts select the Nth [[array]]
// table (0-based).
func (l *locator) find(path []string) int {
	var table []string // current table header, with indices for arrays
	counts := map[string]int{}
	for i, raw := range l.lines {
		s := strings.TrimSpace(stripComment(raw))
		if s == "" {
			continue
		}
		if strings.HasPrefix(s, "[[") && strings.HasSuffix(s, "]]") {
			name := splitKey(strings.TrimSpace(s[2 : len(s)-2]))
			idx := counts[strings.Join(name, ".")]
			counts[strings.Join(name, ".")]++
			table = append(name, strconv.Itoa(idx))
			if slices.Equal(table, path) || slices.Equal(name, path) && idx == 0 {
				return i + 1
			}
			continue
		}
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			table = splitKey(strings.TrimSpace(s[1 : len(s)-1]))
			if slices.Equal(table, path) {
				return i + 1
			}
			continue
		}
		eq := strings.Index(s, "=")
		if eq < 0 {
			continue
		}
		key := append(append([]string{}, table...), splitKey(strings.TrimSpace(s[:eq]))...)
		if !hasIndex(path) {
			key = withoutIndex(key)
		}
		if slices.Equal(key, path) || hasPrefixKeys(key, path) {
			return i + 1
		}
	}
	return 0
}

func isIndex(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func hasIndex(path []string) bool {
	for _, p := range path {
		if isIndex(p) {
			return true
		}
	}
	return false
}

// withoutIndex drops array-table indices, for keys the decoder names
// without them (mounts.sourc rather than mounts.0.sourc).
func withoutIndex(key []string) []string {
	var out []string
	for _, k := range key {
		if !isIndex(k) {
			out = append(out, k)
		}
	}
	return out
}

// hasPrefixKeys reports whether a dotted assignment (ssh.port = 1) defines
// path or a key under it.
func hasPrefixKeys(key, path []string) bool {
	return len(key) > len(path) && slices.Equal(key[:len(path)], path)
}

func splitKey(s string) []string {
	var parts []string
	for _, p := range strings.Split(s, ".") {
		p = strings.TrimSpace(p)
		p = strings.Trim(p, `"'`)
		parts = append(parts, p)
	}
	return parts
}

// stripComment removes a trailing comment that is not inside a string.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return s[:i]
		}
	}
	return s
}
