package session_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/sequencer"
	"github.com/lasthit/lasthit/session"
)

// TestBadInput sends each kind of bad input over a real connection and
// checks the exact answer of PROTOCOL.md and whether the connection stays
// open.
func TestBadInput(t *testing.T) {
	h := startServer(t, harnessConfig{opts: session.Options{Secret: secret, DisableRateLimit: true}})
	type in struct {
		c      *client
		player string
	}
	text := func(s string) func(in) { return func(x in) { x.c.mustSend(s) } }
	helloWith := func(room string, tok func(player string) string, since int) func(in) {
		return func(x in) {
			x.c.mustSend(fmt.Sprintf(`{"type":"hello","room":%q,"token":%q,"since":%d}`, room, tok(x.player), since))
		}
	}
	valid := func(p string) string { return token(t, p) }
	signed := func(s []byte, room string, exp time.Duration) func(string) string {
		return func(p string) string {
			tok, err := session.SignToken(s, session.TokenClaims{Player: p, Room: room, Expires: time.Now().Add(exp)})
			require.NoError(t, err)
			return tok
		}
	}
	const open = 0
	cases := []struct {
		name   string
		joined bool // a valid hello goes first
		send   func(in)
		want   string // "type code" of the answer; empty: no frame before the close
		close  int    // expected close code; open: the connection stays open
	}{
		// Before hello: any failure is one error frame and a close.
		{name: "non-JSON first frame", send: text(`hello?`), want: "error bad_request", close: 1008},
		{name: "action before hello", send: text(attack(1)), want: "error bad_request", close: 1008},
		{name: "ping before hello", send: text(`{"type":"ping","t":1}`), want: "error bad_request", close: 1008},
		{name: "binary first frame", send: func(x in) {
			require.NoError(t, x.c.conn.WriteMessage(websocket.BinaryMessage, []byte(hello("r", valid(x.player), 0))))
		}, want: "error bad_request", close: 1008},
		{name: "bad room name: space", send: helloWith("a b", valid, 0), want: "error bad_request", close: 1008},
		{name: "bad room name: too long", send: helloWith(strings.Repeat("r", 65), valid, 0), want: "error bad_request", close: 1008},
		{name: "bad room name: empty", send: helloWith("", valid, 0), want: "error bad_request", close: 1008},
		{name: "bad room name: not ASCII", send: helloWith("bärön", valid, 0), want: "error bad_request", close: 1008},
		{name: "since negative", send: helloWith("r", valid, -1), want: "error bad_request", close: 1008},
		{name: "since after the room's seq", send: helloWith("fresh", valid, 5), want: "error bad_request", close: 1008},
		{name: "expired token", send: helloWith("r", signed(secret, "", -time.Second), 0), want: "error unauthorized", close: 1008},
		{name: "forged token", send: helloWith("r", signed([]byte("some other secret of 32 bytes!!!"), "", time.Hour), 0), want: "error unauthorized", close: 1008},
		{name: "wrong-room token", send: helloWith("r", signed(secret, "other", time.Hour), 0), want: "error unauthorized", close: 1008},
		{name: "dev token on a server with a secret", send: helloWith("r", func(p string) string { return "dev:" + p }, 0), want: "error unauthorized", close: 1008},
		{name: "missing token", send: text(`{"type":"hello","room":"r"}`), want: "error unauthorized", close: 1008},
		{name: "oversize first frame", send: text(`{"type":"hello","room":"r","pad":"` + strings.Repeat("x", 5000) + `"}`), close: 1009},

		// After hello.
		{name: "non-JSON", joined: true, send: text(`{"type":`), want: "error bad_request", close: open},
		{name: "two objects in one frame", joined: true, send: text(`{"type":"ping"}{"type":"ping"}`), want: "error bad_request", close: open},
		{name: "missing type", joined: true, send: text(`{"cseq":1,"kind":"attack"}`), want: "error bad_request", close: open},
		{name: "unknown type", joined: true, send: text(`{"type":"dance"}`), want: "error bad_request", close: open},
		{name: "second hello", joined: true, send: helloWith("r", valid, 0), want: "error bad_request", close: open},
		{name: "binary frame", joined: true, send: func(x in) {
			require.NoError(t, x.c.conn.WriteMessage(websocket.BinaryMessage, []byte(attack(1))))
		}, want: "error bad_request", close: open},
		{name: "cseq missing", joined: true, send: text(`{"type":"action","kind":"attack","target":"baron"}`), want: "error bad_request", close: open},
		{name: "cseq zero", joined: true, send: text(attack(0)), want: "error bad_request", close: open},
		{name: "cseq negative", joined: true, send: text(`{"type":"action","cseq":-4,"kind":"attack","target":"baron"}`), want: "error bad_request", close: open},
		{name: "cseq fractional", joined: true, send: text(`{"type":"action","cseq":1.5,"kind":"attack","target":"baron"}`), want: "error bad_request", close: open},
		{name: "cseq a string", joined: true, send: text(`{"type":"action","cseq":"1","kind":"attack","target":"baron"}`), want: "error bad_request", close: open},
		{name: "unknown kind", joined: true, send: text(`{"type":"action","cseq":1,"kind":"dance","target":"baron"}`), want: "reject unknown_kind", close: open},
		{name: "kind missing", joined: true, send: text(`{"type":"action","cseq":1,"target":"baron"}`), want: "reject bad_request", close: open},
		{name: "bad target", joined: true, send: text(`{"type":"action","cseq":1,"kind":"attack","target":"dragon"}`), want: "reject bad_request", close: open},
		{name: "oversize frame", joined: true, send: text(`{"type":"ping","pad":"` + strings.Repeat("x", 5000) + `"}`), close: 1009},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			player := fmt.Sprintf("p%d", i)
			c := h.dial(t)
			defer c.close()
			if tc.joined {
				c.mustSend(hello("r", token(t, player), 0))
				require.Equal(t, "welcome", c.mustRead().Type)
			}
			tc.send(in{c: c, player: player})
			if tc.want != "" {
				f, err := c.readUntil(func(f frame) bool { return f.Type != "event" }, nil)
				require.NoError(t, err)
				assert.Equal(t, tc.want, f.Type+" "+f.Code, "%s", f)
				assert.NotEmpty(t, f.Message, "%s", f)
				if f.Type == "reject" {
					assert.Equal(t, uint64(1), f.CSeq, "a reject names the action's cseq")
				}
			}
			if tc.close == open {
				c.expectOpen()
				return
			}
			assert.Equal(t, tc.close, c.closeCode())
		})
	}

	t.Run("cseq message", func(t *testing.T) {
		c, _ := h.join(t, "r", token(t, "pm"), 0)
		defer c.close()
		c.mustSend(attack(0))
		f, err := c.readUntil(func(f frame) bool { return f.Type == "error" }, nil)
		require.NoError(t, err)
		assert.Equal(t, "field cseq: must be a positive integer", f.Message)
	})
}

