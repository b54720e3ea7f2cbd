package queue_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/internal/redistest"
	"github.com/lasthit/lasthit/queue"
)

// Two nodes contend for one room: the lease holder keeps it while it
// renews; the other is told who owns it (alive or not); once the lease
// expires the other takes it under a new epoch, and the old holder's
// renewals and appends are refused.
func TestRedisLeases(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	la := newRedisLog(t, srv.URL(), queue.RedisOptions{Prefix: "lease"})
	lb := newRedisLog(t, srv.URL(), queue.RedisOptions{Prefix: "lease"})
	ctx := testCtx(t, 30*time.Second)
	const ttl = 300 * time.Millisecond
	a := queue.Lease{Node: queue.Node{ID: "a", URL: "ws://a/ws"}, TTL: ttl}
	b := queue.Lease{Node: queue.Node{ID: "b", URL: "ws://b/ws"}, TTL: ttl}

	ea, err := la.Acquire(ctx, "r1", a)
	require.NoError(t, err)
	ea2, err := la.Acquire(ctx, "r1", a)
	require.NoError(t, err, "a node may take again a room it holds")
	require.Greater(t, ea2, ea)
	ea = ea2

	_, err = lb.Acquire(ctx, "r1", b)
	var owned *queue.OwnerError
	require.ErrorAs(t, err, &owned)
	assert.Equal(t, a.Node, owned.Owner)
	assert.Equal(t, ea, owned.Epoch)
	assert.False(t, owned.Alive, "a has sent no heartbeat")
	assert.Empty(t, owned.RedirectURL(), "a dead owner is not a redirect target")

	require.NoError(t, la.Heartbeat(ctx, a.Node, ttl))
	_, err = lb.Acquire(ctx, "r1", b)
	require.ErrorAs(t, err, &owned)
	assert.True(t, owned.Alive)
	assert.Equal(t, "ws://a/ws", owned.RedirectURL())

	info, err := la.RoomInfo(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, "a ws://a/ws", info.Owner)

	// While a renews, b cannot take the room: four renewals a third of
	// the ttl apart outlive the first lease.
	renew := time.NewTicker(ttl / 3)
	for i := 0; i < 4; i++ {
		require.NoError(t, la.Renew(ctx, "r1", a, ea))
		<-renew.C
	}
	renew.Stop()
	_, err = lb.Acquire(ctx, "r1", b)
	require.ErrorAs(t, err, &owned)

	// a stops renewing (paused, partitioned): b takes the room.
	var eb uint64
	redistest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		eb, err = lb.Acquire(ctx, "r1", b)
		return err
	})
	assert.Equal(t, ea+1, eb)
	assert.ErrorIs(t, la.Renew(ctx, "r1", a, ea), queue.ErrLeaseLost)
	err = la.Append(ctx, "r1", queue.Batch{Epoch: ea, Records: []queue.Record{{Seq: 1, Event: []byte(`{}`)}}})
	assert.ErrorIs(t, err, queue.ErrFenced, "the old owner's late write is rejected")

	// A graceful release hands the room over at once.
	require.NoError(t, lb.Release(ctx, "r1", b, eb))
	ea, err = la.Acquire(ctx, "r1", a)
	require.NoError(t, err)
	assert.Equal(t, eb+1, ea)
	require.NoError(t, lb.Release(ctx, "r1", b, eb), "releasing a lease no longer held is not an error")
	require.NoError(t, la.Renew(ctx, "r1", a, ea), "b's late release did not touch a's lease")
	assert.False(t, errors.Is(la.Renew(ctx, "r1", a, ea), queue.ErrLeaseLost))
}

// A server renews all its rooms at once (the registry runs renewals side by
// side, and they share round trips in the autopipeliner): every renewal of
// a held lease succeeds, and each answers for its own room, a renewal under
// an outdated epoch among them included.
func TestRedisRenewMany(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	l := newRedisLog(t, srv.URL(), queue.RedisOptions{Prefix: "renew"})
	ctx := testCtx(t, 30*time.Second)
	lease := queue.Lease{Node: queue.Node{ID: "a", URL: "ws://a/ws"}, TTL: 10 * time.Second}
	const rooms = 500
	epochs := make([]uint64, rooms)
	for i := range epochs {
		e, err := l.Acquire(ctx, fmt.Sprintf("r%d", i), lease)
		require.NoError(t, err)
		epochs[i] = e
	}
	stale := rooms / 2
	epochs[stale]-- // as if the room had been taken again since

	errs := make([]error, rooms)
	var wg sync.WaitGroup
	for i := range epochs {
		wg.Go(func() { errs[i] = l.Renew(ctx, fmt.Sprintf("r%d", i), lease, epochs[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if i == stale {
			assert.ErrorIs(t, err, queue.ErrLeaseLost, "room %d", i)
		} else {
			assert.NoError(t, err, "room %d", i)
		}
	}
}
