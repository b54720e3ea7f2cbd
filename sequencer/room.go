package sequencer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
)

// inbox is the room's ordered queue (roomQueue; the benchmarks swap in a
// channel for the baseline).
type inbox interface {
	push(a Action, kind pushKind) error
	lastCSeq(player string) uint64
	drain(spare []Action) []Action
	close()
	wake() <-chan struct{}
	len() int
}

func (q *roomQueue) wake() <-chan struct{} { return q.notify }

// Subscriber receives a room's events. Its methods are called from the room
// loop and must not block.
type Subscriber interface {
	// Publish hands over the events of one batch, in seq order. The slice
	// is reused after the call; the frames are immutable and may be kept.
	// Returning false means the subscriber cannot take them: the room drops
	// it (Dropped(ErrSlow)) and goes on.
	Publish(events [][]byte) bool
	// Dropped tells the subscriber that no more events will come, and why.
	Dropped(reason error)
}

// Welcome is what a joining subscriber learns: from Seq+1 on, every event
// reaches it through Publish.
type Welcome struct {
	Seq   uint64
	Epoch uint64
	State []byte // the game's View as of Seq
	// LastCSeq is the player's highest cseq the room has sequenced or
	// holds queued: an action of the player with a cseq up to it is a
	// resend (see Room.Resend).
	LastCSeq uint64
}

// Info is a point-in-time description of a room.
type Info struct {
	Name    string
	Seq     uint64
	Epoch   uint64
	Members int
	Queued  int
}

type cmdKind int

const (
	cmdJoin cmdKind = iota
	cmdLeave
	cmdFlush
	cmdInfo
)

type command struct {
	kind   cmdKind
	player string
	sub    Subscriber
	reply  chan cmdReply // one slot: the loop never blocks on it
}

type cmdReply struct {
	welcome Welcome
	info    Info
	err     error
}

type member struct {
	player string
	sub    Subscriber
}

type reply struct {
	to     Replier
	ack    Ack
	reject Reject
	ok     bool
}

// Room is one room: its queue and its loop. Push is safe from any
// goroutine; all state belongs to the loop.
type Room struct {
	name   string
	opts   *Options
	logger zerolog.Logger
	q      inbox
	ctx    context.Context // canceled when the room halts or ends
	cancel context.CancelFunc
	cmds   chan command
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	stopping   atomic.Bool // set by Stop and when the loop ends
	halted     atomic.Bool // stop like a crash: nothing more is sequenced
	haltErr    atomic.Pointer[error]
	leaseEpoch atomic.Uint64 // the epoch the room's lease is held under; 0 while it is being taken
	renewedAt  atomic.Int64  // unix ns when the last successful renewal was sent
	members    atomic.Int32
	lastActive atomic.Int64 // unix ns of the last action or command
	stopErr    atomic.Pointer[error]
	counters   *counters // the registry's

	// Owned by the loop.
	game     gamestate.Game
	epoch    uint64
	lastSeq  uint64
	lastAt   int64 // room time of lastSeq
	snapSeq  uint64
	subs     []member
	dedupe   dedupe
	timer    *time.Timer
	timerAt  int64 // due time the timer is armed for
	firedAt  int64 // due time already pushed as an entry
	flushers []chan cmdReply
	entry    gamestate.Entry // reused: an Entry passed to the Game would escape
	slab     eventSlab
	spare    []Action
	again    bool // sequencing the room's own entries of a batch not logged
	recs     []queue.Record
	events   [][]byte
	replies  []reply
}

