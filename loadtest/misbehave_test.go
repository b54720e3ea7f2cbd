package loadtest

// A small protocol-v1 server that can misbehave in chosen ways, and the
// load test's verdict on each way: a violation where an invariant broke,
// none where the protocol allows it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeOpts struct {
	mute     func(player string) bool // never send this player events (acks still flow)
	ackFirst bool                     // send the ack before the event
	downFor  time.Duration            // answer 503 to the handshake for this long
	redirect bool                     // answer every hello with a redirect to itself
}

type fakeConn struct {
	ws     *websocket.Conn
	player string
}

type fakeServer struct {
	opts    fakeOpts
	start   time.Time
	url     string
	dials   atomic.Int64
	mu      sync.Mutex
	seq     uint64
	hp      int64
	log     [][]byte
	last    map[string]uint64            // player → last sequenced cseq
	seqOf   map[string]map[uint64]uint64 // player → cseq → seq
	members map[*fakeConn]bool
}

func newFake(t *testing.T, o fakeOpts) *fakeServer {
	s := &fakeServer{opts: o, start: time.Now(), hp: 1_000_000,
		last: map[string]uint64{}, seqOf: map[string]map[uint64]uint64{}, members: map[*fakeConn]bool{}}
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(hs.Close)
	s.url = "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
	return s
}

func (s *fakeServer) write(c *fakeConn, b []byte) {
	_ = c.ws.WriteMessage(websocket.TextMessage, b)
}

