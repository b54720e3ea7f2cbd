package session

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/sequencer"
)

// The fast path takes the common action frame and declines the rest,
// which the full path then decodes or refuses with its own words.
func TestDecodeActionFast(t *testing.T) {
	for _, c := range []struct {
		in   string
		want clientFrame // zero: declined
	}{
		{`{"type":"action","cseq":1,"kind":"attack","target":"baron"}`, clientFrame{Type: "action", CSeq: 1, Kind: "attack", Target: "baron"}},
		{"\t{ \"cseq\" : 42 ,\"target\":\"baron\",\"kind\":\"smite\", \"type\":\"action\"}\n", clientFrame{Type: "action", CSeq: 42, Kind: "smite", Target: "baron"}},
		{`{"type":"action","cseq":18446744073709551615,"kind":"dance","target":"moon"}`, clientFrame{Type: "action", CSeq: 1<<64 - 1, Kind: "dance", Target: "moon"}},
		{`{"type":"action","cseq":18446744073709551616,"kind":"attack","target":"baron"}`, clientFrame{}}, // overflows
		{`{"type":"action","cseq":0,"kind":"attack","target":"baron"}`, clientFrame{}},
		{`{"type":"action","cseq":01,"kind":"attack","target":"baron"}`, clientFrame{}},
		{`{"type":"action","cseq":1.0,"kind":"attack","target":"baron"}`, clientFrame{}},
		{`{"type":"action","cseq":1e3,"kind":"attack","target":"baron"}`, clientFrame{}},
		{`{"type":"action","cseq":"1","kind":"attack","target":"baron"}`, clientFrame{}},
		{`{"type":"action","cseq":1,"kind":"attack"}`, clientFrame{}},                                                                               // no target
		{`{"type":"action","cseq":1,"kind":"attack","target":"baron","x":1}`, clientFrame{}},                                                        // other member
		{`{"type":"action","cseq":1,"cseq":2,"kind":"attack","target":"baron"}`, clientFrame{}},                                                     // repeated
		{`{"Type":"action","cseq":1,"kind":"attack","target":"baron"}`, clientFrame{}},                                                              // an unknown member
		{`{"type":"action","cseq":1,"kind":"att\u0061ck","target":"baron"}`, clientFrame{Type: "action", CSeq: 1, Kind: "attack", Target: "baron"}}, // an escape decoding to ASCII
		{`{"type":"action","cseq":1,"kind":"att\u00e9ck","target":"baron"}`, clientFrame{}},                                                         // not ASCII once decoded
		{`{"type":"action","cseq":1,"kind":"attack","target":"baron"}x`, clientFrame{}},                                                             // trailing bytes
		{`{"type":"ping","t":1}`, clientFrame{}},                                                                                                    // another type
		{`{"type":"action","cseq":1,"kind":"attack","target":"bar` + "\xff" + `on"}`, clientFrame{}},                                                // not ASCII
	} {
		got, ok := decodeActionFast([]byte(c.in))
		assert.Equal(t, c.want.Type != "", ok, c.in)
		assert.Equal(t, c.want, got, c.in)
		if ok {
			full, perr := decodeFrameFull([]byte(c.in))
			require.Nil(t, perr, c.in)
			assert.Equal(t, full, got, c.in)
		}
	}
}

