package loadtest

import (
	"sort"
	"time"
)

// ledger is one bot's account of its room stream and of its actions: what
// it has seen, what it has sent, and what every answer must agree with. It
// checks the per-bot invariants frame by frame and hands events to the
// room's checks. It does no I/O; the bot's goroutine owns it.
type ledger struct {
	player string
	lowHP  int64
	room   *roomCheck
	v      *violations
	st     *shard

	joined   bool   // welcomed on the current connection
	lastSeq  uint64 // the last room seq this bot has seen
	epoch    uint64 // the highest epoch it was welcomed with
	lastCSeq uint64 // the last cseq it sent
	lastOwn  uint64 // the cseq of its last own event
	maxAcked uint64 // the highest seq an ack named: durable, so never taken back
	pending  map[uint64]inflight
	awaiting map[uint64]awaited // seq → an ack whose event is still to come
	rejected [rejectedKept]uint64
	rejNext  int

	// Baron as this bot's stream tells it (contested bots hold back on it).
	hpKnown  bool
	alive    bool
	hp       int64
	lowSince uint64 // seq at which this life's HP fell to lowHP; 0: not low
}

// rejectedKept is how many rejected cseqs a bot remembers, to catch an
// event for one of them.
const rejectedKept = 64

// maxAwaiting bounds the acks waiting for their event; past it, acks are
// counted unverified.
const maxAwaiting = 4 * maxWindow

// inflight is an action sent and not yet answered.
type inflight struct {
	sentAt   time.Time
	resent   bool   // sent again on a later connection: no latency for it
	eventSeq uint64 // seq of its own event, once seen
}

// awaited is an acked action whose event is still to come (PROTOCOL.md
// does not order an ack and its event).
type awaited struct {
	cseq   uint64
	sentAt time.Time
	resent bool
}

func newLedger(player string, lowHP int64, room *roomCheck, v *violations, st *shard) *ledger {
	return &ledger{
		player:   player,
		lowHP:    lowHP,
		room:     room,
		v:        v,
		st:       st,
		pending:  make(map[uint64]inflight),
		awaiting: make(map[uint64]awaited),
	}
}

// inFlight is how many actions wait for an answer.
func (l *ledger) inFlight() int { return len(l.pending) }

// settled reports whether every action was answered and every ack checked
// against its event.
func (l *ledger) settled() bool { return len(l.pending) == 0 && len(l.awaiting) == 0 }

// send records a new action sent at now and returns its cseq.
func (l *ledger) send(now time.Time) uint64 {
	l.lastCSeq++
	l.pending[l.lastCSeq] = inflight{sentAt: now}
	l.st.add(cSent, 1)
	return l.lastCSeq
}

// resend returns the cseqs to send again on a new connection, in order.
func (l *ledger) resend() []uint64 {
	cseqs := make([]uint64, 0, len(l.pending))
	for c, p := range l.pending {
		p.resent = true
		l.pending[c] = p
		cseqs = append(cseqs, c)
	}
	sort.Slice(cseqs, func(i, j int) bool { return cseqs[i] < cseqs[j] })
	l.st.add(cResent, uint64(len(cseqs)))
	return cseqs
}

// disconnected marks the end of a connection.
func (l *ledger) disconnected() { l.joined = false }

// refusedSince takes a hello with since refused with bad_request: since
// is the last seq the bot received, and the server refuses a since only
// when it is past the room's last seq, so events the bot was sent are
// gone from the room's log (a log rolled back, or a room started over).
func (l *ledger) refusedSince(since uint64, msg string) {
	l.v.add(vWelcomeBehind, "%s: room %s refused hello since %d (%s): events the bot received are gone from the log", l.player, l.room.name, since, msg)
}

