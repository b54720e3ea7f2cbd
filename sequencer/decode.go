package sequencer

import (
	"fmt"
	"strings"

	"github.com/lasthit/lasthit/internal/jsonscan"
)

// A small, strict decoder of event frames. Replay decodes every entry of a
// log; encoding/json's reflection made that the bottleneck. It accepts any
// JSON object (unknown fields are skipped, field order is free) and keeps
// Result as the raw bytes of the frame, so a replay compares results byte
// for byte.

type scanner struct {
	jsonscan.Scanner
	// intern keeps one copy of each player, kind and target string: a log
	// repeats a few of them millions of times.
	intern map[string]string
}

func (s *scanner) internStr() (string, error) {
	b, err := s.Str()
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

// decodeEvent parses one event frame.
func (s *scanner) decodeEvent(frame []byte) (Event, error) {
	s.Reset(frame)
	var ev Event
	if err := s.Expect('{'); err != nil {
		return ev, err
	}
	if !s.Accept('}') {
		for {
			key, err := s.Str()
			if err != nil {
				return ev, err
			}
			if err := s.Expect(':'); err != nil {
				return ev, err
			}
			if err := s.field(&ev, key); err != nil {
				return ev, fmt.Errorf("field %s: %w", key, err)
			}
			if s.Accept(',') {
				continue
			}
			if err := s.Expect('}'); err != nil {
				return ev, err
			}
			break
		}
	}
	if !s.AtEnd() {
		return ev, fmt.Errorf("%w: data after the object at offset %d", jsonscan.ErrSyntax, s.Offset())
	}
	return ev, nil
}

func (s *scanner) field(ev *Event, key []byte) error {
	var err error
	switch string(key) {
	case "type":
		ev.Type, err = s.internStr()
	case "seq":
		ev.Seq, err = s.Uint()
	case "at":
		ev.At, err = s.Int()
	case "player":
		ev.Player, err = s.internStr()
	case "cseq":
		ev.CSeq, err = s.Uint()
	case "kind":
		ev.Kind, err = s.internStr()
	case "target":
		ev.Target, err = s.internStr()
	case "result":
		if c, _ := s.Peek(); c != '{' {
			return fmt.Errorf("%w: result must be an object", jsonscan.ErrSyntax)
		}
		ev.Result, err = s.Skip()
	default:
		if foldsToField(key) {
			// encoding/json would read it into that field, ignoring case;
			// events are written in lower case, so it is refused.
			return fmt.Errorf("%w: field name %q is not lower case", jsonscan.ErrSyntax, key)
		}
		_, err = s.Skip()
	}
	return err
}

// eventFields are the JSON names of Event's fields.
var eventFields = [...]string{"type", "seq", "at", "player", "cseq", "kind", "target", "result"}

// foldsToField reports whether key, not one of eventFields, equals one of
// them under Unicode case folding (as encoding/json matches names).
func foldsToField(key []byte) bool {
	for _, f := range eventFields {
		if strings.EqualFold(string(key), f) {
			return true
		}
	}
	return false
}
