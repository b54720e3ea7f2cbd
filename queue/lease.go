package queue

import (
	"errors"
	"fmt"
	"time"
)

// Node names a server for room leases.
type Node struct {
	ID  string // unique per server process
	URL string // where clients reach it, e.g. ws://host:port/ws
}

// Lease is what Acquire, Renew and Release act for: a node holding a room
// for TTL at a time. A zero TTL asks for no lease at all (one server alone
// on its log, or tools that only read).
type Lease struct {
	Node Node
	TTL  time.Duration
}

// ErrLeaseLost: the room's lease is no longer the caller's (it expired
// and another node took the room, or it was released). The caller must
// stop the room at once.
var ErrLeaseLost = errors.New("queue: room lease lost")

// OwnerError: another node holds the room's lease.
type OwnerError struct {
	Room  string
	Owner Node
	Epoch uint64
	// Alive: the owner's node heartbeat is fresh, so clients should go to
	// it. A stale heartbeat means the owner is likely dead and its lease
	// will expire within TTL: try again shortly.
	Alive bool
}

func (e *OwnerError) Error() string {
	state := "alive"
	if !e.Alive {
		state = "not answering; its lease has not expired yet"
	}
	return fmt.Sprintf("queue: room %s is owned by node %s (%s) under epoch %d, %s", e.Room, e.Owner.ID, e.Owner.URL, e.Epoch, state)
}

// RedirectURL is where a client should take the room: the owner's URL
// while it is alive, else empty (try again later).
func (e *OwnerError) RedirectURL() string {
	if e.Alive {
		return e.Owner.URL
	}
	return ""
}
