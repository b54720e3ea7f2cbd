package sequencer

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
)

// Options configure a Registry and its rooms. Zero values take the
// documented defaults.
type Options struct {
	// Game is the game every room plays. Required.
	Game gamestate.Spec
	// Log stores room logs. Default: a new queue.MemoryLog.
	Log queue.Log
	// Logger receives the registry's and rooms' logs. Default: disabled.
	Logger zerolog.Logger
	// Clock gives room time. Default: MonotonicClock().
	Clock Clock

	// QueueLimit bounds each room queue; Push returns ErrBusy at it.
	// Default 4096.
	QueueLimit int
	// MaxBatch bounds how many actions one log append carries. Default 1024.
	MaxBatch int
	// MaxPlayers bounds the members of a room; Join returns ErrRoomFull.
	// Default 100.
	MaxPlayers int
	// MaxKnownPlayers bounds the players a room's state holds over its
	// life, present or not (a game keeps every player who joined: gold,
	// last cseq): a player new to the room past it gets ErrRoomFull, so a
	// room's state, snapshots and welcome frames stay bounded. Joins
	// still queued count once applied, so a room can pass it by at most
	// MaxPlayers. Default 10,000.
	MaxKnownPlayers int
	// MaxRooms bounds the rooms open at once (each is a goroutine, a
	// queue and a game state); opening one more fails with
	// ErrTooManyRooms until idle rooms are evicted. Default 10,000.
	MaxRooms int
	// SnapshotEvery is how many entries pass between snapshots. Default 1000.
	SnapshotEvery uint64
	// DedupeWindow is how many recent cseqs per player the room remembers to
	// answer a resend with its original seq. Default 32.
	DedupeWindow int
	// IdleTimeout stops a room that has had no members and no actions for
	// this long. Default 5m.
	IdleTimeout time.Duration
	// LogTimeout bounds the room's calls to the Log other than appends
	// (acquire and rebuild, snapshots, release). Appends are bounded by the
	// log itself (RedisLog retries for RetryDeadline) and abandoned when
	// the room halts. Default 5s.
	LogTimeout time.Duration
	// ReadPage is how many records a rebuild reads per call. Default 1024.
	ReadPage int
	// EventSlab is the size of the buffers event frames are carved from.
	// Default 16 KiB.
	EventSlab int

	// Node names this server in room leases and redirects.
	Node queue.Node
	// LeaseTTL is how long a room's lease lasts without renewal. It is
	// renewed every LeaseTTL/4; a room whose lease could not be renewed
	// for LeaseTTL/2 stops itself, before the lease can expire under it.
	// The node heartbeat lasts LeaseTTL/2. Default 0: no leases (one
	// server alone on its log).
	LeaseTTL time.Duration
	// LeaseRenewers is how many lease renewals a round runs at once, so a
	// server with thousands of rooms renews them all well within
	// LeaseTTL/4 even when each renewal is a round trip to a distant log.
	// Default 32.
	LeaseRenewers int

	// newInbox replaces the room queue (tests and the channel baseline).
	newInbox func(stamper *Stamper, limit int, lastAt int64) inbox
}

func (o *Options) setDefaults() {
	if o.Log == nil {
		o.Log = queue.NewMemoryLog(queue.MemoryOptions{})
	}
	if o.Clock == nil {
		o.Clock = MonotonicClock()
	}
	if o.QueueLimit == 0 {
		o.QueueLimit = 4096
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 1024
	}
	if o.MaxPlayers == 0 {
		o.MaxPlayers = 100
	}
	if o.MaxKnownPlayers == 0 {
		o.MaxKnownPlayers = 10_000
	}
	if o.MaxRooms == 0 {
		o.MaxRooms = 10_000
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = 1000
	}
	if o.DedupeWindow == 0 {
		o.DedupeWindow = 32
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.LogTimeout == 0 {
		o.LogTimeout = 5 * time.Second
	}
	if o.ReadPage == 0 {
		o.ReadPage = 1024
	}
	if o.EventSlab == 0 {
		o.EventSlab = 16 << 10
	}
	if o.LeaseRenewers == 0 {
		o.LeaseRenewers = 32
	}
	if o.newInbox == nil {
		o.newInbox = func(s *Stamper, limit int, lastAt int64) inbox { return newRoomQueue(s, limit, lastAt) }
	}
}

// validate reports every problem at once.
func (o *Options) validate() error {
	var errs []error
	if o.Game.New == nil || o.Game.Check == nil {
		errs = append(errs, errors.New("Game: required"))
	}
	positive := func(name string, v int) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %d", name, v))
		}
	}
	positive("QueueLimit", o.QueueLimit)
	positive("MaxBatch", o.MaxBatch)
	positive("MaxPlayers", o.MaxPlayers)
	positive("MaxKnownPlayers", o.MaxKnownPlayers)
	if o.MaxKnownPlayers > 0 && o.MaxKnownPlayers < o.MaxPlayers {
		errs = append(errs, fmt.Errorf("MaxKnownPlayers: must be at least MaxPlayers (%d), got %d", o.MaxPlayers, o.MaxKnownPlayers))
	}
	positive("MaxRooms", o.MaxRooms)
	positive("DedupeWindow", o.DedupeWindow)
	positive("ReadPage", o.ReadPage)
	positive("EventSlab", o.EventSlab)
	positive("LeaseRenewers", o.LeaseRenewers)
	if o.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("IdleTimeout: must be positive, got %v", o.IdleTimeout))
	}
	if o.LeaseTTL < 0 {
		errs = append(errs, fmt.Errorf("LeaseTTL: must be positive, got %v", o.LeaseTTL))
	}
	if o.LeaseTTL > 0 && o.Node.ID == "" {
		errs = append(errs, errors.New("Node.ID: required with LeaseTTL"))
	}
	if o.LogTimeout < 0 {
		errs = append(errs, fmt.Errorf("LogTimeout: must be positive, got %v", o.LogTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sequencer: invalid options: %w", err)
	}
	return nil
}

// lease is what this server asks the log for when it takes a room.
func (o *Options) lease() queue.Lease { return queue.Lease{Node: o.Node, TTL: o.LeaseTTL} }
