package sequencer

import (
	"sync/atomic"
	"time"
)

// Stamp records the arrival of an action at the server.
type Stamp struct {
	N  uint64 // server-wide monotonic counter
	At int64  // room time, ns; strictly increasing within a room
}

// Clock returns the current time in ns. It must never go backwards.
type Clock func() int64

// MonotonicClock returns a Clock anchored to the wall clock at creation and
// advanced by the monotonic clock, so it never goes backwards and roughly
// agrees across servers (room time must keep growing after a takeover; the
// room enforces that even when clocks disagree).
func MonotonicClock() Clock {
	start := time.Now()
	base := start.UnixNano()
	return func() int64 { return base + int64(time.Since(start)) }
}

// Stamper hands out stamps. One Stamper serves every room of a registry.
type Stamper struct {
	n     atomic.Uint64
	clock Clock
}

// NewStamper returns a stamper reading clock.
func NewStamper(clock Clock) *Stamper { return &Stamper{clock: clock} }

// stampLocked is called with the room queue's lock held; lastAt is the
// room's last stamp time, which it advances.
func (s *Stamper) stampLocked(lastAt *int64) Stamp {
	at := s.clock()
	if at <= *lastAt {
		at = *lastAt + 1
	}
	*lastAt = at
	return Stamp{N: s.n.Add(1), At: at}
}
