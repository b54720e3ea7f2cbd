package sequencer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/queue"
)

// gatedLog is a MemoryLog whose appends can be held at a gate, to stall a
// room loop the way a slow store would.
type gatedLog struct {
	*queue.MemoryLog
	mu      sync.Mutex
	gate    chan struct{} // closed = open
	blocked atomic.Int32
	fail    atomic.Pointer[error] // when set, appends fail with it after writing (a lost reply) or before
	// failNext is how many of the next appends fail with errDropped
	// before writing anything.
	failNext atomic.Int32
	lostAck  atomic.Bool
	owner    atomic.Pointer[queue.OwnerError] // when set, Acquire refuses with it: another node holds the lease
	// When set, Acquire takes the lease in the log and then waits for the
	// channel to close before it returns the epoch; held counts the waits.
	holdAcquire atomic.Pointer[chan struct{}]
	held        atomic.Int32
}

func (g *gatedLog) Acquire(ctx context.Context, room string, lease queue.Lease) (uint64, error) {
	if o := g.owner.Load(); o != nil {
		return 0, o
	}
	epoch, err := g.MemoryLog.Acquire(ctx, room, lease)
	if hold := g.holdAcquire.Load(); hold != nil && err == nil {
		g.held.Add(1)
		<-*hold
	}
	return epoch, err
}

var errDropped = errors.New("connection reset before the append was written")

func newGatedLog() *gatedLog {
	g := &gatedLog{MemoryLog: queue.NewMemoryLog(queue.MemoryOptions{}), gate: make(chan struct{})}
	close(g.gate)
	return g
}

func (g *gatedLog) close() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedLog) open() {
	g.mu.Lock()
	select {
	case <-g.gate:
	default:
		close(g.gate)
	}
	g.mu.Unlock()
}

func (g *gatedLog) waiting() int { return int(g.blocked.Load()) }

func (g *gatedLog) Append(ctx context.Context, room string, b queue.Batch) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	g.blocked.Add(1)
	select {
	case <-gate:
	case <-ctx.Done():
		// Like RedisLog: a halted room's context abandons the append.
		g.blocked.Add(-1)
		return ctx.Err()
	}
	g.blocked.Add(-1)
	for n := g.failNext.Load(); n > 0; n = g.failNext.Load() {
		if g.failNext.CompareAndSwap(n, n-1) {
			return errDropped
		}
	}
	if p := g.fail.Load(); p != nil {
		if g.lostAck.Load() {
			if err := g.MemoryLog.Append(ctx, room, b); err != nil {
				return err
			}
		}
		return *p
	}
	return g.MemoryLog.Append(ctx, room, b)
}

// gatedRoom opens room r1 over a gatedLog with player "p" joined; sub gets
// the room's events.
func gatedRoom(t *testing.T, opts Options) (*gatedLog, *Room, *recorder) {
	t.Helper()
	gate := newGatedLog()
	opts.Log = gate
	room := openTestRoom(t, newTestRegistry(t, opts), "r1")
	sub := &recorder{}
	_, err := room.Join(context.Background(), "p", sub)
	require.NoError(t, err)
	flush(t, room)
	return gate, room, sub
}

// stall closes the gate and pushes a, then waits until the room loop is
// blocked appending the batch that holds it.
func (g *gatedLog) stall(t *testing.T, room *Room, a Action) {
	t.Helper()
	g.close()
	require.NoError(t, room.Push(a))
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		if g.waiting() == 0 {
			return errors.New("loop not yet blocked in append")
		}
		return nil
	})
}
