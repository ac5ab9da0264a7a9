package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"
)

// ReadFile reads a file that devbox reads as a spec or next to one (a
// devbox.toml, a devcontainer.json, a Dockerfile): at most MaxSize
// bytes, so that a 10 GB file or /dev/zero is refused after reading one
// byte past the limit, not read to the end.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: over %d bytes (1 MiB), more than such a file ever needs", path, MaxSize)
	}
	return data, nil
}

// shapeError is checkShape's refusal: a line, and the key being read
// when the scan could tell (cut short: a hostile key is megabytes).
type shapeError struct {
	line int
	key  string
	msg  string
}

func (e *shapeError) Error() string { return e.msg }

// checkShape refuses, before decoding, what no spec needs and what would
// make decoding slow or the values unusable: NUL bytes, and nesting
// deeper than MaxNesting. Nesting counts every level the decoder builds:
// the parts of a table header ([a.b.c] is 3), the dots of a dotted key
// (a.b.c = 1 is 2 more under its table), and open arrays and inline
// tables; the decoder's time grows with the square of a dotted key's
// parts. The scan knows strings and comments well enough to count; a
// quote inside a multi-line string may throw the count off for the rest
// of that string, which only a spec with many brackets there would notice.
func checkShape(data []byte) error {
	s := &shapeScan{data: data, line: 1, inKey: true}
	for s.i = 0; s.i < len(data); s.i++ {
		if err := s.step(); err != nil {
			return err
		}
	}
	return nil
}

type shapeScan struct {
	data   []byte
	i      int
	line   int
	quote  byte   // inside a string: its quote character
	open   []byte // the open arrays and inline tables, innermost last
	header int    // the parts of the current table header
	inKey  bool   // reading a key: its dots nest
	dots   int    // the dots of the key being read
	keyAt  int    // where that key starts
	keyEnd int    // and where it ends, once its '=' is read
}

func (s *shapeScan) step() error {
	c := s.data[s.i]
	switch {
	case c == 0:
		return &shapeError{line: s.line, msg: "a NUL byte"}
	case c == '\n':
		s.line++ // a multi-line string stays open across it
		if s.quote == 0 && len(s.open) == 0 {
			s.startKey(s.i + 1)
		}
	case s.quoted(c): // in a string, or its opening quote
	case c == '#':
		for s.i < len(s.data) && s.data[s.i] != '\n' {
			s.i++
		}
		s.i--
	case c == '=' && s.inKey:
		s.inKey, s.keyEnd = false, s.i
	case c == '.' && s.inKey:
		s.dots++
		return s.check()
	case c == '[' && s.inKey && len(s.open) == 0 && s.dots == 0:
		return s.tableHeader()
	case c == '[' || c == '{':
		s.open = append(s.open, c)
		if err := s.check(); err != nil { // naming the key that opens it
			return err
		}
		if s.inKey = c == '{'; s.inKey {
			s.startKey(s.i + 1)
		}
	case c == ',' && len(s.open) > 0 && s.open[len(s.open)-1] == '{':
		s.startKey(s.i + 1)
	case c == ']' || c == '}':
		if len(s.open) > 0 {
			s.open = s.open[:len(s.open)-1]
		}
		s.inKey = false
	}
	return nil
}

// quoted reads c as part of a quoted string if it is one (opening,
// inside or closing it, skipping an escaped character), and says so.
func (s *shapeScan) quoted(c byte) bool {
	switch {
	case s.quote != 0:
		if c == '\\' && s.quote == '"' {
			s.i++
		} else if c == s.quote {
			s.quote = 0
		}
	case c == '"' || c == '\'':
		s.quote = c
	default:
		return false
	}
	return true
}

func (s *shapeScan) startKey(at int) {
	s.inKey, s.dots, s.keyAt, s.keyEnd = true, 0, at, -1
}

