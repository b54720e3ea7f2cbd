package sequencer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
)

// expiringLog is a MemoryLog whose lease on its one room expires as a
// Redis lease does: a Renew more than the lease's TTL after the last
// Acquire or Renew finds it gone. Each Read takes readDelay, as pages of
// a long log from a distant store do.
type expiringLog struct {
	*queue.MemoryLog
	readDelay time.Duration
	leasedAt  atomic.Int64 // unix ns of the last Acquire or Renew
	renews    atomic.Int64
}

func (l *expiringLog) Acquire(ctx context.Context, room string, lease queue.Lease) (uint64, error) {
	epoch, err := l.MemoryLog.Acquire(ctx, room, lease)
	if err == nil {
		l.leasedAt.Store(time.Now().UnixNano())
	}
	return epoch, err
}

func (l *expiringLog) Renew(ctx context.Context, room string, lease queue.Lease, epoch uint64) error {
	if time.Since(time.Unix(0, l.leasedAt.Load())) > lease.TTL {
		return queue.ErrLeaseLost
	}
	if err := l.MemoryLog.Renew(ctx, room, lease, epoch); err != nil {
		return err
	}
	l.leasedAt.Store(time.Now().UnixNano())
	l.renews.Add(1)
	return nil
}

func (l *expiringLog) Read(ctx context.Context, room string, from, to uint64, max int) ([]queue.Record, error) {
	select {
	case <-time.After(l.readDelay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return l.MemoryLog.Read(ctx, room, from, to, max)
}

// A rebuild that outlasts its lease (24 pages of 30 ms against a 300 ms
// lease) keeps the lease while it reads: the room opens, is not
// halted by the leaser's first renewals, and sequences.
func TestRebuildKeepsItsLease(t *testing.T) {
	const ttl, pages, page = 300 * time.Millisecond, 24, 8
	log := &expiringLog{MemoryLog: queue.NewMemoryLog(queue.MemoryOptions{})}

	// Write the log: a join and pages*page-1 attacks.
	w := newTestRegistry(t, Options{Log: log})
	room := openTestRoom(t, w, "r1")
	ctx := context.Background()
	_, err := room.Join(ctx, "p", &recorder{})
	require.NoError(t, err)
	rp := &replies{}
	for cseq := uint64(1); cseq < pages*page; cseq++ {
		require.NoError(t, room.Push(Action{Player: "p", CSeq: cseq, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	}
	flush(t, room)
	require.NoError(t, w.Stop(ctx, "r1"))
	meta, err := log.Meta(ctx, "r1")
	require.NoError(t, err)
	require.GreaterOrEqual(t, meta.LastSeq, uint64(pages*page), "the log holds the pages to read (and the leave)")

	log.readDelay = 30 * time.Millisecond
	g := newTestRegistry(t, Options{Log: log, Node: queue.Node{ID: "a"}, LeaseTTL: ttl, ReadPage: page})
	opened := time.Now()
	room = openTestRoom(t, g, "r1")
	require.Greater(t, time.Since(opened), 2*ttl, "the rebuild outlasts the lease")
	renewed := log.renews.Load()
	assert.Positive(t, renewed, "renewed during the rebuild")

	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := log.renews.Load() - renewed; n < 3 {
			return fmt.Errorf("%d renewals by the leaser so far", n)
		}
		return nil
	})
	select {
	case <-room.Done():
		t.Fatalf("the room stopped after its rebuild: %v", room.Err())
	default:
	}
	_, err = room.Join(ctx, "p", &recorder{})
	require.NoError(t, err)
	rp = &replies{}
	require.NoError(t, room.Push(Action{Player: "p", CSeq: pages * page, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	flush(t, room)
	acks, rejects := rp.take()
	assert.Empty(t, rejects)
	require.Len(t, acks, 1)
}
