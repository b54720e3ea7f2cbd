package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/sequencer"
)

// Codes of error and reject frames that the session adds to the
// sequencer's (PROTOCOL.md, "Joining" and "Acting").
const (
	CodeUnauthorized sequencer.Code = "unauthorized"
	CodeRoomFull     sequencer.Code = "room_full"
	CodeRateLimited  sequencer.Code = "rate_limited"
)

// Close codes (PROTOCOL.md, "Errors and closes").
const (
	CloseNormal       = 1000 // also: replaced by a newer connection of the same player
	CloseGoingAway    = 1001 // server shutting down, or the room stopped
	ClosePolicy       = 1008 // auth, bad hello, repeated bad frames
	CloseTooBig       = 1009
	CloseServerError  = 1011
	CloseRedirect     = 1012
	CloseTryLater     = 1013 // room full, unavailable, too many connections
	CloseSlowConsumer = 4000
)

// Client frame types.
const (
	typeHello  = "hello"
	typeAction = "action"
	typePing   = "ping"
)

// clientFrame is a decoded, validated client frame.
type clientFrame struct {
	Type string
	// hello
	Room  string
	Token string
	Since uint64
	// action
	CSeq   uint64
	Kind   string
	Target string
	// ping: the JSON number to echo, or nil
	T json.RawMessage
}

// wireFrame is what encoding/json sees. Numbers stay raw so that a cseq
// of 1.5, -1 or "3" is told apart from a missing one and answered with the
// field's name.
type wireFrame struct {
	Type   *string         `json:"type"`
	Room   *string         `json:"room"`
	Token  string          `json:"token"`
	Since  json.RawMessage `json:"since"`
	CSeq   json.RawMessage `json:"cseq"`
	Kind   string          `json:"kind"`
	Target string          `json:"target"`
	T      json.RawMessage `json:"t"`
}

// protoError is a frame the server answers with an error frame.
type protoError struct {
	Code    sequencer.Code
	Message string
}

func (e *protoError) Error() string { return string(e.Code) + ": " + e.Message }

func badRequest(format string, args ...any) *protoError {
	return &protoError{Code: sequencer.CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

const msgCSeq = "field cseq: must be a positive integer"

// decodeFrame parses one client text frame. Every input yields either a
// frame of a known type whose fields are valid for that type, or a
// protoError (always bad_request). It never panics.
func decodeFrame(data []byte) (clientFrame, *protoError) {
	if f, ok := decodeActionFast(data); ok {
		return f, nil
	}
	return decodeFrameJSON(data)
}

// decodeFrameJSON is decodeFrame's full path, through encoding/json.
func decodeFrameJSON(data []byte) (clientFrame, *protoError) {
	var w wireFrame
	if err := json.Unmarshal(data, &w); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return clientFrame{}, badRequest("frame must be one JSON object")
		case errors.As(err, &te):
			return clientFrame{}, badRequest("field %s: must be a %s", te.Field, wantKind(te.Field))
		default:
			return clientFrame{}, badRequest("frame is not valid JSON")
		}
	}
	if w.Type == nil || *w.Type == "" {
		return clientFrame{}, badRequest("field type: required")
	}
	f := clientFrame{Type: *w.Type}
	switch f.Type {
	case typeHello:
		if w.Room == nil {
			return clientFrame{}, badRequest("field room: required")
		}
		f.Room, f.Token = *w.Room, w.Token
		if !validName(f.Room) {
			return clientFrame{}, badRequest("field room: must be 1-64 characters of [A-Za-z0-9_.-]")
		}
		if isNull(w.Since) {
			break
		}
		since, ok := parseUint(w.Since)
		if !ok {
			return clientFrame{}, badRequest("field since: must be a non-negative integer")
		}
		f.Since = since
	case typeAction:
		cseq, ok := parseUint(w.CSeq)
		if !ok || cseq == 0 {
			return clientFrame{}, badRequest(msgCSeq)
		}
		f.CSeq, f.Kind, f.Target = cseq, w.Kind, w.Target
	case typePing:
		if !isNull(w.T) {
			if !isNumber(w.T) {
				return clientFrame{}, badRequest("field t: must be a number")
			}
			f.T = w.T
		}
	default:
		return clientFrame{}, badRequest("unknown type %q", truncate(f.Type, 32))
	}
	return f, nil
}

func wantKind(field string) string {
	switch field {
	case "type", "room", "token", "kind", "target":
		return "string"
	}
	return "valid value"
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// parseUint accepts a JSON integer literal: digits only, no sign, fraction
// or exponent, within uint64.
func parseUint(raw json.RawMessage) (uint64, bool) {
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	return n, err == nil
}

// isNumber reports whether raw (already valid JSON) is a number literal.
func isNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// validName reports whether s is 1-64 characters of [A-Za-z0-9_.-]: the
// rule for room names (PROTOCOL.md), which player ids follow too.
func validName(s string) bool { return queue.ValidRoom(s) }

// Server frames. Field order is fixed; strings go through
// gamestate.AppendJSONString, which escapes everything JSON requires.

func encodeWelcome(room, player string, w sequencer.Welcome, withState bool) []byte {
	b := make([]byte, 0, 96+len(room)+len(player)+len(w.State))
	b = append(b, `{"type":"welcome","room":`...)
	b = gamestate.AppendJSONString(b, room)
	b = append(b, `,"player":`...)
	b = gamestate.AppendJSONString(b, player)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, w.Seq, 10)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendUint(b, w.Epoch, 10)
	if withState {
		b = append(b, `,"state":`...)
		if state := bytes.TrimSpace(w.State); len(state) > 0 {
			b = append(b, state...)
		} else {
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}

func encodeAck(a sequencer.Ack) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"type":"ack","cseq":`...)
	b = strconv.AppendUint(b, a.CSeq, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, a.Seq, 10)
	if a.Dup {
		b = append(b, `,"dup":true`...)
	}
	return append(b, '}')
}

func encodeReject(r sequencer.Reject) []byte {
	b := make([]byte, 0, 64+len(r.Message))
	b = append(b, `{"type":"reject","cseq":`...)
	b = strconv.AppendUint(b, r.CSeq, 10)
	b = append(b, `,"code":`...)
	b = gamestate.AppendJSONString(b, string(r.Code))
	b = append(b, `,"message":`...)
	b = gamestate.AppendJSONString(b, r.Message)
	return append(b, '}')
}

func encodeError(e *protoError) []byte {
	b := make([]byte, 0, 48+len(e.Message))
	b = append(b, `{"type":"error","code":`...)
	b = gamestate.AppendJSONString(b, string(e.Code))
	b = append(b, `,"message":`...)
	b = gamestate.AppendJSONString(b, e.Message)
	return append(b, '}')
}

// encodePong echoes t (a JSON number from the ping, or nil) and adds the
// server's wall-clock time in ns.
func encodePong(t json.RawMessage, serverNS int64) []byte {
	b := make([]byte, 0, 48+len(t))
	b = append(b, `{"type":"pong"`...)
	if t != nil {
		b = append(b, `,"t":`...)
		b = append(b, t...)
	}
	b = append(b, `,"server":`...)
	b = strconv.AppendInt(b, serverNS, 10)
	return append(b, '}')
}

func encodeRedirect(url string) []byte {
	b := make([]byte, 0, 32+len(url))
	b = append(b, `{"type":"redirect","url":`...)
	b = gamestate.AppendJSONString(b, url)
	return append(b, '}')
}