// tableHeader reads [a.b.c] or [[a.b.c]] up to its closing bracket or
// the line's end, and makes its parts the current table's depth.
func (s *shapeScan) tableHeader() error {
	s.header, s.dots, s.keyAt, s.keyEnd = 1, 0, s.i, -1
	for s.i++; s.i < len(s.data) && s.data[s.i] != '\n'; s.i++ {
		switch c := s.data[s.i]; {
		case c == 0:
			return &shapeError{line: s.line, msg: "a NUL byte"}
		case s.quoted(c):
		case c == '.':
			if s.header++; s.header > MaxNesting {
				return s.tooDeep()
			}
		case c == ']':
			for s.i+1 < len(s.data) && s.data[s.i+1] == ']' {
				s.i++
			}
			s.inKey = false
			return nil
		}
	}
	s.i-- // the newline is the next step's
	return nil
}

// check refuses nesting deeper than MaxNesting.
func (s *shapeScan) check() error {
	if s.header+len(s.open)+s.dots > MaxNesting {
		return s.tooDeep()
	}
	return nil
}

// tooDeep is the refusal, naming the key as written (or the table
// header) that it happened in.
func (s *shapeScan) tooDeep() error {
	end := s.keyEnd
	if end < s.keyAt {
		end = max(min(s.i, len(s.data)), s.keyAt)
	}
	key := strings.Trim(string(s.data[s.keyAt:end]), " \t[].")
	return &shapeError{line: s.line, key: shortKey(key),
		msg: fmt.Sprintf("keys, tables and arrays nested more than %d deep", MaxNesting)}
}

// shortKey makes a key fit an error line: cut short (a hostile key is
// megabytes) and without control characters, which a terminal obeys.
func shortKey(k string) string {
	const most = 60
	if len(k) > most {
		k = k[:most] + "…"
	}
	k = strings.ToValidUTF8(k, "?")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, k)
}

// checkJSONShape is checkShape for a devcontainer.json (JSON with
// comments): NUL bytes, and arrays and objects nested more than
// MaxNesting deep, before hujson and encoding/json recurse into them.
func checkJSONShape(data []byte) error {
	line, depth := 1, 0
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case 0:
			return &shapeError{line: line, msg: "a NUL byte"}
		case '\n':
			line++
		case '"':
			for i++; i < len(data); i++ {
				if data[i] == '\\' {
					i++
				} else if data[i] == '"' || data[i] == '\n' {
					break
				}
			}
			if i < len(data) && data[i] == '\n' {
				line++ // JSON strings end at a newline: hujson refuses it
			}
		case '/':
			i = skipJSONComment(data, i, &line)
		case '[', '{':
			if depth++; depth > MaxNesting {
				return &shapeError{line: line, msg: fmt.Sprintf("arrays and objects nested more than %d deep", MaxNesting)}
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return nil
}

// skipJSONComment skips a // or /* */ comment at i, counting its lines,
// and returns the index of its last byte (i itself when not a comment).
func skipJSONComment(data []byte, i int, line *int) int {
	switch {
	case bytes.HasPrefix(data[i:], []byte("//")):
		if n := bytes.IndexByte(data[i:], '\n'); n >= 0 {
			return i + n - 1
		}
		return len(data) - 1
	case bytes.HasPrefix(data[i:], []byte("/*")):
		n := bytes.Index(data[i+2:], []byte("*/"))
		if n < 0 {
			return len(data) - 1 // unterminated: hujson says so
		}
		*line += bytes.Count(data[i:i+2+n], []byte("\n"))
		return i + 2 + n + 1
	}
	return i
}

// asShapeError makes checkShape's refusal an *Error of the file.
func asShapeError(shown string, err error) error {
	var se *shapeError
	if errors.As(err, &se) {
		return &Error{File: shown, Line: se.line, Key: se.key, Msg: se.msg}
	}
	return &Error{File: shown, Line: 1, Msg: err.Error()}
}

// lineIndex holds the offsets of a file's newlines, so that the line of
// each of a large file's members is found without counting from the start
// (which made a 1 MiB devcontainer.json take seconds).
type lineIndex []int

func newLineIndex(data []byte) lineIndex {
	var idx lineIndex
	for i, c := range data {
		if c == '\n' {
			idx = append(idx, i)
		}
	}
	return idx
}

// lineAt is the 1-based line of offset off.
func (idx lineIndex) lineAt(off int) int {
	if off < 0 {
		return 1
	}
	n, _ := slices.BinarySearch(idx, off)
	return n + 1
}
