package safetext

import "testing"

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcode ok":       "plain text, ünïcode ok",
		"\x1b[2J\x1b]0;pwned\x07":      `\x1b[2J\x1b]0;pwned\x07`,
		"line\nbreak\ttab\r":           `line\x0abreak\x09tab\x0d`,
		"del\x7f c1\u009b":             `del\x7f c1\u009b`,
		"bidi \u202eevil\u2066":        `bidi \u202eevil\u2066`,
		"bad utf8 \xff\xfe":            `bad utf8 \xff\xfe`,
		"sep\u2028para\u2029":          `sep\u2028para\u2029`,
		`a backslash \x1b stays as is`: `a backslash \x1b stays as is`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
		if Clean(in) != (in == want) {
			t.Errorf("Clean(%q) = %v", in, Clean(in))
		}
	}
}