func TestRepeatedBadFramesClose1008(t *testing.T) {
	h := startServer(t, harnessConfig{opts: session.Options{MaxBadFrames: 3}})
	c, _ := h.join(t, "r", "dev:p1", 0)
	defer c.close()
	for range 3 {
		c.mustSend(`nope`)
		f, err := c.readUntil(func(f frame) bool { return f.Type == "error" }, nil)
		require.NoError(t, err)
		require.Equal(t, "bad_request", f.Code)
	}
	c.expectOpen()
	c.mustSend(`nope`)
	f, err := c.readUntil(func(f frame) bool { return f.Type == "error" }, nil)
	require.NoError(t, err)
	assert.Equal(t, "bad_request", f.Code)
	assert.Equal(t, 1008, c.closeCode())
	assert.Equal(t, uint64(1), h.srv.Stats().BadFrameCloses)
}

// A refusal whose message is cut to fit a close frame is cut between
// characters: the close reason stays valid UTF-8, so the client reads
// 1008 instead of failing the connection on the close frame itself.
func TestCloseReasonStaysUTF8(t *testing.T) {
	h := startServer(t, harnessConfig{})
	for pad := range 4 { // the cut falls inside the "…" for one of them
		c := h.dial(t)
		c.mustSend(`{"type":"` + strings.Repeat(`\u0001`, 24) + strings.Repeat("a", 8+pad) + `"}`)
		f := c.mustRead()
		assert.Equal(t, "error bad_request", f.Type+" "+f.Code)
		assert.Equal(t, 1008, c.closeCode(), "pad %d", pad)
		c.close()
	}
}

