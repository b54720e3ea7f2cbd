package loadtest

import (
	"fmt"
	"sync"
)

// Kinds of violation: each names the invariant a frame broke.
const (
	vGap            = "gap"               // a bot's stream skipped a seq
	vDuplicate      = "duplicate_event"   // a bot got a seq again
	vMismatch       = "mismatch"          // two bots got different bytes for one seq
	vLastHit        = "last_hit"          // not exactly one last hit per Baron life
	vBaron          = "baron_state"       // Baron's HP or life does not add up
	vAckWrongEvent  = "ack_wrong_event"   // an ack names an event that is not the action's
	vAckNoEvent     = "ack_without_event" // an acked action's event never reached its connected bot
	vUnexpected     = "unexpected_answer" // an ack or reject for no action in flight
	vDupNotResent   = "dup_ack_not_resent"
	vTwice          = "sequenced_twice" // one (player, cseq) got two seqs
	vRejectedSeq    = "rejected_but_sequenced"
	vUnknownCSeq    = "unknown_cseq"   // an event of this bot with a cseq it never sent
	vWelcomeBehind  = "welcome_behind" // the room's seq went backwards
	vEpochBackwards = "epoch_backwards"
	vProtocol       = "protocol" // a frame PROTOCOL.md does not allow here
)

// maxSamples bounds the violation messages kept for the report.
const maxSamples = 20

// violations counts what broke. Shared by every bot; mu is a leaf lock
// (roomCheck.mu may be held while taking it).
type violations struct {
	mu      sync.Mutex
	count   uint64
	byKind  map[string]uint64
	samples []string
}

func newViolations() *violations { return &violations{byKind: make(map[string]uint64)} }

func (v *violations) add(kind, format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.count++
	v.byKind[kind]++
	if len(v.samples) < maxSamples {
		v.samples = append(v.samples, kind+": "+fmt.Sprintf(format, args...))
	}
}

func (v *violations) total() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.count
}

func (v *violations) snapshot() (uint64, map[string]uint64, []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	kinds := make(map[string]uint64, len(v.byKind))
	for k, n := range v.byKind {
		kinds[k] = n
	}
	return v.count, kinds, append([]string{}, v.samples...)
}

// observed is what the room checks keep of one event.
type observed struct {
	seq    uint64 // 0: empty slot
	hash   uint64 // of the frame's bytes
	player string
	cseq   uint64
}

// roomCheck holds what the bots of one room agree on: the recent events
// by seq (a ring, so old seqs are evicted by new ones), and Baron's life as
// the events tell it. Bots call it from their own goroutines; mu guards
// everything.
type roomCheck struct {
	name string
	v    *violations

	mu        sync.Mutex
	ring      []observed
	frontier  uint64 // the highest seq any bot has reported
	life      life
	unchecked uint64 // events too old for the ring to compare
	// lastAct is each player's last action in the room's order, as far as
	// the frontier has passed it: a player's cseqs only grow along the
	// room's seqs (a resend is answered, never sequenced again).
	lastAct map[string]act
}

// act is one player's action as the room sequenced it.
type act struct{ seq, cseq uint64 }

// life is Baron's as the room's events tell it, applied in seq order.
type life struct {
	known   bool // false until an event or a welcome state says
	alive   bool
	hp      int64
	lastHit uint64 // seq of the last hit of the current (dead) life
	kills   uint64
}

func newRoomCheck(name string, window int, v *violations) *roomCheck {
	return &roomCheck{name: name, v: v, ring: make([]observed, window), lastAct: make(map[string]act)}
}

