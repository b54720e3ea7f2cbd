package sequencer

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/lasthit/lasthit/gamestate"
)

// resultRoom is the room left in a fresh event buffer for the game's
// result, so the common result fits without growing the buffer.
const resultRoom = 72

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

// encodeEvent applies e to game and returns the complete event frame, in
// one allocation for the common sizes.
func encodeEvent(game gamestate.Game, e *gamestate.Entry) []byte {
	size := 96 + len(e.Player) + len(e.Kind) + len(e.Target) + resultRoom
	buf := make([]byte, 0, size)
	buf = appendEventHead(buf, e)
	buf = game.Apply(e, buf)
	return append(buf, '}')
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

// DecodeEvent parses an event frame as the sequencer writes it.
func DecodeEvent(frame []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(frame, &ev); err != nil {
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
