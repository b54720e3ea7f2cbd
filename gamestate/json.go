package gamestate

import (
	"strconv"
	"unicode/utf8"
)

// Small JSON writers used to append results without reflection or
// allocation. Field order is fixed by the caller, so the bytes are canonical.

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

type obj struct{ b []byte }

func openObj(dst []byte) obj { return obj{b: append(dst, '{')} }

func (o obj) key(k string) obj {
	if o.b[len(o.b)-1] != '{' {
		o.b = append(o.b, ',')
	}
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
	return o
}

func (o obj) int(k string, v int64) obj {
	o = o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
	return o
}

func (o obj) bool(k string, v bool) obj {
	o = o.key(k)
	o.b = strconv.AppendBool(o.b, v)
	return o
}

func (o obj) str(k, v string) obj {
	o = o.key(k)
	o.b = AppendJSONString(o.b, v)
	return o
}

func (o obj) close() []byte { return append(o.b, '}') }

// refusal appends {"ok":false,"reason":reason}.
func refusal(dst []byte, reason string) []byte {
	return openObj(dst).bool("ok", false).str("reason", reason).close()
}
