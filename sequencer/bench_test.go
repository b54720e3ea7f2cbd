package sequencer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
)

// The pipeline measured: Push (stamp + queue) → drain → dedupe, seq, Apply,
// encode → MemoryLog append → publish to one subscriber → ack. One op is
// one action. Run:
//
//	go test -run '^$' -bench Pipeline -benchmem -count 5 ./sequencer/
func BenchmarkPipeline(b *testing.B) {
	for _, q := range []string{"mutex", "chan"} {
		for _, c := range []struct{ rooms, producers int }{{1, 1}, {1, 8}, {1, 64}, {1000, 8}} {
			b.Run(fmt.Sprintf("queue=%s/rooms=%d/producers=%d", q, c.rooms, c.producers), func(b *testing.B) {
				benchPipeline(b, q == "chan", c.rooms, c.producers)
			})
		}
	}
}

type countingSub struct{ n atomic.Int64 }

func (s *countingSub) Publish(evs [][]byte) bool { s.n.Add(int64(len(evs))); return true }
func (s *countingSub) Dropped(error)             {}

type countingReplier struct{ acked, rejected atomic.Int64 }

func (r *countingReplier) Acked(Ack)       { r.acked.Add(1) }
func (r *countingReplier) Rejected(Reject) { r.rejected.Add(1) }

func benchPipeline(b *testing.B, useChan bool, rooms, producers int) {
	opts := Options{
		// Baron respawns right after each kill, so the mix has attacks,
		// last hits, refusals and server-made respawn entries.
		Game:       gamestate.BaronWith(gamestate.BaronOptions{RespawnDelay: time.Microsecond}),
		Log:        queue.NewMemoryLog(queue.MemoryOptions{Retain: 1000}),
		QueueLimit: 4096,
	}
	if useChan {
		opts.newInbox = func(s *Stamper, limit int, lastAt int64) inbox { return newChanQueue(s, limit, lastAt) }
	}
	g, err := NewRegistry(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = g.Shutdown(context.Background()) }()
	ctx := context.Background()
	rs := make([]*Room, rooms)
	for i := range rs {
		if rs[i], err = g.Room(ctx, fmt.Sprintf("room%d", i)); err != nil {
			b.Fatal(err)
		}
		if _, err := rs[i].Join(ctx, "watcher", &countingSub{}); err != nil {
			b.Fatal(err)
		}
		for p := 0; p < producers; p++ {
			if _, err := rs[i].Join(ctx, fmt.Sprintf("p%d", p), nopSub{}); err != nil {
				b.Fatal(err)
			}
		}
		if err := rs[i].Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	// One replier per room: a counter shared by every room loop would be a
	// cache line both cores fight over on every ack, a cost of the
	// harness, not of the pipeline.
	reps := make([]countingReplier, rooms)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N / producers
	for p := 0; p < producers; p++ {
		n := per
		if p == 0 {
			n += b.N % producers
		}
		wg.Add(1)
		go func(p, n int) {
			defer wg.Done()
			player := fmt.Sprintf("p%d", p)
			cseq := make([]uint64, rooms)
			for i := 0; i < n; {
				r := (i + p) % rooms
				err := rs[r].Push(Action{Player: player, CSeq: cseq[r] + 1, Kind: gamestate.KindAttack, Target: gamestate.TargetBaron, Reply: &reps[r]})
				if errors.Is(err, ErrBusy) {
					runtime.Gosched()
					continue
				}
				if err != nil {
					b.Error(err)
					return
				}
				cseq[r]++
				i++
			}
		}(p, n)
	}
	wg.Wait()
	// Flush returns once everything pushed before it is answered.
	for _, r := range rs {
		if err := r.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var acked, rejected int64
	for i := range reps {
		acked += reps[i].acked.Load()
		rejected += reps[i].rejected.Load()
	}
	if rejected != 0 || acked != int64(b.N) {
		b.Fatalf("%d of %d actions acked, %d rejected", acked, b.N, rejected)
	}
}

type nopSub struct{}

func (nopSub) Publish([][]byte) bool { return true }
func (nopSub) Dropped(error)         {}

// chanQueue is the baseline: the same room loop with a buffered channel as
// the room queue. Stamping still happens under a lock so the channel is in
// stamp order.
type chanQueue struct {
	stamper *Stamper
	ch      chan Action
	notify  chan struct{}

	mu     sync.Mutex
	lastAt int64
	closed bool
}

func newChanQueue(s *Stamper, limit int, lastAt int64) *chanQueue {
	return &chanQueue{stamper: s, ch: make(chan Action, limit), notify: make(chan struct{}, 1), lastAt: lastAt}
}

func (q *chanQueue) push(a Action, _ pushKind) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	a.stamp = q.stamper.stampLocked(&q.lastAt)
	select {
	case q.ch <- a:
	default:
		q.mu.Unlock()
		return ErrBusy
	}
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return nil
}

func (q *chanQueue) drain(spare []Action) []Action {
	out := spare[:0]
	for {
		select {
		case a := <-q.ch:
			out = append(out, a)
		default:
			return out
		}
	}
}

func (q *chanQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// lastCSeq: a channel cannot be looked into, and the benchmarks never
// resend, so the baseline reports no queued cseq.
func (q *chanQueue) lastCSeq(string) uint64 { return 0 }

func (q *chanQueue) wake() <-chan struct{} { return q.notify }
func (q *chanQueue) len() int              { return len(q.ch) }

// Replay speed: decode each logged frame, apply it, compare the result.
//
//	go test -run '^$' -bench Replay -benchmem -count 5 ./sequencer/
func BenchmarkReplay(b *testing.B) {
	spec := gamestate.BaronWith(gamestate.BaronOptions{RespawnDelay: time.Microsecond})
	log := queue.NewMemoryLog(queue.MemoryOptions{Retain: 1 << 20})
	g, err := NewRegistry(Options{Game: spec, Log: log})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	room, err := g.Room(ctx, "replay")
	if err != nil {
		b.Fatal(err)
	}
	for p := 0; p < 10; p++ {
		if _, err := room.Join(ctx, fmt.Sprintf("p%d", p), nopSub{}); err != nil {
			b.Fatal(err)
		}
	}
	const entries = 100_000
	for c := uint64(1); c <= entries/10; c++ {
		for p := 0; p < 10; p++ {
			for room.Push(Action{Player: fmt.Sprintf("p%d", p), CSeq: c, Kind: gamestate.KindAttack, Target: "baron"}) != nil {
				runtime.Gosched()
			}
		}
	}
	if err := room.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	_ = g.Shutdown(ctx)
	meta, _ := log.Meta(ctx, "replay")
	recs, err := log.Read(ctx, "replay", 1, meta.LastSeq, int(meta.LastSeq))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		rp := NewReplayer(spec.New())
		for _, rec := range recs {
			if done == b.N {
				break
			}
			if _, err := rp.Step(rec.Event); err != nil {
				b.Fatal(err)
			}
			done++
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
