package sequencer

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reference decodes with encoding/json, for comparison.
func reference(frame []byte) (Event, error) {
	var ev Event
	err := json.Unmarshal(frame, &ev)
	return ev, err
}

func TestDecodeEventMatchesEncodingJSON(t *testing.T) {
	frames := []string{
		`{"type":"event","seq":1,"at":5,"player":"","cseq":0,"kind":"join","target":"p1","result":{"ok":true,"team":"blue"}}`,
		`{"type":"event","seq":1045,"at":8123456789,"player":"p7","cseq":12,"kind":"attack","target":"baron","result":{"damage":420,"baron_hp":0,"last_hit":true}}`,
		` { "result" : { "a" : [1, 2.5e3, "x\"}"], "b": null } , "seq" : 9 , "type":"event", "extra": [{}, []], "at": -3, "player": "p\u00e9\n\ud83d\ude00" } `,
		`{"type":"event","seq":18446744073709551615,"at":-9223372036854775808,"result":{}}`,
	}
	for _, f := range frames {
		got, err := DecodeEvent([]byte(f))
		require.NoError(t, err, f)
		want, err := reference([]byte(f))
		require.NoError(t, err, f)
		assert.Equal(t, want.Seq, got.Seq)
		assert.Equal(t, want.At, got.At)
		assert.Equal(t, want.Player, got.Player)
		assert.Equal(t, want.CSeq, got.CSeq)
		assert.Equal(t, want.Kind, got.Kind)
		assert.Equal(t, want.Target, got.Target)
		assert.JSONEq(t, string(want.Result), string(got.Result))
	}
}

func TestDecodeEventRejects(t *testing.T) {
	for _, f := range []string{
		``, `[]`, `{`, `{"type":"event"`, `{"type":"ack","seq":1,"result":{}}`,
		`{"type":"event","seq":0,"result":{}}`, `{"type":"event","seq":1}`,
		`{"type":"event","seq":1.5,"result":{}}`, `{"type":"event","seq":-1,"result":{}}`,
		`{"type":"event","seq":01,"result":{}}`, `{"type":"event","seq":1,"result":5}`,
		`{"type":"event","seq":1,"result":{}} x`, `{"type":"event","seq":18446744073709551616,"result":{}}`,
		`{"type":"event","seq":1,"result":{"a":tru}}`, `{"type":"event","seq":1,"result":{"a" 1}}`,
		`{"type":"ev\x01ent","seq":1,"result":{}}`, `{"type":"event","seq":1,"result":{},}`,
	} {
		_, err := DecodeEvent([]byte(f))
		assert.Error(t, err, "%q", f)
	}
}

// FuzzDecodeEvent: never panics, and whatever it accepts that is valid JSON
// decodes to the same fields as encoding/json.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"type":"event","seq":1045,"at":8123456789,"player":"p7","cseq":12,"kind":"attack","target":"baron","result":{"damage":420,"baron_hp":0,"last_hit":true}}`))
	f.Add([]byte(`{"type":"event","seq":1,"result":{"a":[1,{"b":"\u00e9"}]}}`))
	f.Add([]byte(`{"seq":2,"type":"event","player":"\ud83d","result":{}}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, err := DecodeEvent(frame)
		if err != nil || !json.Valid(frame) {
			return
		}
		want, err := reference(frame)
		if err != nil {
			return // encoding/json also rejects duplicate-key type clashes etc.
		}
		if got.Seq != want.Seq || got.At != want.At || got.CSeq != want.CSeq ||
			got.Kind != want.Kind || got.Target != want.Target || got.Player != want.Player {
			t.Fatalf("decoded %+v, encoding/json %+v", got, want)
		}
	})
}
