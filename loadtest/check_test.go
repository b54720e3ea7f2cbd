package loadtest

import (
	"fmt"
	"hash/maphash"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A check scenario is a list of steps, each for one of the room's bots
// (p0, p1): a frame the server sent it, or something the bot did.
type step struct {
	bot   int
	do    string // "send", "lost" (connection ended), "resend"; "" for a frame
	frame string
}

func frame(bot int, f string, args ...any) step {
	return step{bot: bot, frame: fmt.Sprintf(f, args...)}
}
func send(bot int) step    { return step{bot: bot, do: "send"} }
func lost(bot int) step    { return step{bot: bot, do: "lost"} }
func refused(bot int) step { return step{bot: bot, do: "refused"} }
func resend(bot int) step  { return step{bot: bot, do: "resend"} }

func welcomeState(bot int, seq uint64, epoch uint64, hp int64) step {
	return frame(bot, `{"type":"welcome","room":"r","player":"p%d","seq":%d,"epoch":%d,"state":{"baron_hp":%d,"alive":%v,"kills":0,"players":[]}}`,
		bot, seq, epoch, hp, hp > 0)
}

func welcomeResume(bot int, seq uint64) step {
	return frame(bot, `{"type":"welcome","room":"r","player":"p%d","seq":%d,"epoch":1}`, bot, seq)
}

func hit(bot int, seq uint64, player string, cseq uint64, damage, hp int64) step {
	return frame(bot, `{"type":"event","seq":%d,"at":%d,"player":%q,"cseq":%d,"kind":"attack","target":"baron","result":{"damage":%d,"baron_hp":%d,"last_hit":%v}}`,
		seq, 1000+seq, player, cseq, damage, hp, hp == 0)
}

func dead(bot int, seq uint64, player string, cseq uint64) step {
	return frame(bot, `{"type":"event","seq":%d,"at":%d,"player":%q,"cseq":%d,"kind":"attack","target":"baron","result":{"ok":false,"reason":"target_dead"}}`,
		seq, 1000+seq, player, cseq)
}

func respawn(bot int, seq uint64, hp int64) step {
	return frame(bot, `{"type":"event","seq":%d,"at":%d,"player":"","cseq":0,"kind":"respawn","target":"baron","result":{"ok":true,"baron_hp":%d}}`,
		seq, 1000+seq, hp)
}

func join(bot int, seq uint64, player string) step {
	return frame(bot, `{"type":"event","seq":%d,"at":%d,"player":"","cseq":0,"kind":"join","target":%q,"result":{"ok":true,"team":"blue"}}`,
		seq, 1000+seq, player)
}

func ack(bot int, cseq, seq uint64, dup bool) step {
	if dup {
		return frame(bot, `{"type":"ack","cseq":%d,"seq":%d,"dup":true}`, cseq, seq)
	}
	return frame(bot, `{"type":"ack","cseq":%d,"seq":%d}`, cseq, seq)
}

func reject(bot int, cseq uint64, code string) step {
	return frame(bot, `{"type":"reject","cseq":%d,"code":%q,"message":"no"}`, cseq, code)
}

// both gives the same frame to p0 and p1.
func both(mk func(bot int) step) []step { return []step{mk(0), mk(1)} }

func steps(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			out = append(out, p)
		case []step:
			out = append(out, p...)
		default:
			panic(fmt.Sprintf("steps: %T", p))
		}
	}
	return out
}

type checkRig struct {
	v     *violations
	room  *roomCheck
	st    *shard
	bots  []*ledger
	since []uint64
	seed  maphash.Seed
	now   time.Time
}

func newCheckRig(window int) *checkRig {
	r := &checkRig{v: newViolations(), st: newShard(), seed: maphash.MakeSeed(), now: time.Unix(1000, 0)}
	r.room = newRoomCheck("r", window, r.v)
	for i := range 2 {
		r.bots = append(r.bots, newLedger(fmt.Sprintf("p%d", i), 500, r.room, r.v, r.st))
		r.since = append(r.since, 0)
	}
	return r
}

func (r *checkRig) run(t *testing.T, ss []step) {
	t.Helper()
	var dec frameDecoder
	for i, s := range ss {
		r.now = r.now.Add(time.Millisecond)
		l := r.bots[s.bot]
		switch s.do {
		case "send":
			l.send(r.now)
		case "lost":
			l.disconnected()
			r.since[s.bot] = l.lastSeq
		case "resend":
			l.resend()
		case "refused":
			l.refusedSince(r.since[s.bot], "field since: after the room's last seq")
		case "":
			var f serverFrame
			require.NoError(t, dec.decode([]byte(s.frame), &f), "step %d", i)
			switch f.Type {
			case frameWelcome:
				l.welcome(&f, r.since[s.bot])
			case frameEvent:
				l.event(&f, maphash.Bytes(r.seed, []byte(s.frame)), r.now)
			case frameAck:
				l.ack(&f, r.now)
			case frameReject:
				l.reject(&f)
			default:
				t.Fatalf("step %d: frame type %q", i, f.Type)
			}
		default:
			t.Fatalf("step %d: %q", i, s.do)
		}
	}
}

