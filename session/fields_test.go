package session_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/session"
)

// answer reads up to the next answer to an action: ack, reject or error.
func answer(t *testing.T, c *client) frame {
	t.Helper()
	f, err := c.readUntil(func(f frame) bool { return f.Type == "ack" || f.Type == "reject" || f.Type == "error" }, nil)
	require.NoError(t, err)
	return f
}

// TestUnknownFieldsIgnored: field names match exactly, so a key that
// differs from a field's name only in case is an unknown field; and only
// the fields of the frame's own type are read, so the others may hold
// anything (PROTOCOL.md: "Unknown fields are ignored").
func TestUnknownFieldsIgnored(t *testing.T) {
	h := startServer(t, harnessConfig{opts: session.Options{DisableRateLimit: true}})

	t.Run("hello with case-folded room and token", func(t *testing.T) {
		c := h.dial(t)
		defer c.close()
		c.mustSend(`{"type":"hello","room":"ci1","token":"dev:p1","ROOM":"other","Token":"dev:p9"}`)
		w := c.mustRead()
		require.Equal(t, "welcome", w.Type, "%s", w)
		assert.Equal(t, "ci1", w.Room)
		assert.Equal(t, "p1", w.Player)
	})

	t.Run("hello with a field of action", func(t *testing.T) {
		c := h.dial(t)
		defer c.close()
		c.mustSend(`{"type":"hello","room":"uf","token":"dev:p2","kind":1,"cseq":"x","t":{}}`)
		w := c.mustRead()
		require.Equal(t, "welcome", w.Type, "%s", w)
		assert.Equal(t, "p2", w.Player)
		c.expectOpen()
	})

	c, _ := h.join(t, "ci2", "dev:p3", 0)
	defer c.close()
	var cseq uint64
	act := func(t *testing.T, frame string) (frame, uint64) {
		t.Helper()
		cseq++
		c.mustSend(fmt.Sprintf(frame, cseq))
		return answer(t, c), cseq
	}
	logged := func(t *testing.T, seq uint64) (kind, target string) {
		t.Helper()
		for _, rec := range h.logRecords("ci2") {
			if rec.Seq == seq {
				ev := decodeEvent(t, rec.Event)
				return ev.Kind, ev.Target
			}
		}
		t.Fatalf("seq %d not logged", seq)
		return "", ""
	}

	t.Run("CSEQ", func(t *testing.T) {
		f, n := act(t, `{"type":"action","cseq":%d,"CSEQ":7000,"kind":"attack","target":"baron"}`)
		assert.Equal(t, fmt.Sprintf("ack %d", n), fmt.Sprintf("%s %d", f.Type, f.CSeq), "%s", f)
	})
	t.Run("KIND", func(t *testing.T) {
		f, _ := act(t, `{"type":"action","cseq":%d,"kind":"attack","KIND":"smite","target":"baron"}`)
		require.Equal(t, "ack", f.Type, "%s", f)
		kind, _ := logged(t, f.Seq)
		assert.Equal(t, "attack", kind)
	})
	t.Run("Kind before kind", func(t *testing.T) {
		f, _ := act(t, `{"Kind":"smite","type":"action","cseq":%d,"kind":"attack","target":"baron"}`)
		require.Equal(t, "ack", f.Type, "%s", f)
		kind, _ := logged(t, f.Seq)
		assert.Equal(t, "attack", kind)
	})
	t.Run("Target", func(t *testing.T) {
		f, _ := act(t, `{"type":"action","cseq":%d,"kind":"attack","target":"baron","Target":"dragon"}`)
		require.Equal(t, "ack", f.Type, "%s", f)
		_, target := logged(t, f.Seq)
		assert.Equal(t, "baron", target)
	})
	t.Run("TYPE", func(t *testing.T) {
		c.mustSend(`{"type":"ping","t":5,"TYPE":"action","cseq":1,"kind":"attack","target":"baron"}`)
		f, err := c.readUntil(func(f frame) bool { return f.Type != "event" }, nil)
		require.NoError(t, err)
		assert.Equal(t, "pong", f.Type, "%s", f)
		c.mustSend(`{"TYPE":"ping"}`)
		f, err = c.readUntil(func(f frame) bool { return f.Type != "event" }, nil)
		require.NoError(t, err)
		assert.Equal(t, "error field type: required", f.Type+" "+f.Message, "%s", f)
	})
	t.Run("T", func(t *testing.T) {
		c.mustSend(`{"type":"ping","t":11,"T":12}`)
		f, err := c.readUntil(func(f frame) bool { return f.Type != "event" }, nil)
		require.NoError(t, err)
		assert.Equal(t, `pong 11`, f.Type+" "+string(f.T), "%s", f)
		c.mustSend(`{"type":"ping","T":"not a number"}`)
		f, err = c.readUntil(func(f frame) bool { return f.Type != "event" }, nil)
		require.NoError(t, err)
		assert.Equal(t, "pong", f.Type+string(f.T), "%s", f)
	})
	t.Run("action with a field of hello", func(t *testing.T) {
		f, n := act(t, `{"type":"action","cseq":%d,"kind":"attack","target":"baron","room":5,"since":-1,"token":[]}`)
		assert.Equal(t, fmt.Sprintf("ack %d", n), fmt.Sprintf("%s %d", f.Type, f.CSeq), "%s", f)
	})
	t.Run("ping with a field of action", func(t *testing.T) {
		c.mustSend(`{"type":"ping","t":1,"kind":[],"cseq":-1}`)
		f, err := c.readUntil(func(f frame) bool { return f.Type != "event" }, nil)
		require.NoError(t, err)
		assert.Equal(t, "pong", f.Type, "%s", f)
	})
	t.Run("unknown members must still be JSON", func(t *testing.T) {
		c.mustSend(`{"type":"ping","t":1,"x":01}`)
		f, err := c.readUntil(func(f frame) bool { return f.Type != "event" }, nil)
		require.NoError(t, err)
		assert.Equal(t, "error frame is not valid JSON", f.Type+" "+f.Message, "%s", f)
	})

	// An action whose cseq is valid is answered with it (README, Protocol
	// choices), however wrong its other fields.
	for _, tc := range []struct{ name, frame, message string }{
		{"kind a number", `{"type":"action","cseq":%d,"kind":5,"target":"baron"}`, "field kind: must be a string"},
		{"target a number", `{"type":"action","cseq":%d,"kind":"attack","target":7}`, "field target: must be a string"},
		{"kind an object", `{"type":"action","cseq":%d,"kind":{},"target":"baron"}`, "field kind: must be a string"},
		{"kind twice", `{"type":"action","cseq":%d,"kind":"attack","kind":"smite","target":"baron"}`, "field kind: appears more than once"},
		{"target twice", `{"type":"action","target":"baron","cseq":%d,"kind":"attack","target":"baron"}`, "field target: appears more than once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, n := act(t, tc.frame)
			assert.Equal(t, fmt.Sprintf("reject %d bad_request %s", n, tc.message),
				fmt.Sprintf("%s %d %s %s", f.Type, f.CSeq, f.Code, f.Message), "%s", f)
		})
	}
	t.Run("cseq twice", func(t *testing.T) {
		c.mustSend(`{"type":"action","cseq":900,"cseq":901,"kind":"attack","target":"baron"}`)
		f := answer(t, c)
		assert.Equal(t, "error bad_request field cseq: appears more than once", f.Type+" "+f.Code+" "+f.Message, "%s", f)
	})
	c.expectOpen()
}

// TestDuplicateFieldsRefused: a hello that names a field twice is refused
// (error bad_request, close 1008), whichever value would have won.
func TestDuplicateFieldsRefused(t *testing.T) {
	h := startServer(t, harnessConfig{})
	for _, in := range []string{
		`{"type":"hello","room":"d1","room":"d2","token":"dev:p1"}`,
		`{"type":"hello","room":"d1","token":"dev:p1","token":"dev:p2"}`,
		`{"type":"hello","room":"d1","token":"dev:p1","since":0,"since":0}`,
		`{"type":"hello","type":"hello","room":"d1","token":"dev:p1"}`,
	} {
		c := h.dial(t)
		c.mustSend(in)
		f := c.mustRead()
		assert.Equal(t, "error bad_request", f.Type+" "+f.Code, "%s: %s", in, f)
		assert.Contains(t, f.Message, "appears more than once", in)
		assert.Equal(t, 1008, c.closeCode(), in)
		c.close()
	}
	assert.Empty(t, h.reg.Names(), "no room opened")
}