func TestHelloTimeout(t *testing.T) {
	h := startServer(t, harnessConfig{opts: session.Options{HelloTimeout: 200 * time.Millisecond}})
	c := h.dial(t)
	defer c.close()
	f := c.mustRead()
	assert.Equal(t, "error bad_request", f.Type+" "+f.Code)
	assert.Contains(t, f.Message, "no hello within")
	assert.Equal(t, 1008, c.closeCode())
}

func TestPing(t *testing.T) {
	h := startServer(t, harnessConfig{})
	c, _ := h.join(t, "r", "dev:p1", 0)
	defer c.close()
	before := time.Now().UnixNano()
	c.mustSend(`{"type":"ping","t":123}`)
	f, err := c.readUntil(func(f frame) bool { return f.Type == "pong" }, nil)
	require.NoError(t, err)
	assert.JSONEq(t, "123", string(f.T))
	assert.GreaterOrEqual(t, f.Server, before)
	assert.Equal(t, uint64(0), f.Seq, "pong is outside the sequence")
}

func TestRoomFull(t *testing.T) {
	h := startServer(t, harnessConfig{seq: sequencer.Options{MaxPlayers: 2}})
	a, _ := h.join(t, "r", "dev:a", 0)
	defer a.close()
	b, _ := h.join(t, "r", "dev:b", 0)
	defer b.close()
	c := h.dial(t)
	defer c.close()
	c.mustSend(hello("r", "dev:c", 0))
	f := c.mustRead()
	assert.Equal(t, "error room_full", f.Type+" "+f.Code)
	assert.Equal(t, 1013, c.closeCode())
}

func TestMaxConnsPerIP(t *testing.T) {
	// A long hello timeout: b must stay open (waiting for its hello) while a closes.
	h := startServer(t, harnessConfig{opts: session.Options{MaxConnsPerIP: 2, HelloTimeout: time.Minute}})
	a := h.dial(t)
	defer a.close()
	b := h.dial(t)
	defer b.close()
	// A dial returns once the upgrade is done, before the server counts
	// the connection: wait for both, so the third is the one refused.
	checkFor(t, readWait, 10*time.Millisecond, func() error {
		if n := h.srv.Stats().Open; n != 2 {
			return fmt.Errorf("%d open", n)
		}
		return nil
	})
	c := h.dial(t)
	f := c.mustRead()
	assert.Equal(t, "error unavailable", f.Type+" "+f.Code)
	assert.Contains(t, f.Message, "too many connections")
	assert.Equal(t, 1013, c.closeCode())
	c.close()
	assert.Equal(t, uint64(1), h.srv.Stats().RefusedPerIP)

	// A closed connection frees its place.
	a.close()
	checkFor(t, readWait, 10*time.Millisecond, func() error {
		if n := h.srv.Stats().Open; n != 1 {
			return fmt.Errorf("%d open", n)
		}
		return nil
	})
	d, _ := h.join(t, "r", "dev:d", 0)
	d.close()
}

func TestOrigin(t *testing.T) {
	h := startServer(t, harnessConfig{opts: session.Options{AllowOrigins: []string{"https://game.example.com"}}})
	try := func(origin string) int {
		hdr := http.Header{}
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		conn, resp, err := h.dialer().Dial(h.url, hdr)
		if err == nil {
			conn.Close()
		}
		require.NotNil(t, resp)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusSwitchingProtocols, try(""), "non-browser clients send no Origin")
	assert.Equal(t, http.StatusSwitchingProtocols, try(h.ts.URL), "same host")
	assert.Equal(t, http.StatusSwitchingProtocols, try("https://game.example.com"), "allow-listed")
	assert.Equal(t, http.StatusForbidden, try("https://evil.example.com"))
}