// welcome checks a welcome that answered a hello with since.
func (l *ledger) welcome(f *serverFrame, since uint64) {
	if l.joined {
		l.v.add(vProtocol, "%s: second welcome on one connection", l.player)
	}
	l.joined = true
	if f.Room != l.room.name || f.Player != l.player {
		l.v.add(vProtocol, "%s: welcome to room %q as player %q, for a hello to room %s", l.player, f.Room, f.Player, l.room.name)
	}
	if f.Epoch < l.epoch {
		l.v.add(vEpochBackwards, "%s: room %s welcomed with epoch %d after epoch %d", l.player, l.room.name, f.Epoch, l.epoch)
	}
	l.epoch = max(l.epoch, f.Epoch)
	switch {
	case f.Seq < l.lastSeq:
		l.v.add(vWelcomeBehind, "%s: room %s welcomed at seq %d, but the bot had seen seq %d", l.player, l.room.name, f.Seq, l.lastSeq)
	case f.Seq < l.maxAcked:
		l.v.add(vWelcomeBehind, "%s: room %s welcomed at seq %d, but the bot was acked seq %d", l.player, l.room.name, f.Seq, l.maxAcked)
	}
	if !f.hasState() {
		if since != l.lastSeq {
			l.v.add(vProtocol, "%s: welcome without state after hello since %d, bot at %d", l.player, since, l.lastSeq)
		}
		return // the history since+1..f.Seq follows
	}
	// The stream goes on after f.Seq; what lies between was not sent.
	for seq, a := range l.awaiting {
		if seq <= f.Seq {
			delete(l.awaiting, seq)
			l.checkAckAgainstRoom(seq, a.cseq)
		}
	}
	l.lastSeq = f.Seq // after a welcome_behind, follow the room from here
	hp, alive, ok := welcomeBaron(f.State)
	l.room.welcomeState(f.Seq, hp, alive, ok)
	l.hpKnown, l.hp, l.alive = ok, hp, alive
	l.lowSince = 0
	if ok && alive && hp <= l.lowHP {
		l.lowSince = f.Seq
	}
}

// event checks an event frame received at recv. hash is the hash of its
// bytes.
func (l *ledger) event(f *serverFrame, hash uint64, recv time.Time) {
	l.st.add(cEvents, 1)
	if !l.joined {
		l.v.add(vProtocol, "%s: event seq %d before welcome", l.player, f.Seq)
		return
	}
	switch {
	case f.Seq <= l.lastSeq:
		l.v.add(vDuplicate, "%s: room %s seq %d again, after seq %d", l.player, l.room.name, f.Seq, l.lastSeq)
		return
	case f.Seq != l.lastSeq+1:
		l.v.add(vGap, "%s: room %s seq %d after seq %d: %d events missing", l.player, l.room.name, f.Seq, l.lastSeq, f.Seq-l.lastSeq-1)
	}
	l.lastSeq = f.Seq
	twice := l.room.observe(f, hash)
	l.followBaron(f)
	if f.Player == l.player {
		l.ownEvent(f, twice, recv)
	}
	if a, ok := l.awaiting[f.Seq]; ok {
		delete(l.awaiting, f.Seq)
		switch {
		case f.Player != l.player || f.CSeq != a.cseq:
			l.v.add(vAckWrongEvent, "%s: ack of cseq %d named seq %d, which is player %q cseq %d",
				l.player, a.cseq, f.Seq, f.Player, f.CSeq)
		case !a.resent:
			l.st.record(metricEvent, recv.Sub(a.sentAt))
		}
	}
}

// ownEvent checks an event of this bot's own player. twice: the room
// checks already counted it as sequenced twice.
func (l *ledger) ownEvent(f *serverFrame, twice bool, recv time.Time) {
	switch {
	case f.CSeq > l.lastCSeq:
		l.v.add(vUnknownCSeq, "%s: seq %d carries cseq %d, never sent (last sent %d)", l.player, f.Seq, f.CSeq, l.lastCSeq)
	case f.CSeq <= l.lastOwn && twice: // counted once, by the room
	case f.CSeq <= l.lastOwn:
		l.v.add(vTwice, "%s: seq %d sequences cseq %d, after own cseq %d: applied twice or out of order",
			l.player, f.Seq, f.CSeq, l.lastOwn)
	case l.wasRejected(f.CSeq):
		l.v.add(vRejectedSeq, "%s: cseq %d was rejected, yet sequenced at seq %d", l.player, f.CSeq, f.Seq)
	}
	l.lastOwn = max(l.lastOwn, f.CSeq)
	p, ok := l.pending[f.CSeq]
	if !ok || p.eventSeq != 0 {
		return
	}
	p.eventSeq = f.Seq
	l.pending[f.CSeq] = p
	if !p.resent {
		l.st.record(metricEvent, recv.Sub(p.sentAt))
	}
}

// followBaron tracks Baron's HP and life for contested bots.
func (l *ledger) followBaron(f *serverFrame) {
	res := &f.Result
	switch {
	case f.Kind == kindRespawn && res.Reason == "" && res.BaronHP != noHP:
		l.hpKnown, l.alive, l.hp, l.lowSince = true, true, res.BaronHP, 0
	case res.Reason == reasonTargetDead:
		l.hpKnown, l.alive, l.hp, l.lowSince = true, false, 0, 0
	case res.isHit():
		l.hpKnown, l.hp, l.alive = true, res.BaronHP, res.BaronHP > 0
		switch {
		case !l.alive:
			l.lowSince = 0
		case l.hp <= l.lowHP && l.lowSince == 0:
			l.lowSince = f.Seq
		}
	}
}

