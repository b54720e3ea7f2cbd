package sequencer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/queue"
)

// fencingLog is a MemoryLog whose appends can be made to fail as fenced,
// as if another node had taken the room.
type fencingLog struct {
	*queue.MemoryLog
	mu    sync.Mutex
	fence bool
}

func (l *fencingLog) Append(ctx context.Context, room string, b queue.Batch) error {
	l.mu.Lock()
	f := l.fence
	l.mu.Unlock()
	if f {
		return fmt.Errorf("another node writes: %w", queue.ErrFenced)
	}
	return l.MemoryLog.Append(ctx, room, b)
}

// A graceful stop whose last batch (the members' leaves) is fenced ends
// the room with that error, as outside a stop: Err says why, the room
// counts as failed, and the members are not told it stopped cleanly.
func TestStopReportsItsLastBatchFailing(t *testing.T) {
	log := &fencingLog{MemoryLog: queue.NewMemoryLog(queue.MemoryOptions{})}
	g := newTestRegistry(t, Options{Log: log})
	room := openTestRoom(t, g, "r1")
	sub := &recorder{}
	_, err := room.Join(context.Background(), "p", sub)
	require.NoError(t, err)
	flush(t, room)
	before := g.Stats().Failed
	log.mu.Lock()
	log.fence = true
	log.mu.Unlock()
	room.Stop()
	<-room.Done()
	_, dropped := sub.snapshot()
	assert.ErrorIs(t, room.Err(), queue.ErrFenced)
	assert.ErrorIs(t, dropped, queue.ErrFenced)
	assert.NotErrorIs(t, dropped, ErrClosed, "not a clean stop")
	assert.Equal(t, before+1, g.Stats().Failed)
}

// A room halted while its graceful stop appends the last batch (its lease
// lost meanwhile) tells its members the lease is lost, so they go to the
// new owner, not that it stopped cleanly.
func TestHaltDuringGracefulStop(t *testing.T) {
	gate, room, sub := gatedRoom(t, Options{})
	gate.close()
	room.Stop()
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		if gate.waiting() == 0 {
			return errors.New("the stop's last batch is not appending yet")
		}
		return nil
	})
	room.halt(fmt.Errorf("%w: %w", ErrUnavailable, queue.ErrLeaseLost))
	<-room.Done()
	_, dropped := sub.snapshot()
	assert.ErrorIs(t, dropped, queue.ErrLeaseLost)
}
