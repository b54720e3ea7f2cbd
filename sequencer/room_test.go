package sequencer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
)

// Many producers push into one room at once: the log is exactly 1..N, seq
// order is stamp order and room-time order, every producer's actions keep
// its send order, and every action is sequenced exactly once.
func TestConcurrentProducersOneRoom(t *testing.T) {
	for _, producers := range []int{8, 64} {
		t.Run(fmt.Sprintf("%d producers", producers), func(t *testing.T) {
			const perProducer = 500
			log := queue.NewMemoryLog(queue.MemoryOptions{Retain: 1 << 20})
			g := newTestRegistry(t, Options{Log: log, QueueLimit: 64})
			room := openTestRoom(t, g, "r1")
			ctx := context.Background()
			for p := 0; p < producers; p++ {
				_, err := room.Join(ctx, fmt.Sprintf("p%d", p), &recorder{})
				require.NoError(t, err)
			}
			flush(t, room)
			base := readLog(t, log, "r1")

			var wg sync.WaitGroup
			answers := make([]*replies, producers)
			for p := 0; p < producers; p++ {
				answers[p] = &replies{}
				wg.Add(1)
				go func(p int) {
					defer wg.Done()
					player := fmt.Sprintf("p%d", p)
					for c := uint64(1); c <= perProducer; {
						err := room.Push(Action{Player: player, CSeq: c, Kind: gamestate.KindAttack, Target: gamestate.TargetBaron, Reply: answers[p]})
						if errors.Is(err, ErrBusy) {
							runtime.Gosched() // a full queue refuses; the producer yields and retries
							continue
						}
						if !assert.NoError(t, err) {
							return
						}
						c++
					}
				}(p)
			}
			wg.Wait()
			checkFor(t, 20*time.Second, 5*time.Millisecond, func() error {
				for p, a := range answers {
					if n := a.answered(); n != perProducer {
						return fmt.Errorf("producer %d: %d of %d answered", p, n, perProducer)
					}
				}
				return nil
			})

			recs := readLog(t, log, "r1")
			require.Equal(t, len(base)+producers*perProducer, len(recs))
			lastCSeq := map[string]uint64{}
			seen := map[string]bool{}
			for i, rec := range recs {
				require.Equal(t, uint64(i+1), rec.Seq, "gapless")
				if i > 0 {
					require.Greater(t, rec.Stamp, recs[i-1].Stamp, "seq order is stamp order at seq %d", rec.Seq)
					require.Greater(t, rec.At, recs[i-1].At, "room time grows at seq %d", rec.Seq)
				}
				ev := decode(t, rec.Event)
				require.Equal(t, rec.At, ev.At)
				if ev.Player == "" {
					continue
				}
				key := fmt.Sprintf("%s/%d", ev.Player, ev.CSeq)
				require.False(t, seen[key], "%s sequenced twice", key)
				seen[key] = true
				require.Equal(t, lastCSeq[ev.Player]+1, ev.CSeq, "%s keeps its send order", ev.Player)
				lastCSeq[ev.Player] = ev.CSeq
			}
			for p, a := range answers {
				acks, rejects := a.take()
				require.Empty(t, rejects)
				for _, ack := range acks {
					ev := decode(t, recs[ack.Seq-1].Event)
					require.Equal(t, fmt.Sprintf("p%d", p), ev.Player, "ack names the sender's own event")
					require.Equal(t, ack.CSeq, ev.CSeq)
					require.False(t, ack.Dup)
				}
			}
		})
	}
}

