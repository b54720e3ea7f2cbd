package sequencer

import "sync"

// roomQueue is the room's ordered inbox: a mutex, a slice and a notify
// channel with room for one signal. Push stamps under the lock, so the
// slice is in stamp order; the room loop takes the whole slice at once.
type roomQueue struct {
	stamper *Stamper
	limit   int
	notify  chan struct{}

	mu     sync.Mutex
	items  []Action
	lastAt int64
	closed bool
}

func newRoomQueue(stamper *Stamper, limit int, lastAt int64) *roomQueue {
	return &roomQueue{
		stamper: stamper,
		limit:   limit,
		notify:  make(chan struct{}, 1),
		items:   make([]Action, 0, min(limit, 64)),
		lastAt:  lastAt,
	}
}

// push stamps a and appends it. Client actions are refused with ErrBusy at
// the limit, before any stamp is taken. Server-made entries (join, leave,
// timers) pass the limit: they are bounded by the room's membership and its
// timers, and refusing a leave would lose it.
func (q *roomQueue) push(a Action, server bool) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if !server && len(q.items) >= q.limit {
		q.mu.Unlock()
		return ErrBusy
	}
	a.stamp = q.stamper.stampLocked(&q.lastAt)
	q.items = append(q.items, a)
	first := len(q.items) == 1
	q.mu.Unlock()
	// The loop drains everything at once, so only the first action after
	// a drain needs to wake it; the others find the signal already sent.
	// Not touching the channel on every push spares a cache line the
	// loop's CPU also writes.
	if first {
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
	return nil
}

// drain swaps the waiting actions for spare (emptied) and returns them.
func (q *roomQueue) drain(spare []Action) []Action {
	q.mu.Lock()
	out := q.items
	q.items = spare[:0]
	q.mu.Unlock()
	return out
}

// close refuses further pushes; what is queued stays for a last drain.
func (q *roomQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

func (q *roomQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
