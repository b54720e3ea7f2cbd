package session

import (
	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/internal/jsonscan"
)

// decodeActionFast decodes the frame every acting client sends many times a
// second, an action, without encoding/json: a flat object with exactly the
// members type ("action"), cseq (a positive integer), kind and target
// (strings of printable ASCII), in any order, each once. It reports ok
// false for anything else (another type, other members, a bad cseq,
// non-ASCII text, a repeated member, ...), and decodeFrame then takes the
// full path, which alone skips unknown members (checking that they are
// JSON) and words the errors. When ok, the frame equals the full path's.
func decodeActionFast(data []byte) (f clientFrame, ok bool) {
	var s jsonscan.Scanner
	s.Reset(data)
	if s.Expect('{') != nil {
		return clientFrame{}, false
	}
	const haveType, haveCSeq, haveKind, haveTarget = 1, 2, 4, 8
	var have int
	for {
		key, err := s.Str()
		if err != nil || s.Expect(':') != nil {
			return clientFrame{}, false
		}
		var bit int
		switch string(key) {
		case "type":
			v, err := s.Str()
			if err != nil || string(v) != typeAction {
				return clientFrame{}, false
			}
			bit = haveType
		case "cseq":
			n, err := s.Uint()
			if err != nil || n == 0 {
				return clientFrame{}, false
			}
			f.CSeq, bit = n, haveCSeq
		case "kind":
			v, err := s.Str()
			if err != nil || !printableASCII(v) {
				return clientFrame{}, false
			}
			f.Kind, bit = word(v), haveKind
		case "target":
			v, err := s.Str()
			if err != nil || !printableASCII(v) {
				return clientFrame{}, false
			}
			f.Target, bit = word(v), haveTarget
		default:
			return clientFrame{}, false // other members: the full path checks and skips them
		}
		if have&bit != 0 {
			return clientFrame{}, false // a repeated member: the full path refuses it
		}
		have |= bit
		if s.Accept('}') {
			break
		}
		if !s.Accept(',') {
			return clientFrame{}, false
		}
	}
	if have != haveType|haveCSeq|haveKind|haveTarget || !s.AtEnd() {
		return clientFrame{}, false
	}
	f.Type = typeAction
	return f, true
}

// printableASCII reports whether v decodes the same in encoding/json as
// in jsonscan: printable ASCII (jsonscan passes other bytes through where
// encoding/json would put U+FFFD).
func printableASCII(v []byte) bool {
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
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
