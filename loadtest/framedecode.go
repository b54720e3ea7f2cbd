package loadtest

import "math"

// frameDecoder decodes server frames without encoding/json's reflection
// for the frames the server sends by the thousand (event, ack, reject,
// pong), and through encoding/json for everything else.
//
// The fast path accepts only the subset of JSON it understands in full,
// and on anything else it gives up and decodeFrameJSON decodes the frame,
// so a frame decodes exactly as encoding/json decodes it: same serverFrame,
// same error. The subset: one object; members whose keys are serverFrame's
// (or result's) JSON names exactly, each at most once; strings of printable
// ASCII without escapes; integers (no fraction or exponent) that fit their
// field; true and false; whitespace anywhere JSON allows it; and members
// of other names (which encoding/json ignores) whose values are such
// strings, integers, true, false or null. A key that encoding/json would
// match case-insensitively, a duplicate, an escape, a non-ASCII byte, a
// null, a number with a fraction, a nested value it does not know, and a
// welcome's state all go to encoding/json.
//
// Strings are interned, so decoding allocates nothing once a decoder has
// seen the room's players and words. The strings it returns never alias
// the frame's bytes, which the read pump reuses.
//
// A decoder is used by one goroutine (the read pump of a connection); the
// strings it hands out are immutable and may be kept anywhere.
type frameDecoder struct {
	strs map[string]string // interned strings; nil until the first
}

// Bounds of a decoder's interned strings, so a server sending ever new
// strings cannot grow it: past them, strings are allocated afresh.
const (
	maxInterned    = 512 // players of a room, frame types, kinds, codes
	maxInternedLen = 64  // longer strings (messages, URLs) are not kept
)

// JSON names of serverFrame's and result's fields. A key that is none of
// them exactly, but matches one ignoring case, is one that encoding/json
// would decode into that field: the fast path leaves it to encoding/json.
// TestFrameFieldNames keeps these lists in step with the struct tags.
var (
	frameFieldNames  = []string{"type", "seq", "room", "epoch", "state", "at", "player", "cseq", "kind", "target", "result", "dup", "code", "message", "url", "t"}
	resultFieldNames = []string{"damage", "baron_hp", "last_hit", "reason"}
)

// Bits of the fields seen in an object, to give duplicates to
// encoding/json (which keeps the last, and merges duplicate results).
const (
	sType = 1 << iota
	sSeq
	sRoom
	sEpoch
	sAt
	sPlayer
	sCSeq
	sKind
	sTarget
	sResult
	sDup
	sCode
	sMessage
	sURL
	sT
)

const (
	sDamage = 1 << iota
	sBaronHP
	sLastHit
	sReason
)

// decode parses one server frame into f.
func (d *frameDecoder) decode(data []byte, f *serverFrame) error {
	if !d.decodeFast(data, f) {
		return decodeFrameJSON(data, f)
	}
	return f.check()
}