func TestChecks(t *testing.T) {
	start := both(func(b int) step { return welcomeState(b, 0, 1, 1000) })
	tests := []struct {
		name  string
		steps []step
		want  map[string]uint64 // violations by kind; nil: none
		kills uint64
	}{
		{
			name: "a clean life",
			steps: steps(start,
				send(0), both(func(b int) step { return hit(b, 1, "p0", 1, 400, 600) }), ack(0, 1, 1, false),
				send(1), both(func(b int) step { return hit(b, 2, "p1", 1, 600, 0) }), ack(1, 1, 2, false),
				send(0), both(func(b int) step { return dead(b, 3, "p0", 2) }), ack(0, 2, 3, false),
				both(func(b int) step { return respawn(b, 4, 1000) }),
				send(1), both(func(b int) step { return hit(b, 5, "p1", 2, 300, 700) }), ack(1, 2, 5, false),
			),
			kills: 1,
		},
		{
			name:  "gap",
			steps: steps(welcomeState(0, 0, 1, 1000), join(0, 1, "p0"), join(0, 3, "p1")),
			want:  map[string]uint64{vGap: 1},
		},
		{
			name:  "duplicate event",
			steps: steps(welcomeState(0, 0, 1, 1000), join(0, 1, "p0"), join(0, 1, "p0")),
			want:  map[string]uint64{vDuplicate: 1},
		},
		{
			name: "bots disagree on a seq",
			steps: steps(start, send(0),
				hit(0, 1, "p0", 1, 400, 600), hit(1, 1, "p0", 1, 401, 599)),
			want: map[string]uint64{vMismatch: 1},
		},
		{
			name: "two last hits in one life",
			steps: steps(welcomeState(0, 0, 1, 1000), join(0, 1, "p1"),
				hit(0, 2, "p1", 1, 1000, 0), hit(0, 3, "p1", 2, 0, 0)),
			want:  map[string]uint64{vLastHit: 1},
			kills: 2,
		},
		{
			name:  "respawn of a living Baron",
			steps: steps(welcomeState(0, 0, 1, 1000), hit(0, 1, "p1", 1, 400, 600), respawn(0, 2, 1000)),
			want:  map[string]uint64{vLastHit: 1},
		},
		{
			name:  "HP does not add up",
			steps: steps(welcomeState(0, 0, 1, 1000), hit(0, 1, "p1", 1, 400, 500)),
			want:  map[string]uint64{vBaron: 1},
		},
		{
			name: "last_hit flag disagrees with HP",
			steps: steps(welcomeState(0, 0, 1, 1000),
				frame(0, `{"type":"event","seq":1,"at":1,"player":"p1","cseq":1,"kind":"attack","target":"baron","result":{"damage":1000,"baron_hp":0,"last_hit":false}}`)),
			want: map[string]uint64{vLastHit: 1},
		},
		{
			name:  "target_dead while alive",
			steps: steps(welcomeState(0, 0, 1, 1000), dead(0, 1, "p1", 1)),
			want:  map[string]uint64{vBaron: 1},
		},
		{
			name:  "welcome state disagrees with the events",
			steps: steps(welcomeState(0, 0, 1, 1000), hit(0, 1, "p0x", 1, 400, 600), welcomeState(1, 1, 1, 700)),
			want:  map[string]uint64{vBaron: 1},
		},
		{
			name:  "ack names another player's event",
			steps: steps(start, send(0), both(func(b int) step { return hit(b, 1, "p1", 1, 100, 900) }), ack(0, 1, 1, false)),
			want:  map[string]uint64{vAckWrongEvent: 1, vUnknownCSeq: 1},
		},
		{
			name:  "ack before its event, then the event",
			steps: steps(start, send(0), ack(0, 1, 1, false), hit(0, 1, "p0", 1, 100, 900)),
		},
		{
			name:  "ack before an event that is not its own",
			steps: steps(start, send(0), send(1), ack(0, 1, 1, false), hit(0, 1, "p1", 1, 100, 900)),
			want:  map[string]uint64{vAckWrongEvent: 1},
		},
		{
			name:  "ack names a seq other than its event's",
			steps: steps(start, send(0), hit(0, 1, "p0", 1, 100, 900), ack(0, 1, 2, false)),
			want:  map[string]uint64{vAckWrongEvent: 1},
		},
		{
			name:  "dup ack for an action sent once",
			steps: steps(start, send(0), hit(0, 1, "p0", 1, 100, 900), ack(0, 1, 1, true)),
			want:  map[string]uint64{vDupNotResent: 1},
		},
		{
			name: "resend after a reconnect, answered dup",
			steps: steps(start, send(0), send(0), hit(0, 1, "p0", 1, 100, 900),
				lost(0), welcomeResume(0, 2), resend(0), hit(0, 2, "p0", 2, 100, 800),
				ack(0, 1, 1, true), ack(0, 2, 2, true)),
		},
		{
			name: "resend after a reconnect whose welcome has the state",
			steps: steps(start, send(0), lost(0), hit(1, 1, "p0", 1, 100, 900),
				welcomeState(0, 1, 1, 900), resend(0), ack(0, 1, 1, true)),
		},
		{
			name:  "ack of nothing in flight",
			steps: steps(start, ack(0, 5, 1, false)),
			want:  map[string]uint64{vUnexpected: 1},
		},
		{
			name:  "reject of nothing in flight",
			steps: steps(start, reject(0, 5, "busy")),
			want:  map[string]uint64{vUnexpected: 1},
		},
		{
			name:  "one cseq sequenced twice",
			steps: steps(start, send(0), hit(0, 1, "p0", 1, 100, 900), hit(0, 2, "p0", 1, 100, 800)),
			want:  map[string]uint64{vTwice: 1},
		},
		{
			name:  "a rejected action sequenced",
			steps: steps(start, send(0), reject(0, 1, "busy"), hit(0, 1, "p0", 1, 100, 900)),
			want:  map[string]uint64{vRejectedSeq: 1},
		},
		{
			name:  "a reject after the action's event",
			steps: steps(start, send(0), hit(0, 1, "p0", 1, 100, 900), reject(0, 1, "unavailable")),
			want:  map[string]uint64{vRejectedSeq: 1},
		},
		{
			name:  "an own event never sent",
			steps: steps(start, hit(0, 1, "p0", 7, 100, 900)),
			want:  map[string]uint64{vUnknownCSeq: 1},
		},
		{
			name: "the room went back",
			steps: steps(welcomeState(0, 0, 1, 1000), join(0, 1, "a"), join(0, 2, "b"), join(0, 3, "c"),
				lost(0), welcomeState(0, 2, 1, 1000)),
			want: map[string]uint64{vWelcomeBehind: 1},
		},
		{
			name: "a resume refused: the room lost events the bot had",
			steps: steps(welcomeState(0, 0, 1, 1000), join(0, 1, "a"), join(0, 2, "b"),
				lost(0), refused(0)),
			want: map[string]uint64{vWelcomeBehind: 1},
		},
		{
			name:  "epoch went back",
			steps: steps(welcomeState(0, 0, 3, 1000), lost(0), welcomeResume(0, 0)),
			want:  map[string]uint64{vEpochBackwards: 1},
		},
		{
			name:  "event before welcome",
			steps: steps(join(0, 1, "p0")),
			want:  map[string]uint64{vProtocol: 1},
		},
		{
			name: "resume through history",
			steps: steps(welcomeState(0, 0, 1, 1000), join(0, 1, "a"), lost(0),
				welcomeResume(0, 3), join(0, 2, "b"), join(0, 3, "c"), join(0, 4, "d")),
		},
		{
			name: "a bot that skipped ahead does not break the room's life",
			steps: steps(welcomeState(0, 0, 1, 1000), hit(0, 1, "x", 1, 400, 600),
				welcomeState(1, 5, 1, 200), hit(1, 6, "x", 5, 200, 0),
				hit(0, 2, "x", 2, 100, 500)),
			kills: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newCheckRig(64)
			rig.run(t, tt.steps)
			count, kinds, samples := rig.v.snapshot()
			want := tt.want
			if want == nil {
				want = map[string]uint64{}
			}
			assert.Equal(t, want, kinds, "samples: %q", samples)
			var sum uint64
			for _, n := range want {
				sum += n
			}
			assert.Equal(t, sum, count)
			kills, _ := rig.room.stats()
			assert.Equal(t, tt.kills, kills)
		})
	}
}