// observe compares an event a bot received with what the other bots
// received for the same seq, and follows Baron's life with the events the
// room sees first. A bot calls it in its stream order, so first sightings
// come in seq order, except after a bot skipped ahead with a welcome state.
//
// It reports whether it found the event's (player, cseq) sequenced before
// (and counted that), so the player's own bot does not count it again.
func (r *roomCheck) observe(f *serverFrame, hash uint64) (twice bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	slot := &r.ring[f.Seq%uint64(len(r.ring))]
	switch {
	case slot.seq == f.Seq:
		if slot.hash != hash {
			r.v.add(vMismatch, "room %s seq %d: bots got different frames (player %q cseq %d, and player %q cseq %d)",
				r.name, f.Seq, slot.player, slot.cseq, f.Player, f.CSeq)
		}
		return false
	case slot.seq > f.Seq:
		r.unchecked++
		return false
	}
	*slot = observed{seq: f.Seq, hash: hash, player: f.Player, cseq: f.CSeq}
	switch {
	case f.Seq == r.frontier+1:
	case f.Seq > r.frontier:
		r.life.known = false // events in between were seen by nobody
	default:
		return false // behind a bot that skipped ahead: not in order
	}
	r.frontier = f.Seq
	r.applyLocked(f)
	if f.Player != "" {
		if last, ok := r.lastAct[f.Player]; ok && f.CSeq <= last.cseq {
			r.v.add(vTwice, "room %s seq %d: player %q cseq %d, after its cseq %d at seq %d: applied twice or out of order",
				r.name, f.Seq, f.Player, f.CSeq, last.cseq, last.seq)
			return true
		}
		r.lastAct[f.Player] = act{seq: f.Seq, cseq: f.CSeq}
	}
	return false
}

// applyLocked follows Baron through the event at r.frontier.
func (r *roomCheck) applyLocked(f *serverFrame) {
	res, l := &f.Result, &r.life
	switch {
	case f.Kind == kindRespawn && res.Reason == "" && res.BaronHP != noHP:
		if l.known && l.alive {
			r.v.add(vLastHit, "room %s seq %d: respawn while Baron was alive (hp %d): a life ended without a last hit",
				r.name, f.Seq, l.hp)
		}
		*l = life{known: true, alive: true, hp: res.BaronHP, kills: l.kills}
	case res.Reason == reasonTargetDead:
		if l.known && l.alive {
			r.v.add(vBaron, "room %s seq %d: refused target_dead while Baron was alive (hp %d)", r.name, f.Seq, l.hp)
		}
		l.known, l.alive, l.hp = true, false, 0
	case (f.Kind == kindAttack || f.Kind == kindSmite) && res.isHit():
		if l.known && !l.alive {
			r.v.add(vLastHit, "room %s seq %d: player %q hit Baron after the last hit at seq %d of the same life",
				r.name, f.Seq, f.Player, l.lastHit)
		} else if l.known && res.BaronHP != l.hp-res.Damage {
			r.v.add(vBaron, "room %s seq %d: baron_hp %d after %d damage, from hp %d", r.name, f.Seq, res.BaronHP, res.Damage, l.hp)
		}
		if res.LastHit != (res.BaronHP == 0) {
			r.v.add(vLastHit, "room %s seq %d: last_hit %v with baron_hp %d", r.name, f.Seq, res.LastHit, res.BaronHP)
		}
		l.known, l.hp, l.alive = true, res.BaronHP, res.BaronHP > 0
		if res.LastHit {
			l.lastHit = f.Seq
			l.kills++
		}
	}
}

// welcomeState takes the state a bot was welcomed with at seq. A state
// ahead of every bot moves the frontier there (as does one at the frontier
// while Baron's life is unknown); one at the frontier must agree with the
// life the events told.
func (r *roomCheck) welcomeState(seq uint64, hp int64, alive, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case seq > r.frontier, seq == r.frontier && !r.life.known:
		r.frontier = seq
		r.life = life{known: ok, alive: alive, hp: hp, kills: r.life.kills}
	case seq == r.frontier && ok && (r.life.hp != hp || r.life.alive != alive):
		r.v.add(vBaron, "room %s: welcome state at seq %d says hp %d alive %v, the events say hp %d alive %v",
			r.name, seq, hp, alive, r.life.hp, r.life.alive)
	}
}

// lookup returns what the room saw at seq, if it is still kept.
func (r *roomCheck) lookup(seq uint64) (observed, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.ring[seq%uint64(len(r.ring))]
	return o, o.seq == seq
}

// stats returns the Baron kills the room saw and the events it could not
// compare.
func (r *roomCheck) stats() (kills, unchecked uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.life.kills, r.unchecked
}