func TestDecodeFrame(t *testing.T) {
	long := strings.Repeat("a", 65)
	cases := []struct {
		in   string
		want clientFrame
		err  string // expected error message; empty means success
	}{
		{in: `{"type":"hello","room":"r1","token":"dev:p1"}`, want: clientFrame{Type: "hello", Room: "r1", Token: "dev:p1"}},
		{in: `{"type":"hello","room":"r-1_.X","token":"x","since":42}`, want: clientFrame{Type: "hello", Room: "r-1_.X", Token: "x", Since: 42}},
		{in: `{"type":"hello","room":"r1","since":null,"extra":[1,2]}`, want: clientFrame{Type: "hello", Room: "r1"}},
		{in: `{"type":"action","cseq":12,"kind":"attack","target":"baron"}`, want: clientFrame{Type: "action", CSeq: 12, Kind: "attack", Target: "baron"}},
		{in: `{"type":"action","cseq":18446744073709551615,"kind":"attack"}`, want: clientFrame{Type: "action", CSeq: 18446744073709551615, Kind: "attack"}},
		{in: `{"type":"ping","t":123}`, want: clientFrame{Type: "ping", T: json.RawMessage("123")}},
		{in: `{"type":"ping","t":-1.5e3}`, want: clientFrame{Type: "ping", T: json.RawMessage("-1.5e3")}},
		{in: `{"type":"ping"}`, want: clientFrame{Type: "ping"}},
		{in: ` {"type":"ping"} `, want: clientFrame{Type: "ping"}},

		{in: `not json`, err: "frame is not valid JSON"},
		{in: ``, err: "frame is not valid JSON"},
		{in: `{"type":"ping"} {"type":"ping"}`, err: "frame is not valid JSON"},
		{in: `[{"type":"ping"}]`, err: "frame must be one JSON object"},
		{in: `"ping"`, err: "frame must be one JSON object"},
		{in: `null`, err: "frame must be one JSON object"},
		{in: `{}`, err: "field type: required"},
		{in: `{"type":""}`, err: "field type: required"},
		{in: `{"type":7}`, err: "field type: must be a string"},
		{in: `{"type":"dance"}`, err: `unknown type "dance"`},
		{in: `{"type":"hello","token":"x"}`, err: "field room: required"},
		{in: `{"type":"hello","room":""}`, err: "field room: must be 1-64 characters of [A-Za-z0-9_.-]"},
		{in: `{"type":"hello","room":"` + long + `"}`, err: "field room: must be 1-64 characters of [A-Za-z0-9_.-]"},
		{in: `{"type":"hello","room":"a b"}`, err: "field room: must be 1-64 characters of [A-Za-z0-9_.-]"},
		{in: `{"type":"hello","room":"ä"}`, err: "field room: must be 1-64 characters of [A-Za-z0-9_.-]"},
		{in: `{"type":"hello","room":5}`, err: "field room: must be a string"},
		{in: `{"type":"hello","room":"r","token":5}`, err: "field token: must be a string"},
		{in: `{"type":"hello","room":"r","since":-1}`, err: "field since: must be a non-negative integer"},
		{in: `{"type":"hello","room":"r","since":"3"}`, err: "field since: must be a non-negative integer"},
		{in: `{"type":"action","kind":"attack"}`, err: msgCSeq},
		{in: `{"type":"action","cseq":0,"kind":"attack"}`, err: msgCSeq},
		{in: `{"type":"action","cseq":-3,"kind":"attack"}`, err: msgCSeq},
		{in: `{"type":"action","cseq":1.5,"kind":"attack"}`, err: msgCSeq},
		{in: `{"type":"action","cseq":1e2,"kind":"attack"}`, err: msgCSeq},
		{in: `{"type":"action","cseq":"3","kind":"attack"}`, err: msgCSeq},
		{in: `{"type":"action","cseq":null,"kind":"attack"}`, err: msgCSeq},
		{in: `{"type":"action","cseq":18446744073709551616,"kind":"attack"}`, err: msgCSeq},

		// Field names match exactly: a name that differs only in case is
		// an unknown field, and unknown fields are ignored.
		{in: `{"type":"hello","room":"ci1","token":"dev:p1","ROOM":"other","Token":"dev:p9"}`, want: clientFrame{Type: "hello", Room: "ci1", Token: "dev:p1"}},
		{in: `{"ROOM":"other","Token":"dev:p9","Since":4,"type":"hello","room":"ci1","token":"dev:p1"}`, want: clientFrame{Type: "hello", Room: "ci1", Token: "dev:p1"}},
		{in: `{"type":"action","cseq":5,"CSEQ":7,"kind":"attack","target":"baron"}`, want: clientFrame{Type: "action", CSeq: 5, Kind: "attack", Target: "baron"}},
		{in: `{"type":"action","cseq":5,"kind":"attack","KIND":"smite","Target":"x","target":"baron"}`, want: clientFrame{Type: "action", CSeq: 5, Kind: "attack", Target: "baron"}},
		{in: `{"type":"ping","TYPE":"action","cseq":5,"kind":"attack","T":2,"t":1}`, want: clientFrame{Type: "ping", T: json.RawMessage("1")}},
		{in: `{"Type":"action","cseq":5,"kind":"attack","target":"baron"}`, err: "field type: required"},
		{in: `{"type":"ping","T":"x"}`, want: clientFrame{Type: "ping"}},
		{in: `{"typ\u0065":"ping","\u0074":7}`, want: clientFrame{Type: "ping", T: json.RawMessage("7")}}, // names are compared unescaped
		{in: `{"type":"ping","t\u0000":7}`, want: clientFrame{Type: "ping"}},

		// Only the fields of the frame's own type are checked.
		{in: `{"type":"action","cseq":1,"kind":"attack","target":"baron","room":5}`, want: clientFrame{Type: "action", CSeq: 1, Kind: "attack", Target: "baron"}},
		{in: `{"type":"action","cseq":1,"kind":"attack","target":"baron","since":-1,"t":"x","token":{}}`, want: clientFrame{Type: "action", CSeq: 1, Kind: "attack", Target: "baron"}},
		{in: `{"type":"ping","t":1,"kind":[]}`, want: clientFrame{Type: "ping", T: json.RawMessage("1")}},
		{in: `{"type":"ping","room":null,"cseq":0,"target":true,"since":"x"}`, want: clientFrame{Type: "ping"}},
		{in: `{"type":"hello","room":"uf","token":"dev:p2","kind":1,"cseq":-1,"target":[],"t":"x"}`, want: clientFrame{Type: "hello", Room: "uf", Token: "dev:p2"}},
		{in: `{"type":"hello","room":"uf","kind":1,"kind":2}`, want: clientFrame{Type: "hello", Room: "uf"}}, // repeated, but not a hello's field
		{in: `{"type":"ping","x":01}`, err: "frame is not valid JSON"},                                       // unknown, still JSON
		{in: `{"type":"ping","x":[1,}`, err: "frame is not valid JSON"},

		// An action with a valid cseq keeps it whatever its kind and
		// target are: the session rejects it with BadField.
		{in: `{"type":"action","cseq":1,"kind":3}`, want: clientFrame{Type: "action", CSeq: 1, BadField: "field kind: must be a string"}},
		{in: `{"type":"action","cseq":8,"kind":5,"target":"baron"}`, want: clientFrame{Type: "action", CSeq: 8, BadField: "field kind: must be a string"}},
		{in: `{"type":"action","cseq":8,"kind":"attack","target":7}`, want: clientFrame{Type: "action", CSeq: 8, BadField: "field target: must be a string"}},
		{in: `{"type":"action","cseq":8,"kind":"attack","target":"baron","kind":"smite"}`, want: clientFrame{Type: "action", CSeq: 8, BadField: "field kind: appears more than once"}},
		{in: `{"type":"action","cseq":8,"kind":"attack","target":"baron","target":"baron"}`, want: clientFrame{Type: "action", CSeq: 8, BadField: "field target: appears more than once"}},
		{in: `{"type":"action","cseq":8,"kind":null,"target":null}`, want: clientFrame{Type: "action", CSeq: 8}},
		{in: `{"type":"action","kind":5}`, err: msgCSeq}, // no cseq to answer with

		// A field of the frame's own type named twice is refused.
		{in: `{"type":"action","cseq":1,"cseq":2,"kind":"attack","target":"baron"}`, err: "field cseq: appears more than once"},
		{in: `{"type":"action","type":"action","cseq":1,"kind":"attack","target":"baron"}`, err: "field type: appears more than once"},
		{in: `{"type":"ping","typ\u0065":"ping"}`, err: "field type: appears more than once"},
		{in: `{"type":"hello","room":"a","room":"b"}`, err: "field room: appears more than once"},
		{in: `{"type":"hello","room":null,"room":null}`, err: "field room: appears more than once"},
		{in: `{"type":"hello","room":"a","token":"x","token":"y"}`, err: "field token: appears more than once"},
		{in: `{"type":"hello","room":"a","since":1,"since":1}`, err: "field since: appears more than once"},
		{in: `{"type":"ping","t":1,"t":1}`, err: "field t: appears more than once"},
		{in: `{"type":"ping","t":"x"}`, err: "field t: must be a number"},
		{in: `{"type":"ping","t":{}}`, err: "field t: must be a number"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			f, perr := decodeFrame([]byte(c.in))
			if c.err != "" {
				require.NotNil(t, perr, "decoded %+v", f)
				assert.Equal(t, sequencer.CodeBadRequest, perr.Code)
				assert.Equal(t, c.err, perr.Message)
				return
			}
			require.Nil(t, perr)
			assert.Equal(t, c.want, f)
		})
	}
}