func TestRateLimit(t *testing.T) {
	h := startServer(t, harnessConfig{opts: session.Options{RateLimit: 1, RateBurst: 3}})
	c, _ := h.join(t, "r", "dev:p1", 0)
	defer c.close()
	for cseq := uint64(1); cseq <= 5; cseq++ {
		c.mustSend(attack(cseq))
	}
	answers := map[uint64]frame{}
	for len(answers) < 5 {
		f := c.mustAnswer()
		answers[f.CSeq] = f
	}
	for cseq := uint64(1); cseq <= 3; cseq++ {
		assert.Equal(t, "ack", answers[cseq].Type, "within the burst: %s", answers[cseq])
	}
	for cseq := uint64(4); cseq <= 5; cseq++ {
		assert.Equal(t, "reject rate_limited", answers[cseq].Type+" "+answers[cseq].Code)
	}

	// The bucket belongs to the player, not the connection.
	c.close()
	c2, _ := h.join(t, "r", "dev:p1", 0)
	defer c2.close()
	c2.mustSend(attack(6))
	f := c2.mustAnswer()
	assert.Equal(t, "reject rate_limited", f.Type+" "+f.Code, "reconnecting does not refill the bucket")

	c2.mustSend(`{"type":"action","cseq":7,"target":"baron"}`) // no kind: refused before the bucket
	f = c2.mustAnswer()
	require.Equal(t, "reject", f.Type)
	rejects := h.srv.Stats().Rejects
	assert.Equal(t, uint64(3), rejects[session.CodeRateLimited], "every reject frame is counted by its code")
	assert.Equal(t, "bad_request", f.Code, "%s", f)
	assert.Equal(t, uint64(1), rejects[sequencer.CodeBadRequest])
	assert.Zero(t, rejects[sequencer.CodeBusy])
}

// TestResendsPassTheRateLimit: after a reconnect, resends of sequenced
// cseqs get their original seq (dup) even with the player's bucket empty,
// since a reject would say they got none; up to MaxResends of them, and
// new actions stay limited.
func TestResendsPassTheRateLimit(t *testing.T) {
	h := startServer(t, harnessConfig{opts: session.Options{RateLimit: 0.001, RateBurst: 3, MaxResends: 2}})
	c, _ := h.join(t, "r", "dev:p1", 0)
	seqs := map[uint64]uint64{}
	for cseq := uint64(1); cseq <= 3; cseq++ {
		c.mustSend(attack(cseq))
		f := c.mustAnswer()
		require.Equal(t, "ack", f.Type, "%s", f)
		seqs[cseq] = f.Seq
	}
	c.close()

	c2, _ := h.join(t, "r", "dev:p1", 0)
	defer c2.close()
	for cseq := uint64(1); cseq <= 2; cseq++ {
		c2.mustSend(attack(cseq))
		f := c2.mustAnswer()
		assert.Equal(t, fmt.Sprintf("ack %d %d true", cseq, seqs[cseq]), fmt.Sprintf("%s %d %d %v", f.Type, f.CSeq, f.Seq, f.Dup), "%s", f)
	}
	c2.mustSend(attack(3))
	f := c2.mustAnswer()
	assert.Equal(t, "reject rate_limited", f.Type+" "+f.Code, "past MaxResends, a resend is held to the limit: %s", f)
	c2.mustSend(attack(4))
	f = c2.mustAnswer()
	assert.Equal(t, "reject rate_limited", f.Type+" "+f.Code, "a new action stays limited: %s", f)
}

// TestJoinRate: each join logs entries, so a player reconnecting in a loop
// is held to JoinRate/JoinBurst: past them a hello gets error unavailable
// and close 1013, before any entry is logged; other players are not held.
func TestJoinRate(t *testing.T) {
	h := startServer(t, harnessConfig{opts: session.Options{JoinRate: 0.001, JoinBurst: 2}})
	// Two joins, each followed by its leave (logged as the connection
	// ends; waited for, else the second join would replace the first
	// connection and no leave be logged).
	const seq = 4
	for i := range 2 {
		c, _ := h.join(t, "r", "dev:p1", 0)
		c.close()
		checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
			if got, want := h.roomSeq("r"), uint64(2*i+2); got != want {
				return fmt.Errorf("room seq %d, want %d", got, want)
			}
			return nil
		})
	}
	c := h.dial(t)
	defer c.close()
	c.mustSend(hello("r", "dev:p1", 0))
	f := c.mustRead()
	assert.Equal(t, "error unavailable", f.Type+" "+f.Code, "%s", f)
	assert.Contains(t, f.Message, "joining too often")
	assert.Equal(t, 1013, c.closeCode())
	assert.Equal(t, uint64(1), h.srv.Stats().JoinsLimited)
	assert.Equal(t, uint64(seq), h.roomSeq("r"), "the refused hello logged nothing")

	other, _ := h.join(t, "r", "dev:p2", 0)
	other.close()
}