// openRoom acquires the room in the log, rebuilds its state and returns it
// ready to start.
func openRoom(ctx context.Context, name string, opts *Options, stamper *Stamper, c *counters) (*Room, error) {
	r := &Room{
		name:     name,
		opts:     opts,
		counters: c,
		logger:   opts.Logger.With().Str("room", name).Logger(),
		cmds:     make(chan command),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		dedupe:   newDedupe(opts.DedupeWindow),
		slab:     eventSlab{size: opts.EventSlab},
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	lastAt, err := r.rebuild(ctx)
	if err != nil {
		r.cancel()
		return nil, err
	}
	r.q = opts.newInbox(stamper, opts.QueueLimit, lastAt)
	r.touch()
	return r, nil
}

// rebuild takes a new epoch and rebuilds the state from the latest snapshot
// and the log after it, verifying every recorded result and the last
// recorded state hash. It returns the room time of the last entry.
func (r *Room) rebuild(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.LogTimeout)
	defer cancel()
	log := r.opts.Log
	asked := time.Now()
	r.leaseEpoch.Store(0) // taking the lease (again): the leaser leaves the room alone
	epoch, err := log.Acquire(ctx, r.name, r.opts.lease())
	if err != nil {
		return 0, fmt.Errorf("acquire room %s: %w", r.name, err)
	}
	r.leaseEpoch.Store(epoch)
	r.renewedAt.Store(asked.UnixNano())
	rp := NewReplayer(r.opts.Game.New())
	snap, ok, err := log.LoadSnapshot(ctx, r.name)
	if err != nil {
		return 0, fmt.Errorf("load snapshot of %s: %w", r.name, err)
	}
	if ok {
		if err := rp.Restore(snap); err != nil {
			return 0, err
		}
	}
	meta, err := log.Meta(ctx, r.name)
	if err != nil {
		return 0, fmt.Errorf("read meta of %s: %w", r.name, err)
	}
	// One pass over the log's tail: the entries after the snapshot are
	// applied; those up to it, among the last DedupeWindow×MaxPlayers and
	// as far as the log keeps them, only fill the dedupe window, so a
	// resend sequenced just before the snapshot still gets its original
	// seq. Entries up to the snapshot trimmed meanwhile are skipped.
	dd := newDedupe(r.opts.DedupeWindow)
	snapSeq := rp.Seq()
	next := max(meta.FirstSeq, 1)
	if tail := uint64(r.opts.DedupeWindow) * uint64(r.opts.MaxPlayers); meta.LastSeq > tail {
		next = max(next, meta.LastSeq-tail+1)
	}
	next = min(next, snapSeq+1)
	for next <= meta.LastSeq {
		if err := r.keepLease(ctx, epoch); err != nil {
			return 0, err
		}
		recs, err := log.Read(ctx, r.name, next, meta.LastSeq, r.opts.ReadPage)
		if errors.Is(err, queue.ErrTrimmed) && next <= snapSeq {
			next = snapSeq + 1
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read log of %s: %w", r.name, err)
		}
		if len(recs) == 0 {
			return 0, fmt.Errorf("read log of %s: no entries after %d, meta says %d", r.name, next-1, meta.LastSeq)
		}
		for _, rec := range recs {
			var ev Event
			if rec.Seq <= snapSeq {
				ev, err = DecodeEvent(rec.Event)
			} else {
				ev, err = rp.Step(rec.Event)
			}
			if err != nil {
				return 0, fmt.Errorf("rebuild %s: seq %d: %w", r.name, rec.Seq, err)
			}
			if ev.Player != "" {
				dd.add(ev.Player, ev.CSeq, ev.Seq)
			}
		}
		next = recs[len(recs)-1].Seq + 1
	}
	if meta.LastSeq > 0 {
		if err := rp.CheckHash(meta.LastHash); err != nil {
			return 0, fmt.Errorf("rebuild %s: %w", r.name, err)
		}
	}
	r.game, r.epoch, r.lastSeq, r.lastAt, r.dedupe = rp.Game(), epoch, rp.Seq(), rp.At(), dd
	if ok {
		r.snapSeq = snap.Seq
	}
	r.logger.Debug().Uint64("epoch", epoch).Uint64("seq", r.lastSeq).Msg("room rebuilt")
	return rp.At(), nil
}