func TestRoomRingCountsEventsTooOldToCompare(t *testing.T) {
	rig := newCheckRig(4)
	ss := steps(both(func(b int) step { return welcomeState(b, 0, 1, 1000) }))
	for seq := uint64(1); seq <= 10; seq++ {
		ss = append(ss, join(0, seq, "x"))
	}
	for seq := uint64(1); seq <= 10; seq++ {
		ss = append(ss, join(1, seq, "x"))
	}
	rig.run(t, ss)
	assert.Zero(t, rig.v.total())
	_, unchecked := rig.room.stats()
	assert.Equal(t, uint64(6), unchecked, "seqs 1-6 were evicted by 7-10 before p1 saw them")
}

func TestLedgerCountsAndLatencies(t *testing.T) {
	rig := newCheckRig(64)
	rig.run(t, steps(
		welcomeState(0, 0, 1, 1000),
		send(0), send(0), send(0),
		hit(0, 1, "p0", 1, 100, 900), ack(0, 1, 1, false),
		reject(0, 2, "busy"),
		hit(0, 2, "p0", 3, 100, 800),
	))
	l := rig.bots[0]
	assert.Equal(t, 1, l.inFlight())
	assert.False(t, l.settled())
	rig.run(t, steps(ack(0, 3, 2, false)))
	assert.True(t, l.settled())
	assert.Equal(t, uint64(3), rig.st.counts[cSent].Load())
	assert.Equal(t, uint64(2), rig.st.counts[cAcked].Load())
	assert.Equal(t, uint64(1), rig.st.counts[cRejected].Load())
	assert.Equal(t, uint64(2), rig.st.counts[cEvents].Load())
	assert.Equal(t, int64(2), rig.st.hists[metricAck].TotalCount())
	assert.Equal(t, int64(2), rig.st.hists[metricEvent].TotalCount())
	assert.Zero(t, rig.v.total())
}

