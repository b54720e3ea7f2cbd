package sequencer

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/lasthit/lasthit/gamestate"
)

// Sizing of a fresh event buffer, so the common frame fits in one
// allocation: the fixed text and numbers of the head, plus room for the
// game's result.
const (
	headRoom   = 128
	resultRoom = 80
)

// appendEventHead appends the event frame up to and including `"result":`;
// the game's result and a closing brace complete it. Field order is fixed,
// so the bytes are canonical.
func appendEventHead(dst []byte, e *gamestate.Entry) []byte {
	dst = append(dst, `{"type":"event","seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"at":`...)
	dst = strconv.AppendInt(dst, e.At, 10)
	dst = append(dst, `,"player":`...)
	dst = gamestate.AppendJSONString(dst, e.Player)
	dst = append(dst, `,"cseq":`...)
	dst = strconv.AppendUint(dst, e.CSeq, 10)
	dst = append(dst, `,"kind":`...)
	dst = gamestate.AppendJSONString(dst, e.Kind)
	dst = append(dst, `,"target":`...)
	dst = gamestate.AppendJSONString(dst, e.Target)
	return append(dst, `,"result":`...)
}

// eventSlab carves event frames out of larger buffers, so encoding an
// event costs a fraction of an allocation. A frame is immutable once made
// (capacity clipped to its length), and a slab is freed by the GC once no
// frame in it is referenced any more (log window, outboxes).
type eventSlab struct {
	buf  []byte
	size int
}

// minSlabFree is the free space below which a new slab is started: more
// than any common frame needs, so frames rarely outgrow their slab.
const minSlabFree = headRoom + resultRoom + 256

// encode applies e to game and returns the complete event frame.
func (s *eventSlab) encode(game gamestate.Game, e *gamestate.Entry) []byte {
	if cap(s.buf)-len(s.buf) < minSlabFree+len(e.Player)+len(e.Kind)+len(e.Target) {
		s.buf = make([]byte, 0, s.size)
	}
	start := len(s.buf)
	b := appendEventHead(s.buf, e)
	b = game.Apply(e, b)
	b = append(b, '}')
	s.buf = b
	// If the frame outgrew the slab, b is a new array holding it; either way
	// the frame is b[start:].
	return b[start:len(b):len(b)]
}

// Event is a decoded event frame.
type Event struct {
	Type   string          `json:"type"`
	Seq    uint64          `json:"seq"`
	At     int64           `json:"at"`
	Player string          `json:"player"`
	CSeq   uint64          `json:"cseq"`
	Kind   string          `json:"kind"`
	Target string          `json:"target"`
	Result json.RawMessage `json:"result"`
}

// Entry returns the entry the event records.
func (ev *Event) Entry() gamestate.Entry {
	return gamestate.Entry{Seq: ev.Seq, At: ev.At, Player: ev.Player, CSeq: ev.CSeq, Kind: ev.Kind, Target: ev.Target}
}

// DecodeEvent parses an event frame as the sequencer writes it. Result
// aliases frame.
func DecodeEvent(frame []byte) (Event, error) {
	var s scanner
	return s.event(frame)
}

// event decodes and checks the fields every event has.
func (s *scanner) event(frame []byte) (Event, error) {
	ev, err := s.decodeEvent(frame)
	if err != nil {
		return Event{}, fmt.Errorf("sequencer: decode event: %w", err)
	}
	if ev.Type != "event" {
		return Event{}, fmt.Errorf("sequencer: decode event: type %q, want \"event\"", ev.Type)
	}
	if ev.Seq == 0 || len(ev.Result) == 0 {
		return Event{}, fmt.Errorf("sequencer: decode event: missing seq or result")
	}
	return ev, nil
}