// keepLease renews the lease a rebuild holds under epoch once LeaseTTL/4
// has passed since it was last renewed: the leaser leaves a room alone
// while it rebuilds, and a rebuild can take longer than the lease (the
// rebuild is bounded by LogTimeout, default 5s, the lease by LeaseTTL).
// A renewal that fails is tried again at the next page, until LeaseTTL/2
// has passed, the point where the leaser would halt an open room.
func (r *Room) keepLease(ctx context.Context, epoch uint64) error {
	ttl := r.opts.LeaseTTL
	if ttl <= 0 {
		return nil
	}
	last := time.Unix(0, r.renewedAt.Load())
	if time.Since(last) < ttl/4 {
		return nil
	}
	err := r.renewLease(ctx, epoch)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, queue.ErrLeaseLost), time.Since(last) >= ttl/2:
		return fmt.Errorf("rebuild %s: keep lease: %w", r.name, err)
	default:
		r.logger.Warn().Err(err).Msg("lease renewal during rebuild failed; retrying")
		return nil
	}
}

// renewLease renews the room's lease under epoch and, when it is renewed,
// records when the renewal was sent (the lease runs from then): the one
// renewal step of the leaser and of a rebuild.
func (r *Room) renewLease(ctx context.Context, epoch uint64) error {
	asked := time.Now()
	err := r.opts.Log.Renew(ctx, r.name, r.opts.lease(), epoch)
	if err == nil {
		r.renewedAt.Store(asked.UnixNano())
	}
	return err
}

// Name is the room's name.
func (r *Room) Name() string { return r.name }

// Done is closed when the room loop has ended.
func (r *Room) Done() <-chan struct{} { return r.done }