func TestLedgerFollowsBaronForContestedBots(t *testing.T) {
	rig := newCheckRig(64) // lowHP 500
	l := rig.bots[0]
	rig.run(t, steps(welcomeState(0, 0, 1, 1000), hit(0, 1, "x", 1, 400, 600)))
	assert.Zero(t, l.lowSince)
	rig.run(t, steps(hit(0, 2, "x", 2, 200, 400), hit(0, 3, "x", 3, 100, 300)))
	assert.Equal(t, uint64(2), l.lowSince, "low since the event that crossed LowHP")
	rig.run(t, steps(hit(0, 4, "x", 4, 300, 0)))
	assert.Zero(t, l.lowSince)
	assert.False(t, l.alive)
	rig.run(t, steps(respawn(0, 5, 1000)))
	assert.True(t, l.alive)
	assert.Equal(t, int64(1000), l.hp)
}

func TestDecodeFrame(t *testing.T) {
	var (
		d frameDecoder
		f serverFrame
	)
	require.NoError(t, d.decode([]byte(`{"type":"event","seq":3,"at":9,"player":"p","cseq":2,"kind":"join","target":"p","result":{"ok":true,"team":"red"}}`), &f))
	assert.Equal(t, int64(noHP), f.Result.BaronHP, "no baron_hp in the result")
	assert.False(t, f.Result.isHit())
	require.NoError(t, d.decode([]byte(`{"type":"event","seq":4,"player":"p","cseq":3,"kind":"attack","result":{"damage":5,"baron_hp":0,"last_hit":true}}`), &f))
	assert.True(t, f.Result.isHit())
	assert.True(t, f.Result.LastHit)
	for _, bad := range []string{`nope`, `{}`, `{"type":"event"}`, `{"type":"ack","seq":1}`, `[1]`} {
		assert.Error(t, d.decode([]byte(bad), &f), bad)
	}
	require.NoError(t, d.decode([]byte(`{"type":"welcome","seq":1,"epoch":1,"state":null}`), &f))
	assert.False(t, f.hasState())
	hp, alive, ok := welcomeBaron([]byte(`{"baron_hp":0,"alive":false}`))
	assert.Equal(t, []any{int64(0), false, true}, []any{hp, alive, ok})
	_, _, ok = welcomeBaron([]byte(`{"score":1}`))
	assert.False(t, ok)
}

func TestClientFrames(t *testing.T) {
	assert.JSONEq(t, `{"type":"action","cseq":12,"kind":"attack","target":"baron"}`, string(appendAction(nil, 12)))
	assert.JSONEq(t, `{"type":"ping","t":5}`, string(appendPing(nil, 5)))
	assert.JSONEq(t, `{"type":"hello","room":"r1","token":"dev:p\"1","since":7}`, string(encodeHello("r1", `dev:p"1`, 7)))
	assert.Equal(t, "dev:p1", joinToken(nil, "p1", "r1", time.Now()))
}

func TestRoomBurstAt(t *testing.T) {
	r := newRoom(newRoomCheck("r", 8, newViolations()))
	t0 := time.Unix(100, 0)
	assert.Equal(t, t0, r.burstAt(7, t0))
	assert.Equal(t, t0, r.burstAt(7, t0.Add(time.Second)), "the first bot sets the time")
	assert.Equal(t, t0.Add(time.Second), r.burstAt(9, t0.Add(time.Second)))
}
