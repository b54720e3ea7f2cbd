package loadtest

import (
	"sync"
	"time"
)

// burstsKept is how many recent burst times a room remembers; bots of a
// room burst on the same low-HP event within milliseconds of each other.
const burstsKept = 8

// room is what the bots of one room share: the checks of what they
// receive, and when contested bots burst.
type room struct {
	check *roomCheck

	mu     sync.Mutex
	bursts [burstsKept]burst // guarded by mu
	next   int
}

type burst struct {
	key uint64 // seq of the event that took Baron's HP to LowHP
	at  time.Time
}

func newRoom(check *roomCheck) *room { return &room{check: check} }

// burstAt returns when the room's contested bots burst on the low-HP event
// key: the first bot to ask sets it to proposed, the others follow it.
func (r *room) burstAt(key uint64, proposed time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bursts {
		if b.key == key {
			return b.at
		}
	}
	r.bursts[r.next] = burst{key: key, at: proposed}
	r.next = (r.next + 1) % burstsKept
	return proposed
}
