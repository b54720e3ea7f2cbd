package sequencer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/internal/redistest"
	"github.com/lasthit/lasthit/queue"
)

func pausedTestRedisLog(t *testing.T, srv *redistest.Server, opts queue.RedisOptions) *queue.RedisLog {
	t.Helper()
	opts.URL = srv.URL()
	if opts.Prefix == "" {
		opts.Prefix = "paused"
	}
	l, err := queue.NewRedisLog(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// pausedLog is a RedisLog through which a test can freeze this node
// the way SIGSTOP or a VM pause does: while paused, its renewals and
// heartbeats wait (the leaser is frozen too), and the room loop is frozen
// inside the Append attempt that the hook runs in.
type pausedLog struct {
	*queue.RedisLog
	paused   atomic.Pointer[chan struct{}]
	onAppend atomic.Pointer[func()]
}

func (l *pausedLog) wait() {
	if p := l.paused.Load(); p != nil {
		<-*p
		// After the resume the leaser first waits for its tick and writes
		// the heartbeat (a round trip) before it renews again.
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *pausedLog) Renew(ctx context.Context, room string, lease queue.Lease, epoch uint64) error {
	l.wait()
	return l.RedisLog.Renew(ctx, room, lease, epoch)
}

func (l *pausedLog) Heartbeat(ctx context.Context, node queue.Node, ttl time.Duration) error {
	l.wait()
	return l.RedisLog.Heartbeat(ctx, node, ttl)
}

func (l *pausedLog) Append(ctx context.Context, room string, b queue.Batch) error {
	if f := l.onAppend.Swap(nil); f != nil {
		(*f)()
		// The attempt was never written (the process froze before the
		// write; after the resume its deadline had passed): the log gives
		// up with a timeout, an outcome the room loop must treat as
		// unknown.
		return fmt.Errorf("queue: append %s: gave up after 1 attempts (%w)", room, context.DeadlineExceeded)
	}
	return l.RedisLog.Append(ctx, room, b)
}

// Node a is frozen with an append of player p's attack in flight (not yet
// written). Its lease expires; node b takes the room, sequences a join,
// an attack and a leave of player q at the same seqs, and stops
// gracefully (releasing its lease). Node a resumes: its append gave up,
// so appendFailed rebuilds; the lease is free, the rebuilt log reaches
// past the batch's last seq, and a publishes and acks its own batch,
// whose entry is not the one the log holds at that seq.
func TestPausedWriterDoesNotPublishAnotherWritersSeqs(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	raw := pausedTestRedisLog(t, srv, queue.RedisOptions{})
	const ttl = 500 * time.Millisecond
	la := &pausedLog{RedisLog: raw}
	ga := newTestRegistry(t, Options{Log: la, Node: queue.Node{ID: "a", URL: "ws://a"}, LeaseTTL: ttl})
	gb := newTestRegistry(t, Options{Log: raw, Node: queue.Node{ID: "b", URL: "ws://b"}, LeaseTTL: ttl})
	ctx := context.Background()

	ra := openTestRoom(t, ga, "r1")
	subA := &recorder{}
	_, err := ra.Join(ctx, "p", subA)
	require.NoError(t, err)
	flush(t, ra)
	before, err := raw.Meta(ctx, "r1")
	require.NoError(t, err)
	L := before.LastSeq

	hook := func() {
		ch := make(chan struct{})
		la.paused.Store(&ch)
		time.Sleep(2 * ttl) // a's lease expires in Redis
		rb, err := gb.Room(ctx, "r1")
		require.NoError(t, err)
		_, err = rb.Join(ctx, "q", &recorder{})
		require.NoError(t, err)
		require.NoError(t, rb.Push(Action{Player: "q", CSeq: 1, Kind: "attack", Target: "baron", Reply: &replies{}}))
		flush(t, rb)
		require.NoError(t, gb.Stop(ctx, "r1")) // sequences q's leave, releases the lease
		la.paused.Store(nil)
		close(ch)
	}
	la.onAppend.Store(&hook)

	rp := &replies{}
	require.NoError(t, ra.Push(Action{Player: "p", CSeq: 1, Kind: "attack", Target: "baron", Reply: rp}))
	select {
	case <-ra.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the paused writer's room did not stop")
	}
	assert.ErrorIs(t, ra.Err(), queue.ErrLeaseLost, "its members go to the room's new owner")
	acks, rejects := rp.take()
	t.Logf("a answered p's cseq 1: acks %+v, rejects %+v", acks, rejects)

	logged := readLog(t, raw, "r1")
	byseq := map[uint64][]byte{}
	for _, r := range logged {
		byseq[r.Seq] = r.Event
	}
	found := false
	for _, r := range logged {
		if e := decode(t, r.Event); e.Player == "p" && e.CSeq == 1 {
			found = true
		}
	}
	evs, _ := subA.snapshot()
	for _, ev := range evs {
		e := decode(t, ev)
		if e.Seq > L {
			t.Logf("a published seq %d: %s\n    the log holds seq %d: %s", e.Seq, ev, e.Seq, byseq[e.Seq])
			assert.Equal(t, string(byseq[e.Seq]), string(ev), "a published an event the log does not hold")
		}
	}
	for _, a := range acks {
		got := decode(t, byseq[a.Seq])
		assert.True(t, got.Player == "p" && got.CSeq == a.CSeq, "p's cseq %d acked with seq %d, but the log's seq %d is %s", a.CSeq, a.Seq, a.Seq, byseq[a.Seq])
	}
	if len(acks) > 0 {
		assert.True(t, found, "p's cseq 1 was acked, but it is nowhere in the log: an acked action lost")
	}
}