// ack checks an ack received at recv and records its latency.
func (l *ledger) ack(f *serverFrame, recv time.Time) {
	p, ok := l.pending[f.CSeq]
	if !ok {
		l.v.add(vUnexpected, "%s: ack of cseq %d (seq %d), which is not in flight", l.player, f.CSeq, f.Seq)
		return
	}
	delete(l.pending, f.CSeq)
	l.st.add(cAcked, 1)
	l.maxAcked = max(l.maxAcked, f.Seq)
	if f.Dup {
		l.st.add(cDupAcks, 1)
		if !p.resent {
			l.v.add(vDupNotResent, "%s: ack dup of cseq %d (seq %d), sent only once", l.player, f.CSeq, f.Seq)
		}
	}
	if !p.resent {
		l.st.record(metricAck, recv.Sub(p.sentAt))
	}
	switch {
	case p.eventSeq != 0:
		if p.eventSeq != f.Seq {
			l.v.add(vAckWrongEvent, "%s: ack of cseq %d names seq %d, its event was seq %d", l.player, f.CSeq, f.Seq, p.eventSeq)
		}
	case f.Seq > l.lastSeq && len(l.awaiting) < maxAwaiting:
		if other, dup := l.awaiting[f.Seq]; dup {
			l.v.add(vAckWrongEvent, "%s: acks of cseq %d and cseq %d both name seq %d", l.player, other.cseq, f.CSeq, f.Seq)
		}
		l.awaiting[f.Seq] = awaited{cseq: f.CSeq, sentAt: p.sentAt, resent: p.resent}
	case f.Seq > l.lastSeq:
		l.st.add(cUnverified, 1)
	default:
		// The seq went by before this ack without being this action: it
		// was skipped by a welcome state, or the ack is wrong.
		l.checkAckAgainstRoom(f.Seq, f.CSeq)
	}
}

// checkAckAgainstRoom checks an ack of cseq naming seq against the room's
// recent events, or counts it unverified when they no longer hold seq.
func (l *ledger) checkAckAgainstRoom(seq, cseq uint64) {
	o, ok := l.room.lookup(seq)
	switch {
	case !ok:
		l.st.add(cUnverified, 1)
	case o.player != l.player || o.cseq != cseq:
		l.v.add(vAckWrongEvent, "%s: ack of cseq %d names seq %d, which is player %q cseq %d",
			l.player, cseq, seq, o.player, o.cseq)
	}
}

// reject takes a reject: the action got no seq.
func (l *ledger) reject(f *serverFrame) {
	p, ok := l.pending[f.CSeq]
	if !ok {
		l.v.add(vUnexpected, "%s: reject %s of cseq %d, which is not in flight", l.player, f.Code, f.CSeq)
		return
	}
	delete(l.pending, f.CSeq)
	l.st.add(cRejected, 1)
	if p.eventSeq != 0 {
		l.v.add(vRejectedSeq, "%s: reject %s of cseq %d, which was sequenced at seq %d", l.player, f.Code, f.CSeq, p.eventSeq)
	}
	l.rejected[l.rejNext] = f.CSeq
	l.rejNext = (l.rejNext + 1) % rejectedKept
}

func (l *ledger) wasRejected(cseq uint64) bool {
	for _, c := range l.rejected {
		if c == cseq {
			return true
		}
	}
	return false
}

// finish counts what is left unanswered or unchecked when the bot stops.
// An ack whose event has not come while the bot is still welcomed on its
// connection is a violation: the server sends an entry's events when it
// acks it, so the bot's stream stopped short of an entry it was acked for.
// Without a connection the events may be on their way to a resume that
// will not happen: those acks only count as unverified.
func (l *ledger) finish() {
	l.st.add(cUnacked, uint64(len(l.pending)))
	if !l.joined {
		l.st.add(cUnverified, uint64(len(l.awaiting)))
		return
	}
	for seq, a := range l.awaiting {
		l.v.add(vAckNoEvent, "%s: room %s acked cseq %d as seq %d, but the bot's stream stopped at seq %d",
			l.player, l.room.name, a.cseq, seq, l.lastSeq)
	}
}