func TestEncodeFrames(t *testing.T) {
	w := sequencer.Welcome{Seq: 7, Epoch: 2, State: []byte(`{"baron_hp":10000}`)}
	assert.JSONEq(t, `{"type":"welcome","room":"r1","player":"p\"7","seq":7,"epoch":2,"state":{"baron_hp":10000}}`,
		string(encodeWelcome("r1", `p"7`, w, true)))
	assert.JSONEq(t, `{"type":"welcome","room":"r1","player":"p7","seq":7,"epoch":2}`, string(encodeWelcome("r1", "p7", w, false)))
	assert.Equal(t, `{"type":"ack","cseq":12,"seq":1045}`, string(encodeAck(sequencer.Ack{CSeq: 12, Seq: 1045})))
	assert.Equal(t, `{"type":"ack","cseq":12,"seq":1045,"dup":true}`, string(encodeAck(sequencer.Ack{CSeq: 12, Seq: 1045, Dup: true})))
	assert.JSONEq(t, `{"type":"reject","cseq":3,"code":"busy","message":"a\nb"}`,
		string(encodeReject(sequencer.Reject{CSeq: 3, Code: sequencer.CodeBusy, Message: "a\nb"})))
	assert.JSONEq(t, `{"type":"error","code":"bad_request","message":"x"}`, string(encodeError(badRequest("x"))))
	assert.Equal(t, `{"type":"pong","t":123,"server":99}`, string(encodePong(json.RawMessage("123"), 99)))
	assert.Equal(t, `{"type":"pong","server":99}`, string(encodePong(nil, 99)))
	assert.JSONEq(t, `{"type":"redirect","url":"ws://h:1/ws"}`, string(encodeRedirect("ws://h:1/ws")))
}