// TestResendsAreEarned: reconnecting does not buy resends past the rate
// limit. A client that pushed the room's last cseq far ahead with one
// admitted action can pass the limit with one "resend", however often it
// reconnects.
func TestResendsAreEarned(t *testing.T) {
	h := startServer(t, harnessConfig{opts: session.Options{RateLimit: 0.001, RateBurst: 1, MaxResends: 50, JoinBurst: 10}})
	c, _ := h.join(t, "r", "dev:p1", 0)
	c.mustSend(attack(1_000_000))
	require.Equal(t, "ack", c.mustAnswer().Type)
	c.close()
	passed, limited := 0, 0
	cseq := uint64(1)
	for range 3 {
		c, _ := h.join(t, "r", "dev:p1", 0)
		for range 5 {
			c.mustSend(attack(cseq))
			cseq++
			if f := c.mustAnswer(); f.Code == "rate_limited" {
				limited++
			} else {
				passed++
			}
		}
		c.close()
	}
	assert.Equal(t, 1, passed, "one admitted action earned one resend")
	assert.Equal(t, 14, limited)
}

func TestReplacedConnectionClosed1000(t *testing.T) {
	h := startServer(t, harnessConfig{})
	old, _ := h.join(t, "r", "dev:p1", 0)
	defer old.close()
	fresh, _ := h.join(t, "r", "dev:p1", 0)
	defer fresh.close()
	assert.Equal(t, 1000, old.closeCode())
	fresh.expectOpen()
}

func TestDevModeAcceptsOnlyDevTokens(t *testing.T) {
	h := startServer(t, harnessConfig{})
	require.True(t, h.srv.DevMode())
	c, w := h.join(t, "r", "dev:p1", 0)
	defer c.close()
	assert.Equal(t, "p1", w.Player)
	assert.Equal(t, "r", w.Room)
	assert.NotEmpty(t, w.State, "since 0: the welcome carries the state")

	d := h.dial(t)
	defer d.close()
	d.mustSend(hello("r", token(t, "p2"), 0))
	f := d.mustRead()
	assert.Equal(t, "error unauthorized", f.Type+" "+f.Code)
	assert.Equal(t, 1008, d.closeCode())
}

// TestDupCSeq: a resent cseq gets its original seq with dup, and no event.
func TestDupCSeq(t *testing.T) {
	h := startServer(t, harnessConfig{})
	c, _ := h.join(t, "r", "dev:p1", 0)
	defer c.close()
	isAnswer := func(f frame) bool { return f.Type == "ack" || f.Type == "reject" }
	var events []frame

	c.mustSend(attack(1))
	a1, err := c.readUntil(isAnswer, &events)
	require.NoError(t, err)
	require.Equal(t, "ack", a1.Type, "%s", a1)
	assert.False(t, a1.Dup)

	c.mustSend(attack(1))
	dup, err := c.readUntil(isAnswer, &events)
	require.NoError(t, err)
	assert.Equal(t, `{"type":"ack","cseq":1,"seq":`+fmt.Sprint(a1.Seq)+`,"dup":true}`, dup.String())

	c.mustSend(attack(2))
	a2, err := c.readUntil(isAnswer, &events)
	require.NoError(t, err)
	require.Equal(t, "ack", a2.Type, "%s", a2)
	assert.Equal(t, a1.Seq+1, a2.Seq, "the resend took no seq")

	c.mustSend(attack(1))
	old, err := c.readUntil(isAnswer, &events)
	require.NoError(t, err)
	assert.Equal(t, "ack", old.Type)
	assert.True(t, old.Dup, "an older cseq in the window is a dup too")
	assert.Equal(t, a1.Seq, old.Seq)

	// The room publishes a batch's events before it answers its actions.
	require.NotEmpty(t, events)
	assert.Equal(t, a2.Seq, events[len(events)-1].Seq)
	n := 0
	for _, rec := range h.logRecords("r") {
		if ev := decodeEvent(t, rec.Event); ev.Player == "p1" && ev.CSeq == 1 {
			n++
			assert.Equal(t, a1.Seq, ev.Seq)
		}
	}
	assert.Equal(t, 1, n, "cseq 1 is in the log once")
	for _, ev := range events {
		if ev.Seq > a1.Seq {
			assert.NotEqual(t, uint64(1), ev.CSeq, "no event for a resend: %s", ev)
		}
	}
}