func (s *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	s.dials.Add(1)
	if time.Since(s.start) < s.opts.downFor {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	var hello struct {
		Room, Token string
		Since       uint64
	}
	if _, b, err := ws.ReadMessage(); err != nil || json.Unmarshal(b, &hello) != nil {
		return
	}
	if s.opts.redirect {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"redirect","url":"`+s.url+`"}`))
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1012, "redirect"), time.Now().Add(time.Second))
		return
	}
	c := &fakeConn{ws: ws, player: strings.TrimPrefix(hello.Token, "dev:")}
	s.mu.Lock()
	if hello.Since == 0 {
		s.write(c, fmt.Appendf(nil, `{"type":"welcome","room":%q,"player":%q,"seq":%d,"epoch":1,"state":{"baron_hp":%d,"alive":true}}`, hello.Room, c.player, s.seq, s.hp))
	} else {
		s.write(c, fmt.Appendf(nil, `{"type":"welcome","room":%q,"player":%q,"seq":%d,"epoch":1}`, hello.Room, c.player, s.seq))
		if s.opts.mute == nil || !s.opts.mute(c.player) {
			for _, ev := range s.log[hello.Since:] {
				s.write(c, ev)
			}
		}
	}
	s.members[c] = true
	s.mu.Unlock()
	defer func() { s.mu.Lock(); delete(s.members, c); s.mu.Unlock() }()
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var f struct {
			Type string
			CSeq uint64
			T    int64
		}
		if json.Unmarshal(b, &f) != nil {
			return
		}
		s.mu.Lock()
		switch f.Type {
		case "ping":
			s.write(c, fmt.Appendf(nil, `{"type":"pong","t":%d,"server":1}`, f.T))
		case "action":
			if f.CSeq <= s.last[c.player] {
				s.write(c, fmt.Appendf(nil, `{"type":"ack","cseq":%d,"seq":%d,"dup":true}`, f.CSeq, s.seqOf[c.player][f.CSeq]))
				break
			}
			s.seq++
			s.hp -= 100
			s.last[c.player] = f.CSeq
			if s.seqOf[c.player] == nil {
				s.seqOf[c.player] = map[uint64]uint64{}
			}
			s.seqOf[c.player][f.CSeq] = s.seq
			ev := fmt.Appendf(nil, `{"type":"event","seq":%d,"at":%d,"player":%q,"cseq":%d,"kind":"attack","target":"baron","result":{"damage":100,"baron_hp":%d,"last_hit":false}}`,
				s.seq, s.seq, c.player, f.CSeq, s.hp)
			s.log = append(s.log, ev)
			ack := fmt.Appendf(nil, `{"type":"ack","cseq":%d,"seq":%d}`, f.CSeq, s.seq)
			if s.opts.ackFirst {
				s.write(c, ack)
			}
			for m := range s.members {
				if s.opts.mute == nil || !s.opts.mute(m.player) {
					s.write(m, ev)
				}
			}
			if !s.opts.ackFirst {
				s.write(c, ack)
			}
		}
		s.mu.Unlock()
	}
}

func runFake(t *testing.T, cfg Config) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg)
	require.NoError(t, err)
	var b strings.Builder
	_ = rep.WriteSummary(&b)
	t.Logf("\n%s", b.String())
	return rep
}

// The control: the fake server, behaving, passes.
func TestFakeServerBehaving(t *testing.T) {
	s := newFake(t, fakeOpts{})
	rep := runFake(t, Config{URLs: []string{s.url}, Bots: 2, Rooms: 1, Rate: 20, Duration: time.Second, Drain: time.Second, Scenario: ScenarioMixed})
	assert.Zero(t, rep.Violations, rep.ViolationSamples)
	assert.Zero(t, rep.Totals.UnverifiedAcks)
	assert.Positive(t, rep.EventLatencyMS.Count)
}

// A server that acks every action and delivers no event fails the run:
// the acked entries never reached the bots that stayed connected.
func TestAcksWithoutEventsAreViolations(t *testing.T) {
	s := newFake(t, fakeOpts{mute: func(string) bool { return true }})
	dir := t.TempDir()
	path := filepath.Join(dir, "r.json")
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"--url", s.url, "--bots", "2", "--rooms", "1", "--rate", "20",
		"--duration", "1s", "--drain", "500ms", "--json", path}, &out, &errb)
	t.Logf("exit %d\n%s%s", code, out.String(), errb.String())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var rep Report
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Positive(t, rep.Totals.Acked)
	assert.Zero(t, rep.Totals.EventsDelivered, "the server sent no event")
	assert.Positive(t, rep.Violations, "acked actions whose events never came: want a violation")
	assert.Equal(t, ExitViolation, code, "want a non-zero exit status")
}

// One member silently gets no events (its acks still come) while the other
// bot of its room sees the whole stream: a violation for each of its acks.
func TestMutedMemberIsAViolation(t *testing.T) {
	var player1 string
	s := newFake(t, fakeOpts{mute: func(p string) bool { return p == player1 }})
	cfg := Config{URLs: []string{s.url}, Bots: 2, Rooms: 1, Rate: 20, Duration: time.Second, Drain: 500 * time.Millisecond, RunID: "audit"}
	player1 = cfg.playerName(1)
	rep := runFake(t, cfg)
	assert.Positive(t, rep.Violations)
	assert.Equal(t, rep.Violations, rep.ViolationsByKind[vAckNoEvent], "%v", rep.ViolationSamples)
	assert.Less(t, rep.Violations, rep.Totals.Acked, "bot 0's acks are fine")
}

// Acks sent before their events (PROTOCOL.md does not order them) are no
// violation, and the events' latency is still recorded.
func TestAckBeforeEventKeepsEventLatency(t *testing.T) {
	s := newFake(t, fakeOpts{ackFirst: true})
	rep := runFake(t, Config{URLs: []string{s.url}, Bots: 2, Rooms: 1, Rate: 20, Duration: time.Second, Drain: time.Second})
	assert.Zero(t, rep.Violations, rep.ViolationSamples)
	assert.Positive(t, rep.Totals.EventsDelivered)
	assert.Positive(t, rep.EventLatencyMS.Count, "every action's own event arrived, yet no event latency was recorded")
}

// A server that comes up 1.5s after the load test starts is waited for,
// within ConnectTimeout (10s): failed dials are a note, not a verdict.
func TestSlowServerIsWaitedFor(t *testing.T) {
	s := newFake(t, fakeOpts{downFor: 1500 * time.Millisecond})
	t0 := time.Now()
	rep, err := Run(context.Background(), Config{URLs: []string{s.url}, Bots: 4, Rooms: 2, Rate: 10,
		Duration: time.Second, Drain: 500 * time.Millisecond, ConnectTimeout: 10 * time.Second})
	t.Logf("after %v: err %v", time.Since(t0), err)
	require.NoError(t, err, "the server was up 1.5s in, well within ConnectTimeout")
	assert.Equal(t, 4, rep.BotsJoined)
}

// Redirects in a row back off: a server that redirects to itself (or two
// that disagree on the owner for a moment) is not dialed in a loop.
func TestRedirectLoopBacksOff(t *testing.T) {
	s := newFake(t, fakeOpts{redirect: true})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(time.Second); cancel() }()
	_, err := Run(ctx, Config{URLs: []string{s.url}, Bots: 1, Rooms: 1, ConnectTimeout: 5 * time.Second})
	t.Logf("err %v, dials in 1s by one bot: %d", err, s.dials.Load())
	assert.Less(t, s.dials.Load(), int64(20), "one bot should back off between redirects")
}

// A second last hit in one life is caught whatever HP it reports, -1
// included (once the decoder's mark for "no baron_hp").
func TestSecondLastHitAnyHP(t *testing.T) {
	for _, hp := range []int64{-2, -1} {
		t.Run(fmt.Sprint(hp), func(t *testing.T) {
			rig := newCheckRig(64)
			rig.run(t, steps(welcomeState(0, 0, 1, 1000),
				hit(0, 1, "x", 1, 1000, 0),
				frame(0, `{"type":"event","seq":2,"at":2,"player":"y","cseq":1,"kind":"attack","target":"baron","result":{"damage":%d,"baron_hp":%d,"last_hit":true}}`, -hp, hp)))
			_, kinds, samples := rig.v.snapshot()
			assert.Positive(t, kinds[vLastHit], "two last hits in one life; samples %q", samples)
		})
	}
}

// One (player, cseq) sequenced twice is caught by the room, not only by
// the player's own bot: here that bot skipped the first event (a welcome
// with state), and the other bot sees both.
func TestDoubleApplySeenByAnotherBot(t *testing.T) {
	rig := newCheckRig(64)
	rig.run(t, steps(
		both(func(b int) step { return welcomeState(b, 0, 1, 1000) }),
		send(0), lost(0),
		hit(1, 1, "p0", 1, 100, 900), // p1 sees p0's cseq 1 at seq 1
		welcomeState(0, 1, 1, 900), resend(0),
		both(func(b int) step { return hit(b, 2, "p0", 1, 100, 800) }), // and again at seq 2
		ack(0, 1, 2, false),
	))
	_, kinds, samples := rig.v.snapshot()
	assert.Positive(t, kinds[vTwice], "p1's stream holds p0 cseq 1 at seq 1 and at seq 2; samples %q", samples)
}

// A resume welcomed at seq 1 by a room that had acked this bot's action
// at seq 3 has lost an acked entry: welcome_behind.
func TestWelcomeBehindAnAck(t *testing.T) {
	rig := newCheckRig(64)
	rig.run(t, steps(welcomeState(0, 0, 1, 1000), join(0, 1, "a"),
		send(0), ack(0, 1, 3, false), lost(0), welcomeResume(0, 1)))
	rig.bots[0].finish()
	_, kinds, samples := rig.v.snapshot()
	t.Logf("unverified %d", rig.st.counts[cUnverified].Load())
	assert.Positive(t, kinds[vWelcomeBehind], "the room's seq went back below an acked seq; samples %q", samples)
}

// --scenario mixed with the default --rooms (rooms of two) has all three
// kinds of bot.
func TestMixedDefaultHasEveryKind(t *testing.T) {
	cfg, err := parseFlags([]string{"--url", "ws://127.0.0.1:1/ws", "--bots", "10", "--scenario", "mixed"}, &bytes.Buffer{})
	require.NoError(t, err)
	cfg.setDefaults()
	kinds := map[Scenario]int{}
	for i := range cfg.Bots {
		kinds[cfg.behaviour(i)]++
	}
	t.Logf("rooms %d, kinds %v", cfg.Rooms, kinds)
	assert.Positive(t, kinds[ScenarioReconnect], "mixed: all three")
}

// A welcome must be for the room and player the hello asked for.
func TestWelcomeForAnotherRoomOrPlayer(t *testing.T) {
	for _, w := range []string{
		`{"type":"welcome","room":"elsewhere","player":"p0","seq":0,"epoch":1,"state":{"baron_hp":1000,"alive":true}}`,
		`{"type":"welcome","room":"r","player":"p1","seq":0,"epoch":1,"state":{"baron_hp":1000,"alive":true}}`,
	} {
		rig := newCheckRig(64)
		rig.run(t, steps(frame(0, "%s", w)))
		_, kinds, samples := rig.v.snapshot()
		assert.Equal(t, uint64(1), kinds[vProtocol], "%s: %q", w, samples)
	}
	rig := newCheckRig(64)
	rig.run(t, steps(welcomeState(0, 0, 1, 1000)))
	assert.Zero(t, rig.v.total())
}
