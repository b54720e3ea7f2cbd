package sequencer

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small, strict scanner for event frames. Replay decodes every entry of a
// log; encoding/json's reflection made that the bottleneck. It accepts any
// JSON object (unknown fields are skipped, field order is free) and keeps
// Result as the raw bytes of the frame, so a replay compares results byte
// for byte.

var errSyntax = errors.New("invalid JSON")

type scanner struct {
	b []byte
	i int
	// intern keeps one copy of each player, kind and target string: a log
	// repeats a few of them millions of times.
	intern map[string]string
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) expect(c byte) error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != c {
		return fmt.Errorf("%w: expected %q at offset %d", errSyntax, c, s.i)
	}
	s.i++
	return nil
}

// str reads a JSON string and returns its contents, unescaped. The result
// aliases the frame when it has no escapes.
func (s *scanner) str() ([]byte, error) {
	if err := s.expect('"'); err != nil {
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
			return nil, fmt.Errorf("%w: control character in string at offset %d", errSyntax, s.i)
		}
		s.i++
	}
	return nil, fmt.Errorf("%w: unterminated string", errSyntax)
}

func (s *scanner) strSlow(start int) ([]byte, error) {
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return out, nil
		case c < 0x20:
			return nil, fmt.Errorf("%w: control character in string at offset %d", errSyntax, s.i)
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
			return nil, fmt.Errorf("%w: bad escape \\%c", errSyntax, e)
		}
	}
	return nil, fmt.Errorf("%w: unterminated string", errSyntax)
}

func (s *scanner) hex4() (rune, error) {
	if s.i+4 > len(s.b) {
		return 0, fmt.Errorf("%w: short \\u escape", errSyntax)
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: bad \\u escape", errSyntax)
	}
	s.i += 4
	return rune(v), nil
}

func (s *scanner) internStr() (string, error) {
	b, err := s.str()
	if err != nil {
		return "", err
	}
	if v, ok := s.intern[string(b)]; ok {
		return v, nil
	}
	v := string(b)
	if s.intern != nil && len(s.intern) < 4096 {
		s.intern[v] = v
	}
	return v, nil
}

// uint reads a non-negative integer without sign, fraction or exponent.
func (s *scanner) uint() (uint64, error) {
	s.ws()
	start := s.i
	var v uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, fmt.Errorf("%w: integer overflow at offset %d", errSyntax, start)
		}
		v = v*10 + d
		s.i++
	}
	if s.i == start || (s.b[start] == '0' && s.i-start > 1) {
		return 0, fmt.Errorf("%w: expected an integer at offset %d", errSyntax, start)
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, fmt.Errorf("%w: expected an integer at offset %d", errSyntax, start)
	}
	return v, nil
}

func (s *scanner) int() (int64, error) {
	s.ws()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	u, err := s.uint()
	if err != nil {
		return 0, err
	}
	if neg {
		if u > 1<<63 {
			return 0, fmt.Errorf("%w: integer overflow", errSyntax)
		}
		return -int64(u), nil
	}
	if u > 1<<63-1 {
		return 0, fmt.Errorf("%w: integer overflow", errSyntax)
	}
	return int64(u), nil
}

// skip passes over one JSON value of any kind and returns its raw bytes.
func (s *scanner) skip() ([]byte, error) {
	s.ws()
	if s.i >= len(s.b) {
		return nil, fmt.Errorf("%w: value expected at end", errSyntax)
	}
	start := s.i
	switch c := s.b[s.i]; {
	case c == '"':
		if _, err := s.str(); err != nil {
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
		return nil, fmt.Errorf("%w: bad literal at offset %d", errSyntax, s.i)
	case c == '-' || (c >= '0' && c <= '9'):
		s.i++
		for s.i < len(s.b) && (s.b[s.i] >= '0' && s.b[s.i] <= '9' || s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E' || s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
	default:
		return nil, fmt.Errorf("%w: unexpected %q at offset %d", errSyntax, c, s.i)
	}
	return s.b[start:s.i], nil
}

// skipNested passes over an object or array, checking its structure.
func (s *scanner) skipNested() error {
	open := s.b[s.i]
	closing := byte('}')
	if open == '[' {
		closing = ']'
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == closing {
		s.i++
		return nil
	}
	for {
		if open == '{' {
			if _, err := s.str(); err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
		}
		if _, err := s.skip(); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return fmt.Errorf("%w: unterminated %c", errSyntax, open)
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case closing:
			s.i++
			return nil
		default:
			return fmt.Errorf("%w: unexpected %q at offset %d", errSyntax, s.b[s.i], s.i)
		}
	}
}

// decodeEvent parses one event frame.
func (s *scanner) decodeEvent(frame []byte) (Event, error) {
	s.b, s.i = frame, 0
	var ev Event
	if err := s.expect('{'); err != nil {
		return ev, err
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
	} else {
		for {
			key, err := s.str()
			if err != nil {
				return ev, err
			}
			if err := s.expect(':'); err != nil {
				return ev, err
			}
			if err := s.field(&ev, key); err != nil {
				return ev, fmt.Errorf("field %s: %w", key, err)
			}
			s.ws()
			if s.i < len(s.b) && s.b[s.i] == ',' {
				s.i++
				continue
			}
			if err := s.expect('}'); err != nil {
				return ev, err
			}
			break
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return ev, fmt.Errorf("%w: data after the object at offset %d", errSyntax, s.i)
	}
	return ev, nil
}

func (s *scanner) field(ev *Event, key []byte) error {
	var err error
	switch string(key) {
	case "type":
		ev.Type, err = s.internStr()
	case "seq":
		ev.Seq, err = s.uint()
	case "at":
		ev.At, err = s.int()
	case "player":
		ev.Player, err = s.internStr()
	case "cseq":
		ev.CSeq, err = s.uint()
	case "kind":
		ev.Kind, err = s.internStr()
	case "target":
		ev.Target, err = s.internStr()
	case "result":
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '{' {
			return fmt.Errorf("%w: result must be an object", errSyntax)
		}
		ev.Result, err = s.skip()
	default:
		_, err = s.skip()
	}
	return err
}