// Err is why the room stopped: nil while it runs or after a clean stop.
func (r *Room) Err() error {
	if p := r.stopErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Push validates a client action, stamps it and queues it. The outcome
// reaches a.Reply. Errors: ErrBusy (queue full), ErrClosed (room
// stopping), or a validation error (see CodeOf).
func (r *Room) Push(a Action) error {
	if err := a.validate(r.opts.Game); err != nil {
		return err
	}
	return r.q.push(a, pushClient)
}

// Resend is Push for an action whose cseq is at most the sender's
// Welcome.LastCSeq: it was sequenced (it gets its original seq, dup) or is
// still queued from an earlier connection. It is not refused for a full
// queue, since a reject would say it got no seq when it did or will; the
// caller bounds how many it resends per join.
func (r *Room) Resend(a Action) error {
	if err := a.validate(r.opts.Game); err != nil {
		return err
	}
	return r.q.push(a, pushResend)
}

func (r *Room) pushServer(kind, target string) {
	if err := r.q.push(Action{Kind: kind, Target: target}, pushServer); err != nil {
		r.logger.Debug().Err(err).Str("kind", kind).Msg("server entry not queued: room stopping")
	}
}

// Join makes sub a member for player and sequences a join entry. A second
// Join of the same player replaces the first subscriber (Dropped with
// ErrReplaced).
func (r *Room) Join(ctx context.Context, player string, sub Subscriber) (Welcome, error) {
	rep, err := r.call(ctx, command{kind: cmdJoin, player: player, sub: sub})
	return rep.welcome, err
}

// Leave removes sub if it is still the player's subscriber, and sequences a
// leave entry.
func (r *Room) Leave(ctx context.Context, player string, sub Subscriber) error {
	_, err := r.call(ctx, command{kind: cmdLeave, player: player, sub: sub})
	return err
}

// Flush returns once everything pushed before it (and any timer due by
// then) is sequenced and answered.
func (r *Room) Flush(ctx context.Context) error {
	_, err := r.call(ctx, command{kind: cmdFlush})
	return err
}

// Info describes the room.
func (r *Room) Info(ctx context.Context) (Info, error) {
	rep, err := r.call(ctx, command{kind: cmdInfo})
	return rep.info, err
}

func (r *Room) call(ctx context.Context, c command) (cmdReply, error) {
	c.reply = make(chan cmdReply, 1)
	select {
	case r.cmds <- c:
	case <-r.done:
		return cmdReply{}, ErrClosed
	case <-ctx.Done():
		return cmdReply{}, ctx.Err()
	}
	select {
	case rep := <-c.reply:
		return rep, rep.err
	case <-r.done:
		return cmdReply{}, ErrClosed
	case <-ctx.Done():
		return cmdReply{}, ctx.Err()
	}
}

// Stop asks the loop to finish what is queued and end. It does not wait;
// see Done.
func (r *Room) Stop() {
	r.stopping.Store(true)
	r.once.Do(func() { close(r.stop) })
}

// halt ends the loop the way a crash would: queued actions are neither
// sequenced nor answered, members get no leave entry, and they are dropped
// with err (nil: ErrClosed). A lost lease halts a room: it may no longer
// write, and its members reconnect wherever the room lives now. Tests use
// it to rebuild a room from its log as another server would.
func (r *Room) halt(err error) {
	if err != nil {
		r.haltErr.Store(&err)
	}
	r.halted.Store(true)
	r.Stop()
	r.cancel()
}

// haltReason is the error halt was given (nil: none).
func (r *Room) haltReason() error {
	if p := r.haltErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (r *Room) touch() { r.lastActive.Store(time.Now().UnixNano()) }

func (r *Room) idleSince() time.Time { return time.Unix(0, r.lastActive.Load()) }

// run is the room loop, the only writer of the room's state.
func (r *Room) run() {
	defer close(r.done)
	r.timer = time.NewTimer(time.Hour)
	r.timer.Stop()
	defer r.timer.Stop()
	for {
		select {
		case <-r.q.wake():
		case c := <-r.cmds:
			r.handle(c)
		case <-r.timer.C:
			r.timerAt = 0
		case <-r.stop:
			if r.halted.Load() {
				r.q.close()
				r.end(r.haltReason())
				return
			}
			// A graceful stop: members leave in the log (they join again
			// wherever they reconnect), then the last batch is finished.
			for _, m := range r.subs {
				r.pushServer(gamestate.KindLeave, m.player)
			}
			r.q.close()
			if err := r.cycle(); err != nil {
				// The last batch failed (fenced, or halted meanwhile: the
				// lease lost): the members hear why, as outside a stop,
				// and the lease is not ours to release.
				r.end(err)
				return
			}
			r.release()
			r.end(nil)
			return
		}
		if err := r.cycle(); err != nil {
			r.q.close()
			r.end(err)
			return
		}
	}
}

// release gives the room's lease up after a graceful stop, so another
// server can take it at once.
func (r *Room) release() {
	if r.opts.LeaseTTL <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.LogTimeout)
	defer cancel()
	if err := r.opts.Log.Release(ctx, r.name, r.opts.lease(), r.epoch); err != nil {
		r.logger.Warn().Err(err).Msg("lease not released; it expires by itself")
	}
}

// end drops every subscriber and releases waiting flushers.
func (r *Room) end(err error) {
	r.stopping.Store(true)
	r.cancel()
	if err != nil {
		r.stopErr.Store(&err)
		r.counters.failed.Add(1)
		r.logger.Error().Err(err).Msg("room stopped")
	}
	reason := err
	if reason == nil {
		reason = ErrClosed
	}
	for _, m := range r.subs {
		m.sub.Dropped(reason)
	}
	r.subs = nil
	r.members.Store(0)
	for _, f := range r.flushers {
		f <- cmdReply{err: reason}
	}
	r.flushers = nil
}

func (r *Room) handle(c command) {
	r.touch()
	switch c.kind {
	case cmdJoin:
		c.reply <- r.join(c.player, c.sub)
	case cmdLeave:
		r.leave(c.player, c.sub)
		c.reply <- cmdReply{}
	case cmdFlush:
		r.flushers = append(r.flushers, c.reply)
	case cmdInfo:
		c.reply <- cmdReply{info: Info{Name: r.name, Seq: r.lastSeq, Epoch: r.epoch, Members: len(r.subs), Queued: r.q.len()}}
	}
}

func (r *Room) join(player string, sub Subscriber) cmdReply {
	if player == "" || sub == nil {
		return cmdReply{err: fmt.Errorf("%w: join needs a player and a subscriber", ErrBadAction)}
	}
	i := r.memberIndex(player)
	switch {
	case i >= 0:
		old := r.subs[i].sub
		r.subs[i].sub = sub
		if old != sub {
			old.Dropped(ErrReplaced)
		}
	case len(r.subs) >= r.opts.MaxPlayers:
		return cmdReply{err: ErrRoomFull}
	case !r.game.Known(player) && r.game.Players() >= r.opts.MaxKnownPlayers:
		return cmdReply{err: fmt.Errorf("%w: it has had %d players, its most", ErrRoomFull, r.game.Players())}
	default:
		r.subs = append(r.subs, member{player: player, sub: sub})
		r.members.Store(int32(len(r.subs)))
	}
	r.pushServer(gamestate.KindJoin, player)
	// After Dropped(ErrReplaced) above: a replaced connection can push
	// nothing more, so every cseq it got in is sequenced or queued now.
	last, _ := r.game.LastCSeq(player)
	last = max(last, r.q.lastCSeq(player))
	return cmdReply{welcome: Welcome{Seq: r.lastSeq, Epoch: r.epoch, State: r.game.View(), LastCSeq: last}}
}

func (r *Room) leave(player string, sub Subscriber) {
	i := r.memberIndex(player)
	if i < 0 || r.subs[i].sub != sub {
		return
	}
	r.removeMember(i)
	r.pushServer(gamestate.KindLeave, player)
}

func (r *Room) memberIndex(player string) int {
	for i := range r.subs {
		if r.subs[i].player == player {
			return i
		}
	}
	return -1
}

func (r *Room) removeMember(i int) {
	last := len(r.subs) - 1
	r.subs[i] = r.subs[last]
	r.subs[last] = member{}
	r.subs = r.subs[:last]
	r.members.Store(int32(len(r.subs)))
}

// cycle fires a due timer, then sequences everything queued. A non-nil
// error means the room cannot go on.
func (r *Room) cycle() error {
	r.fireTimer()
	batch := r.q.drain(r.spare)
	if len(batch) > 0 {
		r.touch()
	}
	var err error
	for rest := batch; len(rest) > 0 && err == nil; {
		n := min(len(rest), r.opts.MaxBatch)
		err = r.sequence(rest[:n])
		rest = rest[n:]
	}
	clear(batch)
	r.spare = batch[:0]
	if err != nil {
		return err
	}
	r.armTimer()
	for _, f := range r.flushers {
		f <- cmdReply{}
	}
	r.flushers = r.flushers[:0]
	return nil
}

// fireTimer pushes the game's due server-made entry once room time has
// reached it.
func (r *Room) fireTimer() {
	due, ok := r.game.Due()
	if !ok || due.At == r.firedAt || r.opts.Clock() < due.At {
		return
	}
	r.firedAt = due.At
	r.pushServer(due.Kind, due.Target)
}

func (r *Room) armTimer() {
	due, ok := r.game.Due()
	if !ok || due.At == r.firedAt || due.At == r.timerAt {
		return
	}
	r.timer.Reset(max(time.Duration(due.At-r.opts.Clock()), 0))
	r.timerAt = due.At
}

// sequence gives each action of the chunk its seq, applies it, appends the
// chunk, and only then publishes and answers.
func (r *Room) sequence(chunk []Action) error {
	r.recs, r.events, r.replies = r.recs[:0], r.events[:0], r.replies[:0]
	for i := range chunk {
		a := &chunk[i]
		if a.Player != "" {
			if last, lastSeq := r.game.LastCSeq(a.Player); a.CSeq <= last {
				r.replies = append(r.replies, r.dupReply(a, last, lastSeq))
				continue
			}
		}
		e := &r.entry
		*e = gamestate.Entry{
			Seq:    r.lastSeq + uint64(len(r.recs)) + 1,
			At:     a.stamp.At,
			Player: a.Player,
			CSeq:   a.CSeq,
			Kind:   a.Kind,
			Target: a.Target,
		}
		ev := r.slab.encode(r.game, e)
		r.recs = append(r.recs, queue.Record{Seq: e.Seq, Stamp: a.stamp.N, At: e.At, Event: ev})
		r.events = append(r.events, ev)
		if a.Player != "" {
			r.dedupe.add(a.Player, a.CSeq, e.Seq)
		} else if a.Kind == gamestate.KindLeave {
			r.dedupe.prune(2*r.opts.MaxPlayers, r.game.Member)
		}
		if a.Reply != nil {
			r.replies = append(r.replies, reply{to: a.Reply, ack: Ack{CSeq: a.CSeq, Seq: e.Seq}, ok: true})
		}
	}
	if len(r.recs) > 0 {
		if err := r.append(); err != nil {
			return r.appendFailed(err, chunk)
		}
	}
	r.publish()
	r.answer()
	r.maybeSnapshot()
	return nil
}

// dupReply answers a resent cseq with the seq it got the first time.
func (r *Room) dupReply(a *Action, last, lastSeq uint64) reply {
	seq, ok := lastSeq, a.CSeq == last
	if !ok {
		seq, ok = r.dedupe.lookup(a.Player, a.CSeq)
	}
	if ok {
		return reply{to: a.Reply, ack: Ack{CSeq: a.CSeq, Seq: seq, Dup: true}, ok: true}
	}
	return reply{to: a.Reply, reject: Reject{CSeq: a.CSeq, Code: CodeBadRequest,
		Message: fmt.Sprintf("cseq %d is not above %d, the last sequenced cseq of player %s", a.CSeq, last, a.Player)}}
}

// append makes the batch durable. It carries no timeout of its own (a
// timer per batch costs more than the rest of a small batch): the log
// bounds its own retries (RedisLog.RetryDeadline), and a halt cancels the
// room's context, abandoning an append the room may no longer make.
func (r *Room) append() error {
	err := r.opts.Log.Append(r.ctx, r.name, queue.Batch{Epoch: r.epoch, Records: r.recs, Hash: r.game.Hash()})
	if err == nil {
		last := &r.recs[len(r.recs)-1]
		r.lastSeq, r.lastAt = last.Seq, last.At
	}
	return err
}

// appendFailed decides what a failed append means. The state already holds
// the batch, so it is rebuilt from the log under a new epoch (which also
// fences any late copy of the failed append). If the batch turns out to be
// in the log, it is published and acked as usual; if not, its actions are
// rejected unavailable: they got no seq, and their clients resend them;
// the room's own entries of the batch (joins, leaves, timers), which
// nobody would resend, are sequenced again at once, ahead of anything
// queued since, as they were stamped before it; if that append fails too,
// the room stops (its members rejoin, and a reopened room fires its
// timers afresh). A fenced room (or a conflicting
// append, which means the same), or one that cannot be rebuilt, stops
// without answering the batch: its outcome is unknown, and clients resend
// the same cseqs elsewhere. A room halted meanwhile stops for the halt's
// reason, and one whose rebuild finds another node holding its lease stops
// as having lost the lease (ErrLeaseLost): its members go to the new owner.
// batchLogged reports whether the log holds the current batch's records,
// byte for byte, at their seqs.
func (r *Room) batchLogged() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.LogTimeout)
	defer cancel()
	next, last := r.recs[0].Seq, r.recs[len(r.recs)-1].Seq
	for next <= last {
		got, err := r.opts.Log.Read(ctx, r.name, next, last, r.opts.ReadPage)
		if err != nil {
			return fmt.Errorf("read back the batch: %w", err)
		}
		if len(got) == 0 {
			return fmt.Errorf("read back the batch: no entry at seq %d", next)
		}
		for _, g := range got {
			if !bytes.Equal(g.Event, r.recs[g.Seq-r.recs[0].Seq].Event) {
				return fmt.Errorf("seq %d in the log is another writer's entry", g.Seq)
			}
		}
		next = got[len(got)-1].Seq + 1
	}
	return nil
}