// decodeFast decodes data into f and reports true if data is in the subset
// of JSON the fast path understands (see frameDecoder); otherwise it
// reports false, leaving f partly filled.
func (d *frameDecoder) decodeFast(data []byte, f *serverFrame) bool {
	*f = serverFrame{Result: result{BaronHP: noHP}}
	p := scanner{b: data}
	var seen uint32
	more, ok := p.objectStart()
	for ok && more {
		var key []byte
		if key, ok = p.key(); !ok {
			return false
		}
		var bit uint32
		switch string(key) {
		case "type":
			bit, ok = sType, d.string(&p, &f.Type)
		case "seq":
			bit, ok = sSeq, p.uint(&f.Seq)
		case "room":
			bit, ok = sRoom, d.string(&p, &f.Room)
		case "epoch":
			bit, ok = sEpoch, p.uint(&f.Epoch)
		case "at":
			bit, ok = sAt, p.int(&f.At)
		case "player":
			bit, ok = sPlayer, d.string(&p, &f.Player)
		case "cseq":
			bit, ok = sCSeq, p.uint(&f.CSeq)
		case "kind":
			bit, ok = sKind, d.string(&p, &f.Kind)
		case "target":
			bit, ok = sTarget, d.string(&p, &f.Target)
		case "result":
			bit, ok = sResult, d.result(&p, &f.Result)
		case "dup":
			bit, ok = sDup, p.bool(&f.Dup)
		case "code":
			bit, ok = sCode, d.string(&p, &f.Code)
		case "message":
			bit, ok = sMessage, d.string(&p, &f.Message)
		case "url":
			bit, ok = sURL, d.string(&p, &f.URL)
		case "t":
			bit, ok = sT, p.int(&f.T)
		default:
			// state, or a key encoding/json would match ignoring case, or
			// one it ignores.
			ok = !matchesFold(key, frameFieldNames) && p.skipScalar()
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		more, ok = p.objectNext()
	}
	return ok && p.end()
}

// result decodes an event's result object.
func (d *frameDecoder) result(p *scanner, r *result) bool {
	var seen uint32
	more, ok := p.objectStart()
	for ok && more {
		var key []byte
		if key, ok = p.key(); !ok {
			return false
		}
		var bit uint32
		switch string(key) {
		case "damage":
			bit, ok = sDamage, p.int(&r.Damage)
		case "baron_hp":
			bit, ok = sBaronHP, p.int(&r.BaronHP)
		case "last_hit":
			bit, ok = sLastHit, p.bool(&r.LastHit)
		case "reason":
			bit, ok = sReason, d.string(p, &r.Reason)
		default: // ok, team, ready_at, …
			ok = !matchesFold(key, resultFieldNames) && p.skipScalar()
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		more, ok = p.objectNext()
	}
	return ok
}

// string decodes a string value into *s.
func (d *frameDecoder) string(p *scanner, s *string) bool {
	b, ok := p.string()
	if ok {
		*s = d.intern(b)
	}
	return ok
}

// intern returns b as a string that does not alias b, the same string for
// the same bytes while the decoder has room for it.
func (d *frameDecoder) intern(b []byte) string {
	if s, ok := d.strs[string(b)]; ok { // no allocation to look up
		return s
	}
	s := string(b)
	if len(s) <= maxInternedLen && len(d.strs) < maxInterned {
		if d.strs == nil {
			d.strs = make(map[string]string)
		}
		d.strs[s] = s
	}
	return s
}

// matchesFold reports whether key, ASCII as the scanner ensures, equals one
// of names (lower-case ASCII) ignoring case, as encoding/json matches an
// ASCII key to a field.
func matchesFold(key []byte, names []string) bool {
	for _, name := range names {
		if len(name) != len(key) {
			continue
		}
		i := 0
		for ; i < len(key); i++ {
			c := key[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != name[i] {
				break
			}
		}
		if i == len(key) {
			return true
		}
	}
	return false
}

// scanner reads the fast path's subset of JSON from b, from offset i on.
// Each method reports false, with i anywhere, when the input is not what
// it handles: the caller then gives the whole frame to encoding/json.
type scanner struct {
	b []byte
	i int
}

// space skips JSON whitespace.
func (p *scanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// objectStart reads an object's '{' and reports whether members follow
// (false: the object was empty, and its '}' is read too).
func (p *scanner) objectStart() (more, ok bool) {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false, false
	}
	p.i++
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return false, true
	}
	return true, true
}

// key reads a member's key and the colon after it. The key aliases b.
func (p *scanner) key() ([]byte, bool) {
	key, ok := p.string()
	if !ok {
		return nil, false
	}
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != ':' {
		return nil, false
	}
	p.i++
	p.space()
	return key, true
}

// objectNext reads what follows a member: ',' (more members) or '}'.
func (p *scanner) objectNext() (more, ok bool) {
	p.space()
	if p.i >= len(p.b) {
		return false, false
	}
	c := p.b[p.i]
	p.i++
	switch c {
	case ',':
		p.space()
		return true, true
	case '}':
		return false, true
	}
	return false, false
}

// end reports whether only whitespace is left.
func (p *scanner) end() bool {
	p.space()
	return p.i == len(p.b)
}

// string reads a string of printable ASCII without escapes and returns
// its contents, which alias b. Control characters (invalid JSON), escapes
// and non-ASCII bytes (which encoding/json may rewrite) are refused.
func (p *scanner) string() ([]byte, bool) {
	b := p.b
	if p.i >= len(b) || b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	for i := start; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			p.i = i + 1
			return b[start:i], true
		case c < 0x20, c == '\\', c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// digits reads the digits of a JSON integer and returns their value. It
// refuses no digits, a leading zero (invalid JSON), more than a uint64
// holds, and a fraction or exponent after the digits (which encoding/json
// refuses for an integer field, or which is invalid JSON).
func (p *scanner) digits() (uint64, bool) {
	b := p.b
	start := p.i
	var n uint64
	i := start
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			break
		}
		// Up to 19 digits always fit; a 20th may not; a 21st never does.
		if i-start >= 19 && (i-start >= 20 || n > (math.MaxUint64-uint64(c))/10) {
			return 0, false
		}
		n = n*10 + uint64(c)
	}
	switch {
	case i == start, b[start] == '0' && i-start > 1:
		return 0, false
	case i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E'):
		return 0, false
	}
	p.i = i
	return n, true
}

// uint reads an unsigned integer into *v: no sign, as encoding/json wants
// for an unsigned field.
func (p *scanner) uint(v *uint64) bool {
	n, ok := p.digits()
	if ok {
		*v = n
	}
	return ok
}

// int reads an integer that fits an int64 into *v.
func (p *scanner) int(v *int64) bool {
	neg := p.i < len(p.b) && p.b[p.i] == '-'
	if neg {
		p.i++
	}
	n, ok := p.digits()
	switch {
	case !ok:
		return false
	case neg && n <= 1<<63:
		*v = -int64(n) // 1<<63 wraps to math.MinInt64, as it should
	case !neg && n <= math.MaxInt64:
		*v = int64(n)
	default:
		return false
	}
	return true
}

// bool reads true or false into *v.
func (p *scanner) bool(v *bool) bool {
	switch {
	case p.literal("true"):
		*v = true
	case p.literal("false"):
		*v = false
	default:
		return false
	}
	return true
}

// literal reads word if it comes next.
func (p *scanner) literal(word string) bool {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return false
	}
	p.i += len(word)
	return true
}

// skipScalar reads a value of a member encoding/json ignores: a string or
// an integer as the fast path reads them, true, false or null. (What ends
// a value is checked by objectNext.)
func (p *scanner) skipScalar() bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, ok := p.string()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		var n int64 // an integer beyond int64 goes to encoding/json too
		return p.int(&n)
	}
	return p.literal("true") || p.literal("false") || p.literal("null")
}