// 64 goroutines released together attack a Baron with little HP left:
// exactly one entry is the last hit, it is the first in seq order that
// takes HP to 0, and a replay of the log names the same winner with the
// same hash. 200 runs, each with a different seed (room time at start).
func TestContestedLastHit(t *testing.T) {
	const attackers = 64
	runs := 200
	if testing.Short() {
		runs = 20
	}
	spec := gamestate.BaronWith(gamestate.BaronOptions{MaxHP: 2_500})
	for run := 0; run < runs; run++ {
		log := queue.NewMemoryLog(queue.MemoryOptions{})
		clock := newManualClock(int64(run+1) * 7_919_000_000)
		g, err := NewRegistry(Options{Game: spec, Log: log, Clock: clock.now})
		require.NoError(t, err)
		room := openTestRoom(t, g, "contest")
		ctx := context.Background()
		for p := 0; p < attackers; p++ {
			_, err := room.Join(ctx, fmt.Sprintf("p%02d", p), &recorder{})
			require.NoError(t, err)
		}
		flush(t, room)

		start := make(chan struct{})
		var wg sync.WaitGroup
		for p := 0; p < attackers; p++ {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				<-start
				kind := gamestate.KindAttack
				if p%4 == 0 {
					kind = gamestate.KindSmite
				}
				assert.NoError(t, room.Push(Action{Player: fmt.Sprintf("p%02d", p), CSeq: 1, Kind: kind, Target: gamestate.TargetBaron}))
			}(p)
		}
		close(start)
		wg.Wait()
		flush(t, room)

		recs := readLog(t, log, "contest")
		var winners []uint64
		firstZero := uint64(0)
		for _, rec := range recs {
			ev := decode(t, rec.Event)
			if ev.Kind != gamestate.KindAttack && ev.Kind != gamestate.KindSmite {
				continue
			}
			var res struct {
				HP      *int64 `json:"baron_hp"`
				LastHit bool   `json:"last_hit"`
			}
			require.NoError(t, json.Unmarshal(ev.Result, &res))
			if res.LastHit {
				winners = append(winners, ev.Seq)
			}
			if res.HP != nil && *res.HP == 0 && firstZero == 0 {
				firstZero = ev.Seq
			}
		}
		require.Len(t, winners, 1, "run %d: exactly one last hit", run)
		require.Equal(t, firstZero, winners[0], "run %d: the last hit is the first entry that takes HP to 0", run)

		rp := NewReplayer(spec.New())
		var replayWinner uint64
		for _, rec := range recs {
			ev, err := rp.Step(rec.Event)
			require.NoError(t, err)
			if ev.Seq == winners[0] {
				replayWinner = ev.Seq
			}
		}
		meta, err := log.Meta(ctx, "contest")
		require.NoError(t, err)
		require.NoError(t, rp.CheckHash(meta.LastHash))
		require.Equal(t, winners[0], replayWinner)
		require.NoError(t, g.Shutdown(ctx))
	}
}

