// Package jsonscan reads JSON a token at a time from a byte slice, without
// reflection and, for strings without escapes, without allocating: the
// pieces the hand-written decoders of hot frames are built from (event
// frames in replay, action frames from clients).
//
// Str, Uint and Int accept only what JSON allows. Str decodes as
// encoding/json does except on broken input: bytes that are not UTF-8 pass
// through, and a broken surrogate pair becomes one U+FFFD, so a caller that
// must match encoding/json exactly keeps only results of printable ASCII.
// Skip checks the nesting of what it passes over, not the grammar of its
// numbers.
package jsonscan

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every error of a Scanner.
var ErrSyntax = errors.New("invalid JSON")

// Scanner reads the JSON text it was Reset to.
type Scanner struct {
	b     []byte
	i     int
	depth int // objects and arrays Skip is inside
}

// MaxDepth bounds the nesting Skip passes over, as encoding/json bounds
// its own (10,000): Skip recurses once a level, so a line of a few
// megabytes of '[' would otherwise overflow the goroutine's stack.
const MaxDepth = 10000

// Reset starts reading b from its beginning.
func (s *Scanner) Reset(b []byte) { s.b, s.i, s.depth = b, 0, 0 }

// Offset is the position of the next byte to read.
func (s *Scanner) Offset() int { return s.i }

// Peek returns the next byte after whitespace, without consuming it; ok
// false at the end.
func (s *Scanner) Peek() (c byte, ok bool) {
	s.WS()
	if s.i >= len(s.b) {
		return 0, false
	}
	return s.b[s.i], true
}

// Accept consumes c if it is the next byte after whitespace.
func (s *Scanner) Accept(c byte) bool {
	if next, ok := s.Peek(); ok && next == c {
		s.i++
		return true
	}
	return false
}

// AtEnd reports whether only whitespace is left.
func (s *Scanner) AtEnd() bool {
	s.WS()
	return s.i == len(s.b)
}

// WS skips whitespace.
func (s *Scanner) WS() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Expect consumes c after whitespace, or fails.
func (s *Scanner) Expect(c byte) error {
	s.WS()
	if s.i >= len(s.b) || s.b[s.i] != c {
		return fmt.Errorf("%w: expected %q at offset %d", ErrSyntax, c, s.i)
	}
	s.i++
	return nil
}

// Str reads a JSON string and returns its contents, unescaped. The result
// aliases the frame when it has no escapes.
func (s *Scanner) Str() ([]byte, error) {
	if err := s.Expect('"'); err != nil {
		return nil, err
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			return out, nil
		case c == '\\':
			return s.strSlow(start)
		case c < 0x20:
			return nil, fmt.Errorf("%w: control character in string at offset %d", ErrSyntax, s.i)
		}
		s.i++
	}
	return nil, fmt.Errorf("%w: unterminated string", ErrSyntax)
}

func (s *Scanner) strSlow(start int) ([]byte, error) {
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return out, nil
		case c < 0x20:
			return nil, fmt.Errorf("%w: control character in string at offset %d", ErrSyntax, s.i)
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			break
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := s.hex4()
			if err != nil {
				return nil, err
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					s.i += 2
					lo, err := s.hex4()
					if err != nil {
						return nil, err
					}
					r2 = utf16.DecodeRune(r, lo)
				}
				r = r2
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, fmt.Errorf("%w: bad escape \\%c", ErrSyntax, e)
		}
	}
	return nil, fmt.Errorf("%w: unterminated string", ErrSyntax)
}

func (s *Scanner) hex4() (rune, error) {
	if s.i+4 > len(s.b) {
		return 0, fmt.Errorf("%w: short \\u escape", ErrSyntax)
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: bad \\u escape", ErrSyntax)
	}
	s.i += 4
	return rune(v), nil
}

// Uint reads a non-negative integer without sign, fraction or exponent.
func (s *Scanner) Uint() (uint64, error) {
	s.WS()
	start := s.i
	var v uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, fmt.Errorf("%w: integer overflow at offset %d", ErrSyntax, start)
		}
		v = v*10 + d
		s.i++
	}
	if s.i == start || (s.b[start] == '0' && s.i-start > 1) {
		return 0, fmt.Errorf("%w: expected an integer at offset %d", ErrSyntax, start)
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, fmt.Errorf("%w: expected an integer at offset %d", ErrSyntax, start)
	}
	return v, nil
}

// Int reads an integer without fraction or exponent that fits an int64.
func (s *Scanner) Int() (int64, error) {
	s.WS()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	u, err := s.Uint()
	if err != nil {
		return 0, err
	}
	if neg {
		if u > 1<<63 {
			return 0, fmt.Errorf("%w: integer overflow", ErrSyntax)
		}
		return -int64(u), nil
	}
	if u > 1<<63-1 {
		return 0, fmt.Errorf("%w: integer overflow", ErrSyntax)
	}
	return int64(u), nil
}

// Skip passes over one JSON value of any kind and returns its raw bytes.
func (s *Scanner) Skip() ([]byte, error) {
	s.WS()
	if s.i >= len(s.b) {
		return nil, fmt.Errorf("%w: value expected at end", ErrSyntax)
	}
	start := s.i
	switch c := s.b[s.i]; {
	case c == '"':
		if _, err := s.Str(); err != nil {
			return nil, err
		}
	case c == '{' || c == '[':
		if err := s.skipNested(); err != nil {
			return nil, err
		}
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return s.b[start:s.i], nil
			}
		}
		return nil, fmt.Errorf("%w: bad literal at offset %d", ErrSyntax, s.i)
	case c == '-' || (c >= '0' && c <= '9'):
		s.i++
		for s.i < len(s.b) && (s.b[s.i] >= '0' && s.b[s.i] <= '9' || s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E' || s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
	default:
		return nil, fmt.Errorf("%w: unexpected %q at offset %d", ErrSyntax, c, s.i)
	}
	return s.b[start:s.i], nil
}

// skipNested passes over an object or array, checking its structure.
func (s *Scanner) skipNested() error {
	if s.depth >= MaxDepth {
		return fmt.Errorf("%w: nested more than %d deep at offset %d", ErrSyntax, MaxDepth, s.i)
	}
	s.depth++
	defer func() { s.depth-- }()
	open := s.b[s.i]
	closing := byte('}')
	if open == '[' {
		closing = ']'
	}
	s.i++
	s.WS()
	if s.i < len(s.b) && s.b[s.i] == closing {
		s.i++
		return nil
	}
	for {
		if open == '{' {
			if _, err := s.Str(); err != nil {
				return err
			}
			if err := s.Expect(':'); err != nil {
				return err
			}
		}
		if _, err := s.Skip(); err != nil {
			return err
		}
		s.WS()
		if s.i >= len(s.b) {
			return fmt.Errorf("%w: unterminated %c", ErrSyntax, open)
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case closing:
			s.i++
			return nil
		default:
			return fmt.Errorf("%w: unexpected %q at offset %d", ErrSyntax, s.b[s.i], s.i)
		}
	}
}