// FuzzDecodeFrame checks that every input is answered with a frame of the
// protocol: either it decodes to a known type with valid fields (and the
// answers the session builds from it are valid JSON), or to an error frame
// with a documented code. Where the fast path answers, the full path
// answers the same. A decoded frame holds what encoding/json reads under
// the fields' exact names. Adding unknown members (names that differ from
// a field's only in case, and the fields of other types, with values of
// any kind) changes no answer. Its seed corpus is in testdata/fuzz.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","room":"r1","token":"dev:p1","since":0}`,
		`{"type":"action","cseq":1,"kind":"attack","target":"baron"}`,
		`{"type":"ping","t":1}`,
		`{"type":"action","cseq":-1}`,
		`{`,
		` { "target" : "baron" , "kind":"smite","cseq" : 18446744073709551615, "type":"action" } `,
		`{"type":"action","cseq":18446744073709551616,"kind":"attack","target":"baron"}`,
		`{"type":"action","cseq":1,"kind":"att\u0061ck","target":"baron"}`,
		`{"type":"action","cseq":2,"cseq":3,"kind":"attack","target":"baron"}`,
		`{"type":"hello","room":"ci1","token":"dev:p1","ROOM":"other","Token":"dev:p9"}`,
		`{"type":"action","cseq":5,"CSEQ":7,"kind":"attack","target":"baron"}`,
		`{"type":"action","cseq":1,"kind":"attack","target":"baron","room":5}`,
		`{"type":"ping","t":1,"kind":[]}`,
		`{"type":"hello","room":"uf","token":"dev:p2","kind":1}`,
		`{"type":"action","cseq":8,"kind":5,"target":"baron"}`,
		`{"type":"action","cseq":8,"kind":"attack","target":7}`,
		`{"typ\u0065":"ping","t":1,"t":2}`,
		`{}`,
		`{"type":"action","cseq":1,"kind":"attack","target":"baron","x":01}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if fast, ok := decodeActionFast(data); ok {
			full, perr := decodeFrameFull(data)
			if perr != nil || !assert.ObjectsAreEqual(full, fast) {
				t.Fatalf("fast path %+v, full path %+v (%v)", fast, full, perr)
			}
		}
		fr, perr := decodeFrame(data)
		if obj := jsonObject(data); obj != nil {
			for _, m := range unknownMembers(fr.Type) {
				more := withMember(obj, m)
				fr2, perr2 := decodeFrame(more)
				if !assert.ObjectsAreEqual(fr, fr2) || !assert.ObjectsAreEqual(perr, perr2) {
					t.Fatalf("%s: %+v (%v); with an unknown member, %s: %+v (%v)", data, fr, perr, more, fr2, perr2)
				}
			}
		}
		if perr != nil {
			if perr.Code != sequencer.CodeBadRequest || perr.Message == "" {
				t.Fatalf("undocumented error %q: %q", perr.Code, perr.Message)
			}
			answer := encodeError(perr)
			if !json.Valid(answer) {
				t.Fatalf("error frame is not JSON: %q", answer)
			}
			return
		}
		ref := referenceFields(t, data)
		if ref.Type != fr.Type {
			t.Fatalf("type %q, encoding/json reads %q", fr.Type, ref.Type)
		}
		switch fr.Type {
		case typeHello:
			if !validName(fr.Room) {
				t.Fatalf("hello with invalid room %q accepted", fr.Room)
			}
			if fr.Room != ref.Room || fr.Token != ref.Token || !sameUint(fr.Since, ref.Since) {
				t.Fatalf("hello %+v, encoding/json reads %+v", fr, ref)
			}
			w := encodeWelcome(fr.Room, fr.Token, sequencer.Welcome{Seq: fr.Since, State: []byte(`{}`)}, true)
			if !json.Valid(w) {
				t.Fatalf("welcome is not JSON: %q", w)
			}
		case typeAction:
			if fr.CSeq == 0 {
				t.Fatal("action with cseq 0 accepted")
			}
			if !sameUint(fr.CSeq, ref.CSeq) {
				t.Fatalf("cseq %d, encoding/json reads %s", fr.CSeq, ref.CSeq)
			}
			if fr.BadField != "" {
				if fr.Kind != "" || fr.Target != "" {
					t.Fatalf("refused action keeps kind %q target %q", fr.Kind, fr.Target)
				}
			} else if fr.Kind != ref.Kind || fr.Target != ref.Target {
				t.Fatalf("action %+v, encoding/json reads %+v", fr, ref)
			}
			r := encodeReject(sequencer.Reject{CSeq: fr.CSeq, Code: sequencer.CodeUnknownKind, Message: fr.Kind + fr.Target + fr.BadField})
			if !json.Valid(r) {
				t.Fatalf("reject is not JSON: %q", r)
			}
		case typePing:
			if string(fr.T) != strings.TrimPrefix(string(ref.T), "null") {
				t.Fatalf("t %s, encoding/json reads %s", fr.T, ref.T)
			}
			p := encodePong(fr.T, 1)
			if !json.Valid(p) {
				t.Fatalf("pong is not JSON: %q", p)
			}
		default:
			t.Fatalf("decoded unknown type %q", fr.Type)
		}
	})
}

// refFields is what encoding/json reads under the fields' exact names
// (last wins, which only frames without repeated fields reach).
type refFields struct {
	Type, Room, Token, Kind, Target string
	Since, CSeq, T                  json.RawMessage
}

func referenceFields(t *testing.T, data []byte) refFields {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decoded %q, which encoding/json refuses: %v", data, err)
	}
	str := func(name string) string {
		var s *string
		if err := json.Unmarshal(m[name], &s); err != nil && m[name] != nil {
			return "<not a string>"
		}
		if s == nil {
			return ""
		}
		return *s
	}
	return refFields{
		Type: str("type"), Room: str("room"), Token: str("token"), Kind: str("kind"), Target: str("target"),
		Since: m["since"], CSeq: m["cseq"], T: m["t"],
	}
}

// sameUint reports whether raw is absent, null or the JSON integer n.
func sameUint(n uint64, raw json.RawMessage) bool {
	if raw == nil || string(raw) == "null" {
		return n == 0
	}
	return string(raw) == strconv.FormatUint(n, 10)
}

// jsonObject returns data if it is one JSON object, else nil.
func jsonObject(data []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil || m == nil {
		return nil
	}
	return data
}

// unknownMembers lists members that a frame of type typ must ignore:
// names that differ from a field's only in case, and the fields of the
// other types, with values none of them accepts.
func unknownMembers(typ string) []string {
	out := []string{
		`"TYPE":"action","Room":5,"ToKen":[],"SINCE":-1,"Cseq":"x","KIND":{},"tarGET":null,"T":true`,
		`"Type":"hello","ROOM":"other","Token":"dev:p9","Since":7,"CSEQ":7,"Kind":"smite","TARGET":"moon","T":1`,
		`"unknown":{"type":"ping","a":[1,2,{"b":null}]}`,
	}
	switch typ {
	case typeHello:
		out = append(out, `"cseq":"x","kind":5,"target":{},"t":"y"`, `"cseq":1,"cseq":2,"kind":"a","kind":"b"`)
	case typeAction:
		out = append(out, `"room":5,"token":[],"since":-1,"t":"y"`, `"room":"a","room":"b","t":1,"t":2`)
	case typePing:
		out = append(out, `"room":5,"token":[],"since":-1,"cseq":0,"kind":5,"target":{}`, `"cseq":1,"cseq":2,"since":1,"since":2`)
	}
	return out
}

// withMember returns obj, a JSON object, with members inserted first.
func withMember(obj []byte, members string) []byte {
	i := bytes.IndexByte(obj, '{') + 1
	out := append([]byte(nil), obj[:i]...)
	out = append(out, members...)
	if rest := bytes.TrimLeft(obj[i:], " \t\r\n"); rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, obj[i:]...)
}

// The action frame through the fast path and through the full one:
//
//	go test -run '^$' -bench DecodeAction -benchmem -count 5 ./session/
func BenchmarkDecodeAction(b *testing.B) {
	frame := []byte(`{"type":"action","cseq":123456,"kind":"attack","target":"baron"}`)
	for _, c := range []struct {
		name   string
		decode func([]byte) (clientFrame, *protoError)
	}{{"fast", decodeFrame}, {"full", decodeFrameFull}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, perr := c.decode(frame); perr != nil {
					b.Fatal(perr)
				}
			}
		})
	}
}
