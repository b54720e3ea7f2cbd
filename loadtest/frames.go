package loadtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Frame types of PROTOCOL.md.
const (
	frameWelcome  = "welcome"
	frameEvent    = "event"
	frameAck      = "ack"
	frameReject   = "reject"
	frameError    = "error"
	frameRedirect = "redirect"
	framePong     = "pong"
)

// Baron's words in results (PROTOCOL.md, "Reference game").
const (
	kindAttack       = "attack"
	kindSmite        = "smite"
	kindRespawn      = "respawn"
	reasonTargetDead = "target_dead"
	// noHP marks a result without baron_hp. Not -1: a Baron taken one
	// point below zero is a bug the checks must see as a hit.
	noHP = math.MinInt64
)

// Codes of error and reject frames whose answer is to wait and retry.
const (
	codeBusy        = "busy"
	codeRateLimited = "rate_limited"
	codeUnavailable = "unavailable"
	codeRoomFull    = "room_full"
)

// serverFrame is any frame the server sends, decoded. Fields a type does not
// use stay zero.
type serverFrame struct {
	Type string `json:"type"`

	// welcome, event, ack
	Seq uint64 `json:"seq"`
	// welcome
	Room  string          `json:"room"`
	Epoch uint64          `json:"epoch"`
	State json.RawMessage `json:"state"`
	// event
	At     int64  `json:"at"`
	Player string `json:"player"`
	CSeq   uint64 `json:"cseq"` // also ack and reject
	Kind   string `json:"kind"`
	Target string `json:"target"`
	Result result `json:"result"`
	// ack
	Dup bool `json:"dup"`
	// reject, error
	Code    string `json:"code"`
	Message string `json:"message"`
	// redirect
	URL string `json:"url"`
	// pong
	T int64 `json:"t"`
}

// result holds the parts of a Baron result the checks read. BaronHP is
// noHP when the result has none (join, leave, refusals).
type result struct {
	Damage  int64  `json:"damage"`
	BaronHP int64  `json:"baron_hp"`
	LastHit bool   `json:"last_hit"`
	Reason  string `json:"reason"`
}

// isHit reports whether the result is damage dealt to a living Baron.
func (r *result) isHit() bool { return r.Reason == "" && r.BaronHP != noHP }

// decodeFrameJSON parses one server text frame with encoding/json: the
// fallback of frameDecoder's fast path, and the reference it must match.
func decodeFrameJSON(data []byte, f *serverFrame) error {
	*f = serverFrame{Result: result{BaronHP: noHP}}
	if err := json.Unmarshal(data, f); err != nil {
		// %v, not %w: the error must not keep data, which the read pump
		// reuses for the next frame.
		return fmt.Errorf("frame is not a JSON object: %v", err)
	}
	return f.check()
}

// check reports what PROTOCOL.md requires of a decoded frame and it lacks.
func (f *serverFrame) check() error {
	switch f.Type {
	case "":
		return fmt.Errorf("frame has no type")
	case frameEvent:
		if f.Seq == 0 {
			return fmt.Errorf("event without seq")
		}
	case frameAck:
		if f.Seq == 0 || f.CSeq == 0 {
			return fmt.Errorf("ack without seq or cseq")
		}
	}
	return nil
}

// hasState reports whether a welcome carries the state (and so no history).
func (f *serverFrame) hasState() bool {
	s := bytes.TrimSpace(f.State)
	return len(s) > 0 && !bytes.Equal(s, []byte("null"))
}

// baronView is what the checks read of a welcome's state.
type baronView struct {
	HP    *int64 `json:"baron_hp"`
	Alive *bool  `json:"alive"`
}

// welcomeBaron returns Baron's HP and life from a welcome's state, ok false
// when the state does not say (another game).
func welcomeBaron(state json.RawMessage) (hp int64, alive, ok bool) {
	var v baronView
	if json.Unmarshal(state, &v) != nil || v.HP == nil {
		return 0, false, false
	}
	alive = *v.HP > 0
	if v.Alive != nil {
		alive = *v.Alive
	}
	return *v.HP, alive, true
}

// Client frames. Names are validated by Config (run id) and fixed strings,
// so they need no escaping; the token goes through encoding/json.

type helloFrame struct {
	Type  string `json:"type"`
	Room  string `json:"room"`
	Token string `json:"token"`
	Since uint64 `json:"since"`
}

func encodeHello(room, token string, since uint64) []byte {
	// Marshal cannot fail on strings and an integer.
	b, _ := json.Marshal(helloFrame{Type: "hello", Room: room, Token: token, Since: since})
	return b
}

func appendAction(dst []byte, cseq uint64) []byte {
	dst = append(dst, `{"type":"action","cseq":`...)
	dst = strconv.AppendUint(dst, cseq, 10)
	return append(dst, `,"kind":"attack","target":"baron"}`...)
}

func appendPing(dst []byte, t int64) []byte {
	dst = append(dst, `{"type":"ping","t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	return append(dst, '}')
}