func (r *Room) appendFailed(err error, chunk []Action) error {
	if r.halted.Load() {
		// Halted while appending (its lease lost): the halt canceled the
		// append, and the halt's reason, not the cancellation, is why the
		// room stops and what its members are told.
		if reason := r.haltReason(); reason != nil {
			return fmt.Errorf("%w (append abandoned: %v)", reason, err)
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if errors.Is(err, queue.ErrFenced) || errors.Is(err, queue.ErrConflict) {
		// Another writer has the room (or wrote it: a conflict cannot
		// happen under a single writer). Nothing of this batch is ours to
		// publish.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	r.logger.Warn().Err(err).Uint64("first_seq", r.recs[0].Seq).Int("entries", len(r.recs)).Msg("append failed; rebuilding from the log")
	want := r.recs[len(r.recs)-1].Seq
	if _, rerr := r.rebuild(context.Background()); rerr != nil {
		var owned *queue.OwnerError
		if errors.As(rerr, &owned) {
			// Another node holds the room's lease (this one was paused or
			// cut off past it): the lease is lost, and the members go to
			// the new owner.
			return fmt.Errorf("%w: %w: append: %w; rebuild: %w", ErrUnavailable, queue.ErrLeaseLost, err, rerr)
		}
		return fmt.Errorf("%w: append: %w; rebuild: %w", ErrUnavailable, err, rerr)
	}
	if r.lastSeq >= want {
		// The log reaches the batch's seqs, but another node may have
		// written them while this one was paused: only the batch's own
		// bytes at those seqs make it ours to publish.
		if cerr := r.batchLogged(); cerr != nil {
			return fmt.Errorf("%w: %w: append: %w; %w", ErrUnavailable, queue.ErrLeaseLost, err, cerr)
		}
		r.publish()
		r.answer()
		return nil
	}
	r.events = r.events[:0]
	for i := range r.replies {
		if rp := &r.replies[i]; rp.ok && rp.ack.Seq > r.lastSeq {
			*rp = reply{to: rp.to, reject: Reject{CSeq: rp.ack.CSeq, Code: CodeUnavailable, Message: "the room log could not be written; resend"}}
		}
	}
	r.answer()
	var own []Action
	for _, a := range chunk {
		if a.Player == "" {
			own = append(own, a)
		}
	}
	if len(own) == 0 {
		return nil
	}
	if r.again {
		return fmt.Errorf("%w: the room's own entries could not be logged twice running: %w", ErrUnavailable, err)
	}
	r.again = true
	defer func() { r.again = false }()
	r.logger.Info().Int("entries", len(own)).Msg("sequencing the room's own entries of the failed batch again")
	return r.sequence(own)
}

func (r *Room) publish() {
	if len(r.events) == 0 {
		return
	}
	r.counters.entries.Add(uint64(len(r.events)))
	for i := 0; i < len(r.subs); {
		if r.subs[i].sub.Publish(r.events) {
			i++
			continue
		}
		m := r.subs[i]
		r.removeMember(i)
		m.sub.Dropped(ErrSlow)
		r.logger.Info().Str("player", m.player).Msg("slow subscriber dropped")
		r.pushServer(gamestate.KindLeave, m.player)
	}
	clear(r.events)
}

func (r *Room) answer() {
	var acked, dups, rejected uint64
	for i := range r.replies {
		rp := &r.replies[i]
		switch {
		case rp.to == nil:
		case rp.ok:
			rp.to.Acked(rp.ack)
			acked++
			if rp.ack.Dup {
				dups++
			}
		default:
			rp.to.Rejected(rp.reject)
			rejected++
		}
		*rp = reply{}
	}
	if acked > 0 {
		r.counters.acked.Add(acked)
		r.counters.dups.Add(dups)
	}
	if rejected > 0 {
		r.counters.rejected.Add(rejected)
	}
	r.replies = r.replies[:0]
	clear(r.recs)
}

func (r *Room) maybeSnapshot() {
	if r.lastSeq-r.snapSeq < r.opts.SnapshotEvery {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.LogTimeout)
	defer cancel()
	s := queue.Snapshot{Seq: r.lastSeq, Hash: r.game.Hash(), State: r.game.Snapshot(), At: r.lastAt}
	if err := r.opts.Log.SaveSnapshot(ctx, r.name, s); err != nil {
		r.logger.Warn().Err(err).Uint64("seq", r.lastSeq).Msg("snapshot not saved")
		return
	}
	r.snapSeq = r.lastSeq
}
