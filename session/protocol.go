package session

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/internal/jsonscan"
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
	// BadField, for an action with a valid cseq, says why its other fields
	// are refused: the session answers it with reject bad_request and the
	// cseq, never an error.
	BadField string
	// ping: the JSON number to echo, or nil
	T json.RawMessage
}

// The members decodeFrameFull reads. A name matches only exactly (after
// JSON unescaping), never by case folding, and only the fields of the
// frame's own type are checked: every other member is an unknown field,
// ignored once the frame is known to be valid JSON.
const (
	fieldType = iota
	fieldRoom
	fieldToken
	fieldSince
	fieldCSeq
	fieldKind
	fieldTarget
	fieldT
	numFields
)

var fieldNames = [numFields]string{"type", "room", "token", "since", "cseq", "kind", "target", "t"}

// members holds the raw value and the count of each field of any type.
type members struct {
	raw [numFields][]byte
	n   [numFields]int
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
	return decodeFrameFull(data)
}

// decodeFrameFull is decodeFrame's full path: any frame, any member
// order, every error worded. A field named twice is refused (README,
// Protocol choices), as an error, or for an action with a valid cseq as
// BadField.
func decodeFrameFull(data []byte) (clientFrame, *protoError) {
	if !json.Valid(data) {
		return clientFrame{}, badRequest("frame is not valid JSON")
	}
	m, ok := readMembers(data)
	if !ok {
		return clientFrame{}, badRequest("frame must be one JSON object")
	}
	typ, perr := m.str(fieldType)
	if perr != nil {
		return clientFrame{}, perr
	}
	if typ == "" {
		return clientFrame{}, badRequest("field type: required")
	}
	f := clientFrame{Type: typ}
	switch f.Type {
	case typeHello:
		if f.Room, perr = m.str(fieldRoom); perr != nil {
			return clientFrame{}, perr
		}
		if isNull(m.raw[fieldRoom]) {
			return clientFrame{}, badRequest("field room: required")
		}
		if f.Token, perr = m.str(fieldToken); perr != nil {
			return clientFrame{}, perr
		}
		if !validName(f.Room) {
			return clientFrame{}, badRequest("field room: must be 1-64 characters of [A-Za-z0-9_.-]")
		}
		if m.n[fieldSince] > 1 {
			return clientFrame{}, m.repeated(fieldSince)
		}
		if raw := m.raw[fieldSince]; !isNull(raw) {
			since, ok := parseUint(raw)
			if !ok {
				return clientFrame{}, badRequest("field since: must be a non-negative integer")
			}
			f.Since = since
		}
	case typeAction:
		if m.n[fieldCSeq] > 1 {
			return clientFrame{}, m.repeated(fieldCSeq)
		}
		cseq, ok := parseUint(m.raw[fieldCSeq])
		if !ok || cseq == 0 {
			return clientFrame{}, badRequest(msgCSeq)
		}
		f.CSeq = cseq
		// From here on the action is answered with its cseq.
		if f.Kind, perr = m.str(fieldKind); perr == nil {
			f.Target, perr = m.str(fieldTarget)
		}
		if perr != nil {
			f.Kind, f.Target, f.BadField = "", "", perr.Message
		}
	case typePing:
		if m.n[fieldT] > 1 {
			return clientFrame{}, m.repeated(fieldT)
		}
		if raw := m.raw[fieldT]; !isNull(raw) {
			if !isNumber(raw) {
				return clientFrame{}, badRequest("field t: must be a number")
			}
			f.T = append(json.RawMessage(nil), raw...)
		}
	default:
		return clientFrame{}, badRequest("unknown type %q", truncate(f.Type, 32))
	}
	return f, nil
}

// readMembers collects the fields of a frame that json.Valid accepted;
// ok false if it is not an object.
func readMembers(data []byte) (m members, ok bool) {
	var s jsonscan.Scanner
	s.Reset(data)
	if !s.Accept('{') {
		return m, false
	}
	if s.Accept('}') {
		return m, true
	}
	for {
		key, err := s.Str()
		if err != nil || s.Expect(':') != nil {
			return m, false // not reached after json.Valid
		}
		raw, err := s.Skip()
		if err != nil {
			return m, false // not reached after json.Valid
		}
		for i := range fieldNames {
			if string(key) == fieldNames[i] {
				m.raw[i] = raw
				m.n[i]++
				break
			}
		}
		if !s.Accept(',') {
			return m, true
		}
	}
}

func (m *members) repeated(i int) *protoError {
	return badRequest("field %s: appears more than once", fieldNames[i])
}

// str decodes field i as a string, as encoding/json would (invalid UTF-8
// becomes U+FFFD); absent or null is "".
func (m *members) str(i int) (string, *protoError) {
	if m.n[i] > 1 {
		return "", m.repeated(i)
	}
	raw := m.raw[i]
	if isNull(raw) {
		return "", nil
	}
	if raw[0] != '"' {
		return "", badRequest("field %s: must be a string", fieldNames[i])
	}
	if v := raw[1 : len(raw)-1]; printableASCII(v) && bytes.IndexByte(v, '\\') < 0 {
		return word(v), nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", badRequest("field %s: must be a string", fieldNames[i]) // not reached after json.Valid
	}
	return v, nil
}

func isNull(raw []byte) bool { return len(raw) == 0 || string(raw) == "null" }

// parseUint accepts a JSON integer literal: digits only, no sign, fraction
// or exponent, within uint64.
func parseUint(raw []byte) (uint64, bool) {
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	return n, err == nil
}

// isNumber reports whether raw (already valid JSON) is a number literal.
func isNumber(raw []byte) bool {
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cutUTF8(s, n) + "…"
}

// cutUTF8 returns at most the first n bytes of s, cut where a character
// starts: a close frame's reason must be valid UTF-8 (RFC 6455), or the
// client fails the connection instead of reading the close code.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
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
