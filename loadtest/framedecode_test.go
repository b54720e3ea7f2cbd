package loadtest

import (
	"bytes"
	"hash/maphash"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Frames as the server sends them (PROTOCOL.md; field order and results as
// the server and the Baron game write them).
const (
	eventAttack         = `{"type":"event","seq":1045,"at":1767225600123456789,"player":"ltabc-b7","cseq":12,"kind":"attack","target":"baron","result":{"damage":420,"baron_hp":9580,"last_hit":false}}`
	eventLastHit        = `{"type":"event","seq":1046,"at":1767225600123456999,"player":"ltabc-b8","cseq":30,"kind":"smite","target":"baron","result":{"damage":600,"baron_hp":0,"last_hit":true}}`
	eventDead           = `{"type":"event","seq":1047,"at":1767225600124000000,"player":"ltabc-b7","cseq":13,"kind":"attack","target":"baron","result":{"ok":false,"reason":"target_dead"}}`
	eventCooldown       = `{"type":"event","seq":1048,"at":1767225600124000001,"player":"ltabc-b7","cseq":14,"kind":"smite","target":"baron","result":{"ok":false,"reason":"cooldown","ready_at":1767225690000000000}}`
	eventJoin           = `{"type":"event","seq":1,"at":8123456789,"player":"","cseq":0,"kind":"join","target":"ltabc-b7","result":{"ok":true,"team":"red"}}`
	eventLeave          = `{"type":"event","seq":2,"at":8123456790,"player":"","cseq":0,"kind":"leave","target":"ltabc-b7","result":{"ok":true}}`
	eventRespawn        = `{"type":"event","seq":3,"at":8123456791,"player":"","cseq":0,"kind":"respawn","target":"baron","result":{"ok":true,"baron_hp":10000}}`
	eventRefused        = `{"type":"event","seq":4,"at":8123456792,"player":"","cseq":0,"kind":"respawn","target":"baron","result":{"ok":false,"reason":"alive"}}`
	ackFrame            = `{"type":"ack","cseq":12,"seq":1045}`
	ackDupFrame         = `{"type":"ack","cseq":12,"seq":1045,"dup":true}`
	rejectFrame         = `{"type":"reject","cseq":12,"code":"rate_limited","message":"too many actions"}`
	errorFrame          = `{"type":"error","code":"bad_request","message":"field cseq: must be a positive integer"}`
	redirectFrame       = `{"type":"redirect","url":"ws://10.0.0.2:8080/ws"}`
	pongFrame           = `{"type":"pong","t":123,"server":1767225600123456789}`
	welcomeWithState    = `{"type":"welcome","room":"r1","player":"p7","seq":1234,"epoch":3,"state":{"baron_hp":10000,"alive":true,"kills":0,"players":[{"id":"p7","team":"red","present":true,"gold":0}]}}`
	welcomeWithoutState = `{"type":"welcome","room":"r1","player":"p7","seq":1234,"epoch":3}`
)

var serverFrames = []string{
	eventAttack, eventLastHit, eventDead, eventCooldown, eventJoin, eventLeave, eventRespawn, eventRefused,
	ackFrame, ackDupFrame, rejectFrame, errorFrame, redirectFrame, pongFrame, welcomeWithState, welcomeWithoutState,
}

// decodeBoth decodes data with a frameDecoder and with encoding/json, fails
// t if they differ in anything, and reports whether the fast path took it.
// The decoded frame must not change when data is overwritten afterwards.
func decodeBoth(t *testing.T, d *frameDecoder, data []byte) (fast bool) {
	t.Helper()
	var want serverFrame
	wantErr := decodeFrameJSON(bytes.Clone(data), &want)

	var probe serverFrame
	fast = d.decodeFast(bytes.Clone(data), &probe)

	buf := bytes.Clone(data)
	var got serverFrame
	gotErr := d.decode(buf, &got)
	for i := range buf {
		buf[i] = '#'
	}
	if wantErr == nil {
		require.NoError(t, gotErr, "encoding/json decodes %q", data)
	} else {
		require.EqualError(t, gotErr, wantErr.Error(), "input %q", data)
	}
	if fast || wantErr == nil {
		require.Equal(t, want, got, "input %q (fast path: %v)", data, fast)
	}
	if fast {
		require.Equal(t, want, probe, "input %q", data)
	}
	return fast
}

func TestDecodeFrameServerFrames(t *testing.T) {
	var d frameDecoder
	for _, s := range serverFrames {
		fast := decodeBoth(t, &d, []byte(s))
		assert.Equal(t, s != welcomeWithState, fast, "fast path for %s", s)
	}
}

func TestDecodeFrameEdgeCases(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		fast  bool // whether the fast path takes it (else encoding/json does)
	}{
		// Whitespace and layout.
		{"whitespace everywhere", " \t\r\n{ \"type\" :\n\"ack\" , \"cseq\"\t:\t1 ,\"seq\": 2 }\n ", true},
		{"trailing newline", ackFrame + "\n", true},
		{"empty object", `{}`, true},
		{"empty result", `{"type":"event","seq":1,"result":{ }}`, true},
		{"no type", `{"seq":1}`, true},
		{"event without seq", `{"type":"event","seq":0}`, true},
		{"ack without cseq", `{"type":"ack","seq":3}`, true},
		{"unknown type", `{"type":"tick","seq":9}`, true},
		{"empty string", `{"type":""}`, true},
		{"DEL in a string", "{\"type\":\"a\x7fb\"}", true},
		{"trailing garbage", ackFrame + `x`, false},
		{"two objects", ackFrame + ackFrame, false},
		{"trailing comma", `{"type":"ack","cseq":1,"seq":2,}`, false},
		{"missing comma", `{"type":"ack" "cseq":1}`, false},
		{"missing colon", `{"type" "ack"}`, false},
		{"unclosed", `{"type":"ack","cseq":1`, false},
		{"unclosed string", `{"type":"ack`, false},
		{"not an object", `["type","ack"]`, false},
		{"null", `null`, false},
		{"empty", ``, false},
		{"form feed", "{\f\"type\":\"ack\"}", false},
		// Keys.
		{"upper-case key", `{"type":"ack","Seq":2,"cseq":1}`, false},
		{"upper-case unknown key", `{"type":"pong","SERVER":1}`, true},
		{"long s folds to seq", `{"type":"event","ſeq":2}`, false},
		{"upper-case kind", `{"type":"event","seq":2,"Kind":"attack"}`, false},
		{"kelvin sign folds to kind", "{\"type\":\"event\",\"seq\":2,\"\u212aind\":\"attack\"}", false},
		{"escaped key", `{"type":"event","s\u0065q":2}`, false},
		{"duplicate seq", `{"type":"event","seq":1,"seq":2}`, false},
		{"duplicate type", `{"type":"event","type":"ack","seq":1,"cseq":1}`, false},
		{"duplicate result", `{"type":"event","seq":1,"result":{"damage":1},"result":{"baron_hp":2}}`, false},
		{"duplicate in result", `{"type":"event","seq":1,"result":{"damage":1,"damage":2}}`, false},
		{"duplicate unknown key", `{"type":"pong","t":1,"server":1,"server":2}`, true},
		{"upper-case result key", `{"type":"event","seq":1,"result":{"Damage":1}}`, false},
		{"key that is a prefix", `{"type":"event","seq":1,"resul":1}`, true},
		// Strings.
		{"escape", `{"type":"event","seq":1,"player":"p\u0037"}`, false},
		{"escaped quote", `{"type":"error","message":"say \"hi\""}`, false},
		{"non-ASCII", `{"type":"event","seq":1,"player":"pé"}`, false},
		{"invalid UTF-8", "{\"type\":\"event\",\"seq\":1,\"player\":\"p\xff\"}", false},
		{"control character", "{\"type\":\"event\",\"seq\":1,\"player\":\"p\x01\"}", false},
		{"long message", `{"type":"error","code":"bad_request","message":"` + strings.Repeat("m", 300) + `"}`, true},
		{"string for a number", `{"type":"event","seq":"1"}`, false},
		{"number for a string", `{"type":1}`, false},
		// Numbers.
		{"max uint64", `{"type":"ack","cseq":18446744073709551615,"seq":1}`, true},
		{"uint64 overflow", `{"type":"ack","cseq":18446744073709551616,"seq":1}`, false},
		{"uint64 overflow by far", `{"type":"ack","cseq":99999999999999999999,"seq":1}`, false},
		{"21 digits", `{"type":"ack","cseq":100000000000000000000,"seq":1}`, false},
		{"negative uint", `{"type":"ack","cseq":-1,"seq":1}`, false},
		{"minus zero uint", `{"type":"ack","cseq":-0,"seq":1}`, false},
		{"max int64", `{"type":"pong","t":9223372036854775807}`, true},
		{"min int64", `{"type":"pong","t":-9223372036854775808}`, true},
		{"int64 overflow", `{"type":"pong","t":9223372036854775808}`, false},
		{"int64 underflow", `{"type":"pong","t":-9223372036854775809}`, false},
		{"minus zero int", `{"type":"pong","t":-0}`, true},
		{"zero", `{"type":"pong","t":0}`, true},
		{"leading zero", `{"type":"pong","t":01}`, false},
		{"fraction", `{"type":"pong","t":1.0}`, false},
		{"exponent", `{"type":"pong","t":1e3}`, false},
		{"lone minus", `{"type":"pong","t":-}`, false},
		{"plus", `{"type":"pong","t":+1}`, false},
		{"unknown fraction", `{"type":"pong","t":1,"server":1.5}`, false},
		{"unknown beyond int64", `{"type":"pong","t":1,"server":18446744073709551615}`, false},
		{"negative damage", `{"type":"event","seq":1,"result":{"damage":-5,"baron_hp":-1}}`, true},
		// Literals and nesting.
		{"null seq", `{"type":"event","seq":null}`, false},
		{"null result", `{"type":"event","seq":1,"result":null}`, false},
		{"null type", `{"type":null}`, false},
		{"null unknown", `{"type":"pong","server":null}`, true},
		{"true unknown", `{"type":"pong","server":true}`, true},
		{"misspelt true", `{"type":"ack","cseq":1,"seq":1,"dup":tru}`, false},
		{"true run on", `{"type":"ack","cseq":1,"seq":1,"dup":truex}`, false},
		{"number for a bool", `{"type":"ack","cseq":1,"seq":1,"dup":1}`, false},
		{"result not an object", `{"type":"event","seq":1,"result":5}`, false},
		{"result array", `{"type":"event","seq":1,"result":[]}`, false},
		{"nested unknown object", `{"type":"pong","server":{"a":1}}`, false},
		{"nested unknown array", `{"type":"pong","server":[1]}`, false},
		{"nested in result", `{"type":"event","seq":1,"result":{"extra":{"a":1},"damage":1}}`, false},
		{"state null", `{"type":"welcome","seq":1,"state":null}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d frameDecoder
			assert.Equal(t, tt.fast, decodeBoth(t, &d, []byte(tt.frame)), "fast path")
		})
	}
}

// TestFrameFieldNames checks the fast path's lists of JSON names against
// the struct tags encoding/json reads.
func TestFrameFieldNames(t *testing.T) {
	names := func(typ reflect.Type) []string {
		var ns []string
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			require.NotEmpty(t, name, "field %s has no JSON name", f.Name)
			require.Equal(t, strings.ToLower(name), name, "matchesFold wants lower-case names")
			ns = append(ns, name)
		}
		return ns
	}
	assert.ElementsMatch(t, names(reflect.TypeFor[serverFrame]()), frameFieldNames)
	assert.ElementsMatch(t, names(reflect.TypeFor[result]()), resultFieldNames)
}

// TestDecodeFrameInterns checks that a warm decoder allocates nothing for
// the common frames, and that its strings stay bounded.
func TestDecodeFrameInterns(t *testing.T) {
	var (
		d frameDecoder
		f serverFrame
	)
	for _, s := range []string{eventAttack, eventDead, ackFrame, ackDupFrame, pongFrame, rejectFrame} {
		data := []byte(s)
		require.NoError(t, d.decode(data, &f))
		assert.Zero(t, testing.AllocsPerRun(100, func() { _ = d.decode(data, &f) }), s)
	}

	for i := range 2 * maxInterned {
		frame := `{"type":"event","seq":1,"player":"p` + strings.Repeat("x", i%100) + string(rune('a'+i%26)) + `"}`
		decodeBoth(t, &d, []byte(frame))
	}
	assert.Len(t, d.strs, maxInterned)
	for s := range d.strs {
		assert.LessOrEqual(t, len(s), maxInternedLen)
	}
}

// TestReadPumpReusesBuffer reads frames of different sizes through one
// read pump and checks, once all are read, that none changed: nothing the
// pump hands out refers to its reused buffer.
func TestReadPumpReusesBuffer(t *testing.T) {
	frames := append([]string{}, serverFrames...)
	frames = append(frames,
		`{"type":"error","code":"bad_request","message":"`+strings.Repeat("x", 2*maxKeptBuffer)+`"}`,
		`{"type":"event","seq":7,"player":"p\u0031","result":{"damage":1,"baron_hp":2}}`, // encoding/json's path
		`{"type":"pong","t":`, // undecodable
	)
	frames = append(frames, serverFrames...)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for _, f := range frames {
			if ws.WriteMessage(websocket.TextMessage, []byte(f)) != nil {
				return
			}
		}
		_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		_, _, _ = ws.ReadMessage() // until the client closes
	}))
	defer srv.Close()

	for _, keepRaw := range []bool{false, true} {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		require.NoError(t, err)
		ws.SetReadLimit(maxFrameSize)
		c := &conn{ws: ws, in: make(chan inbound, len(frames)+1)}
		seed := maphash.MakeSeed()
		c.readPump(seed, 5*time.Second, keepRaw) // returns at the close; in holds every frame
		ws.Close()
		assert.Equal(t, websocket.CloseNormalClosure, closeCode(c.err))

		var got []inbound
		for m := range c.in {
			got = append(got, m)
		}
		require.Len(t, got, len(frames))
		for i, m := range got {
			var want serverFrame
			wantErr := decodeFrameJSON([]byte(frames[i]), &want)
			if wantErr != nil {
				assert.EqualError(t, m.err, wantErr.Error())
			} else {
				assert.NoError(t, m.err)
				assert.Equal(t, want, m.f, "frame %d", i)
			}
			assert.Equal(t, maphash.String(seed, frames[i]), m.hash, "frame %d", i)
			if keepRaw {
				assert.Equal(t, frames[i], string(m.raw), "frame %d", i)
			} else {
				assert.Nil(t, m.raw)
			}
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range serverFrames {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"type":"ack","Seq":2,"cseq":1}`,
		`{"type":"event","seq":1,"seq":2}`,
		`{"type":"event","seq":1,"player":"p\u0037"}`,
		`{"type":"pong","t":-9223372036854775808,"server":null}`,
		`{"type":"ack","cseq":18446744073709551615,"seq":1}`,
		` {"type" : "event" , "seq" : 1 , "result" : { "damage" : 1 } } `,
	} {
		f.Add([]byte(s))
	}
	var d frameDecoder // shared, as a read pump shares it across frames
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeBoth(t, &d, data)
	})
}

func BenchmarkDecodeFrame(b *testing.B) {
	for _, bf := range []struct{ name, frame string }{
		{"event", eventAttack},
		{"ack", ackFrame},
	} {
		data := []byte(bf.frame)
		b.Run(bf.name+"/json", func(b *testing.B) {
			b.ReportAllocs()
			var f serverFrame
			for b.Loop() {
				if err := decodeFrameJSON(data, &f); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bf.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			var (
				d frameDecoder
				f serverFrame
			)
			for b.Loop() {
				if err := d.decode(data, &f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
