package session

import (
	"bytes"

	"github.com/lasthit/lasthit/gamestate"
)

// decodeActionFast decodes the frame every acting client sends many times a
// second, an action, without encoding/json: a flat object with exactly the
// members type ("action"), cseq (a positive integer), kind and target
// (plain strings), in any order, each once, with optional whitespace. It
// reports ok false for anything else (another type, escapes, other
// members, a bad cseq, ...), and decodeFrame then takes the full path, which
// alone words the error. When ok, the frame equals the full path's.
func decodeActionFast(data []byte) (f clientFrame, ok bool) {
	s := scanner{b: data}
	if !s.byte('{') {
		return clientFrame{}, false
	}
	const haveType, haveCSeq, haveKind, haveTarget = 1, 2, 4, 8
	var have int
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return clientFrame{}, false
		}
		var bit int
		switch string(key) {
		case "type":
			v, ok := s.str()
			if !ok || string(v) != typeAction {
				return clientFrame{}, false
			}
			bit = haveType
		case "cseq":
			n, ok := s.uint()
			if !ok || n == 0 {
				return clientFrame{}, false
			}
			f.CSeq, bit = n, haveCSeq
		case "kind":
			v, ok := s.str()
			if !ok {
				return clientFrame{}, false
			}
			f.Kind, bit = word(v), haveKind
		case "target":
			v, ok := s.str()
			if !ok {
				return clientFrame{}, false
			}
			f.Target, bit = word(v), haveTarget
		default:
			return clientFrame{}, false
		}
		if have&bit != 0 {
			return clientFrame{}, false // a repeated member: the full path decides
		}
		have |= bit
		if s.byte('}') {
			break
		}
		if !s.byte(',') {
			return clientFrame{}, false
		}
	}
	if have != haveType|haveCSeq|haveKind|haveTarget || s.skipSpace() != len(data) {
		return clientFrame{}, false
	}
	f.Type = typeAction
	return f, true
}

// word returns v as a string, without allocating for the words of the
// reference game.
func word(v []byte) string {
	switch string(v) {
	case gamestate.KindAttack:
		return gamestate.KindAttack
	case gamestate.KindSmite:
		return gamestate.KindSmite
	case gamestate.TargetBaron:
		return gamestate.TargetBaron
	}
	return string(v)
}

// scanner reads the few JSON tokens decodeActionFast accepts.
type scanner struct {
	b []byte
	i int
}

// skipSpace skips JSON whitespace and returns the new position.
func (s *scanner) skipSpace() int {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return s.i
		}
	}
	return s.i
}

// byte consumes c after optional whitespace.
func (s *scanner) byte(c byte) bool {
	if s.skipSpace() < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str consumes a string of printable ASCII without escapes and returns its
// contents (aliasing the input).
func (s *scanner) str() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	end := bytes.IndexByte(s.b[s.i:], '"')
	if end < 0 {
		return nil, false
	}
	v := s.b[s.i : s.i+end]
	for _, c := range v {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return nil, false
		}
	}
	s.i += end + 1
	return v, true
}

// uint consumes a JSON integer without sign, fraction or exponent that
// fits in a uint64.
func (s *scanner) uint() (uint64, bool) {
	start := s.skipSpace()
	var n uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
		s.i++
	}
	digits := s.i - start
	if digits == 0 || (digits > 1 && s.b[start] == '0') {
		return 0, false // none, or a leading zero (not JSON)
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return n, true
}