// TestFiftyClients: 50 clients attack one room together. Every client
// sees the same gapless events (byte for byte what the log holds), exactly
// one last hit, and every ack names the sender's own event.
func TestFiftyClients(t *testing.T) {
	const (
		clients = 50
		attacks = 3 // 150 attacks of at least 300 damage: at least one kill
		room    = "arena"
	)
	h := startServer(t, harnessConfig{opts: session.Options{DisableRateLimit: true}})
	cs := make([]*client, clients)
	welcomes := make([]frame, clients)
	for i := range cs {
		cs[i], welcomes[i] = h.join(t, room, fmt.Sprintf("dev:p%02d", i), 0)
		defer cs[i].close()
	}

	type result struct {
		events []frame
		acks   []frame
		err    error
	}
	results := make([]result, clients)
	last := make(chan uint64)
	var acked, wg sync.WaitGroup
	acked.Add(clients)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			fail := func(err error) {
				r.err = err
				acked.Done()
			}
			for cseq := uint64(1); cseq <= attacks; cseq++ {
				if err := c.send(attack(cseq)); err != nil {
					fail(err)
					return
				}
			}
			for len(r.acks) < attacks {
				f, err := c.readUntil(func(f frame) bool { return f.Type != "event" }, &r.events)
				if err != nil {
					fail(err)
					return
				}
				if f.Type != "ack" {
					fail(fmt.Errorf("unexpected %s", f))
					return
				}
				r.acks = append(r.acks, f)
			}
			acked.Done()
			end := <-last
			if len(r.events) > 0 && r.events[len(r.events)-1].Seq >= end {
				return
			}
			_, r.err = c.readUntil(func(f frame) bool { return f.Type == "event" && f.Seq >= end }, &r.events)
		}()
	}
	acked.Wait()
	end := h.roomSeq(room)
	for range clients {
		last <- end
	}
	wg.Wait()

	recs := h.logRecords(room)
	require.Len(t, recs, int(end))
	bySeq := func(seq uint64) []byte { return recs[seq-1].Event }
	kills := 0
	for _, rec := range recs {
		ev := decodeEvent(t, rec.Event)
		var res attackResult
		if ev.Kind == "attack" && assert.NoError(t, json.Unmarshal(ev.Result, &res)) && res.LastHit {
			kills++
		}
	}
	require.Equal(t, 1, kills, "exactly one last hit in the log")

	for i, r := range results {
		require.NoError(t, r.err, "client %d", i)
		evs := r.events
		require.NotEmpty(t, evs, "client %d", i)
		lastHits := 0
		for k, ev := range evs {
			want := welcomes[i].Seq + 1 + uint64(k)
			require.Equal(t, want, ev.Seq, "client %d: events are gapless and in order", i)
			require.Equal(t, string(bySeq(ev.Seq)), string(ev.raw), "client %d: event bytes are the log's", i)
			if strings.Contains(string(ev.raw), `"last_hit":true`) {
				lastHits++
			}
		}
		assert.Equal(t, end, evs[len(evs)-1].Seq)
		assert.Equal(t, 1, lastHits, "client %d sees exactly one last hit", i)
		player := fmt.Sprintf("p%02d", i)
		for _, a := range r.acks {
			ev := decodeEvent(t, bySeq(a.Seq))
			assert.Equal(t, player, ev.Player, "ack seq %d names the sender's event", a.Seq)
			assert.Equal(t, a.CSeq, ev.CSeq, "ack seq %d names the sender's event", a.Seq)
		}
	}
}
