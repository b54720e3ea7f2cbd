package session

import (
	"encoding/json"
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
		{`{"Type":"action","cseq":1,"kind":"attack","target":"baron"}`, clientFrame{}},                                                              // encoding/json folds case
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
			full, perr := decodeFrameJSON([]byte(c.in))
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
		{in: `null`, err: "field type: required"},
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
		{in: `{"type":"action","cseq":1,"kind":3}`, err: "field kind: must be a string"},
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
// with a documented code. Its seed corpus is in testdata/fuzz.
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
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if fast, ok := decodeActionFast(data); ok {
			full, perr := decodeFrameJSON(data)
			if perr != nil || !assert.ObjectsAreEqual(full, fast) {
				t.Fatalf("fast path %+v, full path %+v (%v)", fast, full, perr)
			}
		}
		fr, perr := decodeFrame(data)
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
		switch fr.Type {
		case typeHello:
			if !validName(fr.Room) {
				t.Fatalf("hello with invalid room %q accepted", fr.Room)
			}
			w := encodeWelcome(fr.Room, fr.Token, sequencer.Welcome{Seq: fr.Since, State: []byte(`{}`)}, true)
			if !json.Valid(w) {
				t.Fatalf("welcome is not JSON: %q", w)
			}
		case typeAction:
			if fr.CSeq == 0 {
				t.Fatal("action with cseq 0 accepted")
			}
			r := encodeReject(sequencer.Reject{CSeq: fr.CSeq, Code: sequencer.CodeUnknownKind, Message: fr.Kind + fr.Target})
			if !json.Valid(r) {
				t.Fatalf("reject is not JSON: %q", r)
			}
		case typePing:
			p := encodePong(fr.T, 1)
			if !json.Valid(p) {
				t.Fatalf("pong is not JSON: %q", p)
			}
		default:
			t.Fatalf("decoded unknown type %q", fr.Type)
		}
	})
}

// The action frame through the fast path and through encoding/json:
//
//	go test -run '^$' -bench DecodeAction -benchmem -count 5 ./session/
func BenchmarkDecodeAction(b *testing.B) {
	frame := []byte(`{"type":"action","cseq":123456,"kind":"attack","target":"baron"}`)
	for _, c := range []struct {
		name   string
		decode func([]byte) (clientFrame, *protoError)
	}{{"fast", decodeFrame}, {"json", decodeFrameJSON}} {
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