// A full queue refuses with ErrBusy before stamping; nothing is lost: once
// the log moves again, every accepted action is sequenced and acked.
func TestFullQueueRefusesBusy(t *testing.T) {
	gate, room, _ := gatedRoom(t, Options{QueueLimit: 16})
	ctx := context.Background()
	rp := &replies{}
	gate.stall(t, room, Action{Player: "p", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron", Reply: rp})
	accepted := 0
	cseq := uint64(2)
	for ; ; cseq++ {
		err := room.Push(Action{Player: "p", CSeq: cseq, Kind: gamestate.KindAttack, Target: "baron", Reply: rp})
		if errors.Is(err, ErrBusy) {
			break
		}
		require.NoError(t, err)
		accepted++
	}
	require.Equal(t, 16, accepted, "exactly the queue limit is accepted while the loop is stalled")
	assert.Equal(t, CodeBusy, CodeOf(room.Push(Action{Player: "p", CSeq: cseq, Kind: gamestate.KindAttack, Target: "baron", Reply: rp})))

	gate.open()
	flush(t, room)
	acks, rejects := rp.take()
	require.Empty(t, rejects)
	require.Len(t, acks, 1+accepted)
	meta, err := gate.Meta(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, uint64(1+1+accepted), meta.LastSeq, "join + accepted actions, no gap for the refused ones")
}

// A subscriber that never takes events is dropped with ErrSlow while the
// room keeps sequencing for everybody else.
func TestSlowSubscriberDropped(t *testing.T) {
	log := queue.NewMemoryLog(queue.MemoryOptions{})
	g := newTestRegistry(t, Options{Log: log})
	room := openTestRoom(t, g, "r1")
	ctx := context.Background()
	slow := &recorder{limit: 8}
	fast := &recorder{}
	_, err := room.Join(ctx, "slow", slow)
	require.NoError(t, err)
	welcome, err := room.Join(ctx, "fast", fast)
	require.NoError(t, err)

	rp := &replies{}
	for c := uint64(1); c <= 200; c++ {
		require.NoError(t, room.Push(Action{Player: "fast", CSeq: c, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	}
	flush(t, room)
	_, dropped := slow.snapshot()
	assert.ErrorIs(t, dropped, ErrSlow)
	acks, _ := rp.take()
	assert.Len(t, acks, 200)
	flush(t, room) // the leave of the dropped member is queued by the batch that dropped it
	recs := readLog(t, log, "r1")
	assert.Equal(t, len(recs)-int(welcome.Seq), fast.count(), "the fast member got every event after its welcome")
	var leftSlow bool
	for _, rec := range recs {
		ev := decode(t, rec.Event)
		leftSlow = leftSlow || (ev.Kind == gamestate.KindLeave && ev.Target == "slow")
	}
	assert.True(t, leftSlow, "the dropped member's leave is sequenced")
	info, err := room.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, info.Members)
}

func TestJoinBounds(t *testing.T) {
	g := newTestRegistry(t, Options{MaxPlayers: 2})
	room := openTestRoom(t, g, "r1")
	ctx := context.Background()
	first := &recorder{}
	_, err := room.Join(ctx, "a", first)
	require.NoError(t, err)
	_, err = room.Join(ctx, "b", &recorder{})
	require.NoError(t, err)
	_, err = room.Join(ctx, "c", &recorder{})
	require.ErrorIs(t, err, ErrRoomFull)

	// The same player joining again replaces its first connection.
	_, err = room.Join(ctx, "a", &recorder{})
	require.NoError(t, err)
	_, dropped := first.snapshot()
	assert.ErrorIs(t, dropped, ErrReplaced)
	_, err = g.Room(ctx, "bad room!")
	assert.ErrorIs(t, err, ErrBadAction)
}

// Shutdown finishes the actions already queued: every one is acked and in
// the log, and nothing is lost.
func TestShutdownFinishesInFlight(t *testing.T) {
	log := queue.NewMemoryLog(queue.MemoryOptions{})
	g, err := NewRegistry(Options{Game: gamestate.Baron(), Log: log})
	require.NoError(t, err)
	rooms := make([]*Room, 4)
	for i := range rooms {
		rooms[i] = openTestRoom(t, g, fmt.Sprintf("r%d", i))
		_, err := rooms[i].Join(context.Background(), "p", &recorder{})
		require.NoError(t, err)
	}
	rp := &replies{}
	pushed := 0
	for c := uint64(1); c <= 300; c++ {
		for _, r := range rooms {
			if r.Push(Action{Player: "p", CSeq: c, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}) == nil {
				pushed++
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, g.Shutdown(ctx))
	acks, rejects := rp.take()
	require.Empty(t, rejects)
	require.Equal(t, pushed, len(acks))
	for i := range rooms {
		n := 0
		for _, rec := range readLog(t, log, fmt.Sprintf("r%d", i)) {
			if decode(t, rec.Event).Player == "p" {
				n++
			}
		}
		assert.Equal(t, 300, n, "room r%d has every acked action", i)
	}
	_, err = g.Room(ctx, "r0")
	assert.ErrorIs(t, err, ErrShutdown)
	assert.ErrorIs(t, rooms[0].Push(Action{Player: "p", CSeq: 999, Kind: gamestate.KindAttack, Target: "baron"}), ErrClosed)
}

func TestIdleRoomsEvicted(t *testing.T) {
	log := queue.NewMemoryLog(queue.MemoryOptions{})
	g := newTestRegistry(t, Options{Log: log, IdleTimeout: 50 * time.Millisecond})
	room := openTestRoom(t, g, "idle")
	ctx := context.Background()
	sub := &recorder{}
	_, err := room.Join(ctx, "p", sub)
	require.NoError(t, err)
	require.NoError(t, room.Push(Action{Player: "p", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron"}))
	flush(t, room)
	require.NoError(t, room.Leave(ctx, "p", sub))
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if len(g.Names()) != 0 {
			return fmt.Errorf("rooms still open: %v", g.Names())
		}
		return nil
	})
	<-room.Done()
	// Opening it again rebuilds it from the log and continues the sequence.
	again := openTestRoom(t, g, "idle")
	info, err := again.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), info.Seq)
	assert.Equal(t, uint64(2), info.Epoch)
}

func TestOptionsValidate(t *testing.T) {
	_, err := NewRegistry(Options{QueueLimit: -1, MaxBatch: -2})
	require.Error(t, err)
	for _, want := range []string{"Game: required", "QueueLimit", "MaxBatch"} {
		assert.Contains(t, err.Error(), want)
	}
	// A bound set against another's default is checked against it.
	_, err = NewRegistry(Options{Game: gamestate.Baron(), MaxKnownPlayers: 50})
	assert.ErrorContains(t, err, "MaxKnownPlayers: must be at least MaxPlayers (100), got 50")
	_, err = NewRegistry(Options{Game: gamestate.Baron(), MaxPlayers: 20_000})
	assert.ErrorContains(t, err, "MaxKnownPlayers: must be at least MaxPlayers (20000), got 10000")
}

// A room whose lease is lost (another node took it: here a second registry
// on the same log) halts at once: its members are dropped with
// ErrLeaseLost, nothing more is sequenced by it, and the new owner goes on
// from the last durable seq.
func TestLostLeaseHaltsRoom(t *testing.T) {
	log := queue.NewMemoryLog(queue.MemoryOptions{})
	ttl := 200 * time.Millisecond
	a := newTestRegistry(t, Options{Log: log, Node: queue.Node{ID: "a"}, LeaseTTL: ttl})
	room := openTestRoom(t, a, "r1")
	ctx := context.Background()
	sub := &recorder{}
	_, err := room.Join(ctx, "p", sub)
	require.NoError(t, err)
	rp := &replies{}
	require.NoError(t, room.Push(Action{Player: "p", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	flush(t, room)

	b := newTestRegistry(t, Options{Log: log, Node: queue.Node{ID: "b"}, LeaseTTL: ttl})
	taken := openTestRoom(t, b, "r1")
	select {
	case <-room.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the room that lost its lease did not stop")
	}
	_, dropped := sub.snapshot()
	assert.ErrorIs(t, dropped, queue.ErrLeaseLost)
	assert.ErrorIs(t, room.Push(Action{Player: "p", CSeq: 2, Kind: gamestate.KindAttack, Target: "baron"}), ErrClosed)

	info, err := taken.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), info.Seq, "join and the acked attack")
	assert.Equal(t, uint64(2), info.Epoch)
}

// A room whose lease is lost while its append is in flight (a server
// resuming from a pause finds both at once) abandons the append and tells
// its members the lease is lost, so they reconnect to the new owner (1012
// at the session), not that the room is merely unavailable.
func TestLeaseLostDuringAppend(t *testing.T) {
	gate, room, sub := gatedRoom(t, Options{})
	ctx := context.Background()
	rp := &replies{}
	gate.stall(t, room, Action{Player: "p", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron", Reply: rp})
	room.halt(fmt.Errorf("%w: %w", ErrUnavailable, queue.ErrLeaseLost)) // what the leaser does
	select {
	case <-room.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the halted room did not stop")
	}
	_, dropped := sub.snapshot()
	assert.ErrorIs(t, dropped, queue.ErrLeaseLost)
	assert.ErrorIs(t, room.Err(), queue.ErrLeaseLost)
	assert.Zero(t, rp.answered(), "the abandoned batch is not answered: its outcome is for the new owner")
	meta, err := gate.Meta(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), meta.LastSeq, "only the join is in the log")
}

// A room whose append fails and whose rebuild then finds the room held by
// another node (a server resuming from a pause past its lease, its append
// timed out) has lost its lease: it stops without answering, and its
// members are told so (ErrLeaseLost: 1012, go to the new owner).
func TestRebuildFindsAnotherOwner(t *testing.T) {
	gate, room, sub := gatedRoom(t, Options{})
	timeout := errors.New("read tcp: i/o timeout")
	gate.fail.Store(&timeout)
	gate.owner.Store(&queue.OwnerError{Room: "r1", Owner: queue.Node{ID: "b", URL: "ws://b/ws"}, Epoch: 2, Alive: true})
	rp := &replies{}
	require.NoError(t, room.Push(Action{Player: "p", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	select {
	case <-room.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the room did not stop")
	}
	assert.ErrorIs(t, room.Err(), queue.ErrLeaseLost)
	_, dropped := sub.snapshot()
	assert.ErrorIs(t, dropped, queue.ErrLeaseLost)
	assert.Zero(t, rp.answered(), "the batch's outcome is for the new owner")
}

// Opening one more room than MaxRooms is refused until one is evicted.
func TestMaxRooms(t *testing.T) {
	g := newTestRegistry(t, Options{MaxRooms: 2, IdleTimeout: 50 * time.Millisecond})
	ctx := context.Background()
	openTestRoom(t, g, "a")
	openTestRoom(t, g, "b")
	_, err := g.Room(ctx, "c")
	require.ErrorIs(t, err, ErrTooManyRooms)
	assert.ErrorIs(t, err, ErrUnavailable)
	_, err = g.Room(ctx, "a")
	assert.NoError(t, err, "an open room is not a new one")
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		_, err := g.Room(ctx, "c")
		return err
	})
}

// The dedupe window forgets players who left once a room has seen more
// than twice MaxPlayers of them.
func TestDedupeForgetsPlayersWhoLeft(t *testing.T) {
	g := newTestRegistry(t, Options{MaxPlayers: 2})
	room := openTestRoom(t, g, "r1")
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		p := fmt.Sprintf("p%d", i)
		sub := &recorder{}
		_, err := room.Join(ctx, p, sub)
		require.NoError(t, err)
		require.NoError(t, room.Push(Action{Player: p, CSeq: 1, Kind: gamestate.KindAttack, Target: "baron"}))
		flush(t, room)
		require.NoError(t, room.Leave(ctx, p, sub))
		flush(t, room)
	}
	info, err := room.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(30), info.Seq)
	// The loop is idle after answering Info, and its reply ordered its
	// writes before this read.
	assert.LessOrEqual(t, len(room.dedupe.players), 4)
	// The most recent leavers are the ones kept.
	_, ok := room.dedupe.lookup("p9", 1)
	assert.True(t, ok, "the last player to leave is still remembered")
	_, ok = room.dedupe.lookup("p0", 1)
	assert.False(t, ok, "the first one is forgotten")
}

// Durable before visible: while the batch's append has not returned, its
// submitter has no ack and no member has its event; both come once the
// append succeeds.
func TestNothingVisibleBeforeDurable(t *testing.T) {
	gate, room, sub := gatedRoom(t, Options{})
	seen := sub.count()
	rp := &replies{}
	gate.stall(t, room, Action{Player: "p", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron", Reply: rp})
	assert.Zero(t, rp.answered(), "no ack before the append returns")
	assert.Equal(t, seen, sub.count(), "no event before the append returns")

	gate.open()
	flush(t, room)
	acks, _ := rp.take()
	require.Len(t, acks, 1)
	assert.Equal(t, seen+1, sub.count())
}

// slowRenewLog answers every renewal after delay, as a log far away does.
type slowRenewLog struct {
	queue.Log
	delay  time.Duration
	renews atomic.Int64
}

func (l *slowRenewLog) Renew(ctx context.Context, room string, lease queue.Lease, epoch uint64) error {
	select {
	case <-time.After(l.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	l.renews.Add(1)
	return l.Log.Renew(ctx, room, lease, epoch)
}

// Leases are renewed LeaseRenewers at a time: 64 rooms whose renewals take
// 40 ms each all keep their leases with the default, where one after the
// other (LeaseRenewers 1, the control) a round takes 2.5 s, far past its
// LeaseTTL/4 deadline, and most rooms halt.
func TestLeaseRenewalsRunTogether(t *testing.T) {
	const rooms, ttl, delay = 64, 800 * time.Millisecond, 40 * time.Millisecond
	start := func(renewers int) (*slowRenewLog, []*Room) {
		log := &slowRenewLog{Log: queue.NewMemoryLog(queue.MemoryOptions{}), delay: delay}
		g := newTestRegistry(t, Options{Log: log, Node: queue.Node{ID: "a"}, LeaseTTL: ttl, LeaseRenewers: renewers})
		rs := make([]*Room, rooms)
		for i := range rs {
			rs[i] = openTestRoom(t, g, fmt.Sprintf("r%d", i))
		}
		return log, rs
	}
	halted := func(rs []*Room) (n int) {
		for _, r := range rs {
			select {
			case <-r.Done():
				n++
			default:
			}
		}
		return n
	}

	log, rs := start(0)
	checkFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := log.renews.Load(); n < rooms*5 {
			return fmt.Errorf("%d renewals so far", n)
		}
		return nil
	})
	assert.Zero(t, halted(rs), "five rounds and more: with concurrent renewals every room keeps its lease")

	_, rs = start(1)
	checkFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := halted(rs); n <= rooms/2 {
			return fmt.Errorf("%d rooms halted so far", n)
		}
		return nil
	})
}

// A renewal refused because the room is taking itself again (a rebuild
// after a failed append has a new epoch in the log, and has not yet
// recorded it) is for the old epoch: it does not halt the room, which goes
// on under the new epoch.
func TestRenewalDuringReacquire(t *testing.T) {
	gate := newGatedLog()
	g := newTestRegistry(t, Options{Log: gate, Node: queue.Node{ID: "a"}, LeaseTTL: time.Hour})
	room := openTestRoom(t, g, "r1")
	ctx := context.Background()
	_, err := room.Join(ctx, "p", &recorder{})
	require.NoError(t, err)
	flush(t, room)
	require.Equal(t, uint64(1), room.leaseEpoch.Load())

	hold := make(chan struct{})
	gate.holdAcquire.Store(&hold)
	timeout := errors.New("read tcp: i/o timeout")
	gate.fail.Store(&timeout)
	rp := &replies{}
	require.NoError(t, room.Push(Action{Player: "p", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		if gate.held.Load() == 0 {
			return errors.New("the rebuild has not taken the lease yet")
		}
		return nil
	})

	g.renew(ctx, room) // refused: the log is at epoch 2, the room still says 1
	assert.False(t, room.halted.Load(), "a renewal for the old epoch does not halt the room")

	gate.fail.Store(nil)
	gate.holdAcquire.Store(nil)
	close(hold)
	flush(t, room)
	assert.Equal(t, uint64(2), room.leaseEpoch.Load())
	g.renew(ctx, room)
	assert.False(t, room.halted.Load())
	require.NoError(t, room.Push(Action{Player: "p", CSeq: 2, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	flush(t, room)
	acks, rejects := rp.take()
	require.Len(t, rejects, 1, "the action whose append failed is refused, to be resent")
	assert.Equal(t, CodeUnavailable, rejects[0].Code)
	require.Len(t, acks, 1)
	assert.Equal(t, uint64(2), acks[0].CSeq, "the room goes on under the new epoch")
}

// The registry's counters follow what its rooms did: entries published,
// actions acked (a resend counted as a dup), rooms that failed.
func TestRegistryStats(t *testing.T) {
	g := newTestRegistry(t, Options{Log: queue.NewMemoryLog(queue.MemoryOptions{})})
	room := openTestRoom(t, g, "r1")
	ctx := context.Background()
	_, err := room.Join(ctx, "p", &recorder{})
	require.NoError(t, err)
	rp := &replies{}
	for _, cseq := range []uint64{1, 2, 1} {
		require.NoError(t, room.Push(Action{Player: "p", CSeq: cseq, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	}
	flush(t, room)
	assert.Equal(t, Stats{Rooms: 1, Entries: 3, Acked: 3, Dups: 1}, g.Stats(), "join and two attacks; the resend of cseq 1 is a dup")

	room.halt(fmt.Errorf("%w: %w", ErrUnavailable, queue.ErrLeaseLost))
	<-room.Done()
	assert.Equal(t, uint64(1), g.Stats().Failed)
}

// ackChan is a Replier that hands each answer to a channel.
type ackChan chan Ack

func (c ackChan) Acked(a Ack)       { c <- a }
func (c ackChan) Rejected(x Reject) { c <- Ack{CSeq: x.CSeq} }

// Every action is answered without anything else nudging the room (no
// Flush, no later push): the loop is woken by the first push after each
// drain, and a push that lands while the loop is busy is not lost. Four
// players each send an action only once the previous one is acked, so a
// lost wake-up stalls them all.
func TestEveryPushWakesTheLoop(t *testing.T) {
	g := newTestRegistry(t, Options{Log: queue.NewMemoryLog(queue.MemoryOptions{})})
	room := openTestRoom(t, g, "r1")
	ctx := context.Background()
	const players, actions = 4, 500
	var wg sync.WaitGroup
	for p := range players {
		player := fmt.Sprintf("p%d", p)
		_, err := room.Join(ctx, player, &recorder{})
		require.NoError(t, err)
		wg.Go(func() {
			acks := make(ackChan, 1)
			for cseq := uint64(1); cseq <= actions; cseq++ {
				if err := room.Push(Action{Player: player, CSeq: cseq, Kind: gamestate.KindAttack, Target: "baron", Reply: acks}); err != nil {
					t.Errorf("%s cseq %d: %v", player, cseq, err)
					return
				}
				select {
				case a := <-acks:
					if a.CSeq != cseq || a.Seq == 0 {
						t.Errorf("%s cseq %d: answered %+v", player, cseq, a)
						return
					}
				case <-time.After(10 * time.Second):
					t.Errorf("%s cseq %d: never answered: a wake-up was lost", player, cseq)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The queue's part of resends: a resend passes the limit a client action
// is refused at, lastCSeq sees the player's queued cseqs, and a push whose
// sender has been replaced is refused.
func TestQueueResends(t *testing.T) {
	q := newRoomQueue(NewStamper(func() int64 { return 1 }), 2, 0)
	act := func(player string, cseq uint64) Action {
		return Action{Player: player, CSeq: cseq, Kind: gamestate.KindAttack, Target: "baron"}
	}
	require.NoError(t, q.push(act("p", 3), pushClient))
	require.NoError(t, q.push(act("q", 9), pushClient))
	assert.ErrorIs(t, q.push(act("p", 4), pushClient), ErrBusy)
	require.NoError(t, q.push(act("p", 2), pushResend), "a resend passes the limit")
	assert.Equal(t, uint64(3), q.lastCSeq("p"))
	assert.Equal(t, uint64(9), q.lastCSeq("q"))
	assert.Equal(t, uint64(0), q.lastCSeq("r"))

	var replaced atomic.Bool
	a := act("r", 1)
	a.Replaced = &replaced
	replaced.Store(true)
	assert.ErrorIs(t, q.push(a, pushResend), ErrReplaced)
	assert.Equal(t, uint64(0), q.lastCSeq("r"), "a replaced sender's push is not queued")
	assert.Len(t, q.drain(nil), 3)
}

// Welcome.LastCSeq counts the player's sequenced cseqs, and a room's
// Resend is answered like any action: a sequenced cseq gets its original
// seq as a dup, even while the queue is full.
func TestWelcomeLastCSeqAndResend(t *testing.T) {
	gate, room, _ := gatedRoom(t, Options{QueueLimit: 2})
	ctx := context.Background()
	rp := &replies{}
	for cseq := uint64(1); cseq <= 3; cseq++ {
		require.NoError(t, room.Push(Action{Player: "p", CSeq: cseq, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
		flush(t, room)
	}
	acks, rejects := rp.take()
	require.Empty(t, rejects)
	require.Len(t, acks, 3)

	w, err := room.Join(ctx, "p", &recorder{})
	require.NoError(t, err)
	assert.Equal(t, uint64(3), w.LastCSeq)
	w, err = room.Join(ctx, "other", &recorder{})
	require.NoError(t, err)
	assert.Equal(t, uint64(0), w.LastCSeq)
	// The join entries are durable before the gate closes: else the loop
	// can block on their batch, with the stalling action still queued.
	flush(t, room)

	// Fill the queue behind a stalled batch: a new action is busy, a
	// resend of cseq 2 is taken and answered with its original seq.
	gate.stall(t, room, Action{Player: "other", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron", Reply: &replies{}})
	for cseq := uint64(2); cseq <= 3; cseq++ {
		require.NoError(t, room.Push(Action{Player: "other", CSeq: cseq, Kind: gamestate.KindAttack, Target: "baron", Reply: &replies{}}))
	}
	require.ErrorIs(t, room.Push(Action{Player: "p", CSeq: 4, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}), ErrBusy)
	require.NoError(t, room.Resend(Action{Player: "p", CSeq: 2, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	gate.open()
	flush(t, room)
	acks, rejects = rp.take()
	require.Empty(t, rejects)
	require.Len(t, acks, 1)
	assert.True(t, acks[0].Dup)
	assert.Equal(t, uint64(2), acks[0].CSeq)
}

// A failed append whose batch is not in the log rejects the clients'
// actions (they resend), but the room's own entries, which nobody would
// resend, are sequenced again: a join still joins, a due respawn still
// respawns.
func TestOwnEntriesOfAFailedAppendAreSequencedAgain(t *testing.T) {
	t.Run("join", func(t *testing.T) {
		gate, room, _ := gatedRoom(t, Options{})
		gate.failNext.Store(1)
		q := &recorder{}
		_, err := room.Join(context.Background(), "q", q)
		require.NoError(t, err)
		rp := &replies{}
		require.NoError(t, room.Push(Action{Player: "q", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
		flush(t, room)
		acks, rejects := rp.take()
		require.Empty(t, rejects)
		require.Len(t, acks, 1)
		ev := decode(t, readLog(t, gate, "r1")[acks[0].Seq-1].Event)
		assert.NotContains(t, string(ev.Result), "not_joined", "q's join was logged before its attack")
		require.NoError(t, room.Err())
	})
	t.Run("respawn", func(t *testing.T) {
		clock := newManualClock(1_000_000_000)
		gate, room, _ := gatedRoom(t, Options{Clock: clock.now, Game: gamestate.BaronWith(gamestate.BaronOptions{MaxHP: 1})})
		rp := &replies{}
		require.NoError(t, room.Push(Action{Player: "p", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
		flush(t, room)
		clock.advance(21 * time.Second)
		gate.failNext.Store(1)
		flush(t, room) // the respawn is due; its first append fails
		require.NoError(t, room.Push(Action{Player: "p", CSeq: 2, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
		flush(t, room)
		acks, rejects := rp.take()
		require.Empty(t, rejects)
		require.Len(t, acks, 2)
		ev := decode(t, readLog(t, gate, "r1")[acks[1].Seq-1].Event)
		assert.NotContains(t, string(ev.Result), "target_dead", "Baron respawned")
		assert.Equal(t, gamestate.KindRespawn, decode(t, readLog(t, gate, "r1")[acks[1].Seq-2].Event).Kind)
	})
	t.Run("twice running", func(t *testing.T) {
		gate, room, sub := gatedRoom(t, Options{})
		gate.failNext.Store(2)
		_, err := room.Join(context.Background(), "q", &recorder{})
		require.NoError(t, err)
		select {
		case <-room.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the room did not stop")
		}
		assert.ErrorIs(t, room.Err(), ErrUnavailable)
		_, dropped := sub.snapshot()
		assert.Error(t, dropped, "members are dropped and rejoin")
	})
}

// Names and Stats may be read while rooms open (a metrics scrape): they
// skip rooms still opening instead of reading a half-set slot (run with
// -race).
func TestNamesWhileRoomsOpen(t *testing.T) {
	g := newTestRegistry(t, Options{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			_, err := g.Room(context.Background(), fmt.Sprintf("r%d", i))
			assert.NoError(t, err)
		}
	}()
	for open := true; open; {
		select {
		case <-done:
			open = false
		default:
		}
		assert.LessOrEqual(t, len(g.Names()), 50)
		_ = g.Stats()
	}
	assert.Len(t, g.Names(), 50)
}

// A room's state keeps every player who joined; MaxKnownPlayers bounds
// them: a new player past it gets ErrRoomFull, a known one rejoins.
func TestMaxKnownPlayers(t *testing.T) {
	g := newTestRegistry(t, Options{MaxPlayers: 1, MaxKnownPlayers: 2})
	room := openTestRoom(t, g, "r1")
	ctx := context.Background()
	for _, p := range []string{"a", "b"} {
		sub := &recorder{}
		_, err := room.Join(ctx, p, sub)
		require.NoError(t, err)
		require.NoError(t, room.Leave(ctx, p, sub))
		flush(t, room)
	}
	_, err := room.Join(ctx, "c", &recorder{})
	require.ErrorIs(t, err, ErrRoomFull)
	assert.Contains(t, err.Error(), "it has had 2 players")
	_, err = room.Join(ctx, "a", &recorder{})
	assert.NoError(t, err, "a known player may come back")
}
