package sequencer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/internal/testutil"
	"github.com/lasthit/lasthit/queue"
)

// manualClock is room time that moves only when a test says so.
type manualClock struct{ ns atomic.Int64 }

func newManualClock(start int64) *manualClock {
	c := &manualClock{}
	c.ns.Store(start)
	return c
}

func (c *manualClock) now() int64              { return c.ns.Load() }
func (c *manualClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// recorder is a Subscriber that keeps every event and can be made to refuse
// them past a limit, like a session whose outbox is full.
type recorder struct {
	mu      sync.Mutex
	events  [][]byte
	limit   int // 0 = unbounded
	dropped error
}

func (r *recorder) Publish(evs [][]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.limit > 0 && len(r.events)+len(evs) > r.limit {
		return false
	}
	r.events = append(r.events, evs...)
	return true
}

func (r *recorder) Dropped(reason error) {
	r.mu.Lock()
	r.dropped = reason
	r.mu.Unlock()
}

func (r *recorder) snapshot() ([][]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.events...), r.dropped
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// replies is a Replier that keeps every answer.
type replies struct {
	mu      sync.Mutex
	acks    []Ack
	rejects []Reject
}

func (r *replies) Acked(a Ack) {
	r.mu.Lock()
	r.acks = append(r.acks, a)
	r.mu.Unlock()
}

func (r *replies) Rejected(x Reject) {
	r.mu.Lock()
	r.rejects = append(r.rejects, x)
	r.mu.Unlock()
}

func (r *replies) take() ([]Ack, []Reject) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, x := r.acks, r.rejects
	r.acks, r.rejects = nil, nil
	return a, x
}

func (r *replies) answered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acks) + len(r.rejects)
}

// checkFor polls f until it returns nil or total passes.
func checkFor(t testing.TB, total, every time.Duration, f func() error) {
	t.Helper()
	testutil.CheckFor(t, total, every, f)
}

func newTestRegistry(t testing.TB, opts Options) *Registry {
	t.Helper()
	if opts.Game.New == nil {
		opts.Game = gamestate.Baron()
	}
	g, err := NewRegistry(opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	return g
}

func openTestRoom(t testing.TB, g *Registry, name string) *Room {
	t.Helper()
	r, err := g.Room(context.Background(), name)
	require.NoError(t, err)
	return r
}

func flush(t testing.TB, r *Room) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, r.Flush(ctx))
}

// readLog returns every record of a room's log.
func readLog(t testing.TB, log queue.Log, room string) []queue.Record {
	t.Helper()
	ctx := context.Background()
	meta, err := log.Meta(ctx, room)
	require.NoError(t, err)
	var out []queue.Record
	for from := meta.FirstSeq; from <= meta.LastSeq; {
		recs, err := log.Read(ctx, room, from, meta.LastSeq, 4096)
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		out = append(out, recs...)
		from = recs[len(recs)-1].Seq + 1
	}
	return out
}

func decode(t testing.TB, frame []byte) Event {
	t.Helper()
	ev, err := DecodeEvent(frame)
	require.NoError(t, err)
	return ev
}
