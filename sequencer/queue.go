package sequencer

import "sync"

// pushKind says which limits a push is held to.
type pushKind uint8

const (
	pushClient pushKind = iota // refused with ErrBusy at the limit
	pushResend                 // a resend (see Room.Resend): passes the limit
	pushServer                 // a server-made entry: passes the limit
)

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
// timers, and refusing a leave would lose it. Resends pass it too: the
// session bounds how many it sends per join. An action whose sender has
// been replaced is refused under the lock, so lastCSeq, taken after the
// replacement, has counted every action the replaced sender got in.
func (q *roomQueue) push(a Action, kind pushKind) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if a.Replaced != nil && a.Replaced.Load() {
		q.mu.Unlock()
		return ErrReplaced
	}
	if kind == pushClient && len(q.items) >= q.limit {
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

// lastCSeq is the highest cseq of player's actions waiting in the queue,
// 0 if none.
func (q *roomQueue) lastCSeq(player string) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	var last uint64
	for i := range q.items {
		if q.items[i].Player == player {
			last = max(last, q.items[i].CSeq)
		}
	}
	return last
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
