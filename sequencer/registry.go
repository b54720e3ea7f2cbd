package sequencer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/lasthit/lasthit/queue"
)

// ErrShutdown is returned once the registry is shutting down.
var ErrShutdown = errors.New("sequencer: registry shut down")

// ErrTooManyRooms: opening one more room would pass Options.MaxRooms.
var ErrTooManyRooms = errors.New("sequencer: too many open rooms")

// Registry runs rooms: it opens a room on first use, evicts idle rooms and
// shuts every room down gracefully. All goroutines it starts go through
// goroutine, which refuses after Shutdown.
type Registry struct {
	opts     Options
	stamper  *Stamper
	counters *counters

	mu     sync.Mutex
	rooms  map[string]*slot
	closed bool
	wg     sync.WaitGroup
	quit   chan struct{}
}

// slot is a room being opened (ready not yet closed) or open.
type slot struct {
	ready chan struct{}
	room  *Room
	err   error
}

// NewRegistry fills in defaults, validates opts (defaults included: a
// bound set against another's default is checked too) and starts the
// idle-room janitor.
func NewRegistry(opts Options) (*Registry, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	g := &Registry{
		opts:     opts,
		stamper:  NewStamper(opts.Clock),
		counters: &counters{},
		rooms:    make(map[string]*slot),
		quit:     make(chan struct{}),
	}
	if err := g.goroutine(g.janitor); err != nil {
		return nil, err
	}
	if opts.LeaseTTL > 0 {
		if err := g.goroutine(g.leaser); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Options returns the registry's options with defaults filled in.
func (g *Registry) Options() Options { return g.opts }

func (g *Registry) goroutine(f func()) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrShutdown
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return nil
}

// Room returns the named room, opening it (acquire, rebuild, start its
// loop) if it is not running.
func (g *Registry) Room(ctx context.Context, name string) (*Room, error) {
	if !queue.ValidRoom(name) {
		return nil, fmt.Errorf("%w: room name %q", ErrBadAction, name)
	}
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return nil, ErrShutdown
		}
		s, ok := g.rooms[name]
		if !ok && len(g.rooms) >= g.opts.MaxRooms {
			g.mu.Unlock()
			return nil, fmt.Errorf("%w: %w: %d", ErrUnavailable, ErrTooManyRooms, g.opts.MaxRooms)
		}
		if !ok {
			s = &slot{ready: make(chan struct{})}
			g.rooms[name] = s
			g.mu.Unlock()
			g.open(ctx, name, s)
		} else {
			g.mu.Unlock()
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if s.err != nil {
			return nil, s.err
		}
		if !s.room.stopping.Load() {
			return s.room, nil
		}
		// A stopping room finishes its last batch under its epoch before
		// the room may be opened again under a new one.
		select {
		case <-s.room.Done():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		g.forget(name, s)
	}
}

func (g *Registry) open(ctx context.Context, name string, s *slot) {
	defer close(s.ready)
	room, err := openRoom(ctx, name, &g.opts, g.stamper, g.counters)
	if err == nil {
		err = g.goroutine(room.run)
	}
	if err != nil {
		s.err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		g.forget(name, s)
		return
	}
	s.room = room
}

func (g *Registry) forget(name string, s *slot) {
	g.mu.Lock()
	if g.rooms[name] == s {
		delete(g.rooms, name)
	}
	g.mu.Unlock()
}

// Stop stops the named room and waits for its loop to end.
func (g *Registry) Stop(ctx context.Context, name string) error {
	g.mu.Lock()
	s, ok := g.rooms[name]
	g.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.room == nil {
		return nil
	}
	s.room.Stop()
	select {
	case <-s.room.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	g.forget(name, s)
	return nil
}

// Names lists the running rooms, sorted.
func (g *Registry) Names() []string {
	g.mu.Lock()
	names := make([]string, 0, len(g.rooms))
	for n, s := range g.rooms {
		select {
		case <-s.ready: // s.room is set before ready closes
		default:
			continue // still opening
		}
		if s.room != nil {
			names = append(names, n)
		}
	}
	g.mu.Unlock()
	sort.Strings(names)
	return names
}

func (g *Registry) janitor() {
	period := max(g.opts.IdleTimeout/4, 10*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-g.quit:
			return
		case <-t.C:
			g.evictIdle(time.Now().Add(-g.opts.IdleTimeout))
		}
	}
}

// evictIdle stops rooms without members, queued actions or activity since
// before cutoff.
func (g *Registry) evictIdle(cutoff time.Time) {
	g.mu.Lock()
	var idle []*slot
	for _, s := range g.rooms {
		select {
		case <-s.ready:
		default:
			continue
		}
		r := s.room
		if r != nil && !r.stopping.Load() && r.members.Load() == 0 && r.q.len() == 0 && r.idleSince().Before(cutoff) {
			idle = append(idle, s)
		}
	}
	g.mu.Unlock()
	for _, s := range idle {
		s.room.logger.Debug().Msg("idle room evicted")
		s.room.Stop()
		_ = g.goroutine(func() {
			<-s.room.Done()
			g.forget(s.room.name, s)
		})
	}
}

// Shutdown refuses new rooms, stops every room (each finishes its queued
// actions and answers them) and waits for all goroutines, or for ctx.
func (g *Registry) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return g.wait(ctx)
	}
	g.closed = true
	close(g.quit)
	slots := make([]*slot, 0, len(g.rooms))
	for _, s := range g.rooms {
		slots = append(slots, s)
	}
	g.mu.Unlock()
	for _, s := range slots {
		select {
		case <-s.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		if s.room != nil {
			s.room.Stop()
		}
	}
	return g.wait(ctx)
}

func (g *Registry) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leaser keeps this node's heartbeat and its rooms' leases alive. Every
// LeaseTTL/4 it renews each open room's lease, LeaseRenewers at a time; a
// room whose lease is lost, or could not be renewed for LeaseTTL/2 (so it
// might expire before the next try), is halted at once: it stops writing,
// and its members reconnect to wherever the room lives now.
func (g *Registry) leaser() {
	ttl := g.opts.LeaseTTL
	t := time.NewTicker(ttl / 4)
	defer t.Stop()
	for {
		g.heartbeat()
		select {
		case <-g.quit:
			return
		case <-t.C:
		}
		// One deadline for the whole round: with the log down, every
		// renewal fails within it and no room waits behind the others.
		ctx, cancel := context.WithTimeout(context.Background(), ttl/4)
		g.renewAll(ctx, g.openRooms())
		cancel()
	}
}

func (g *Registry) heartbeat() {
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.LeaseTTL/4)
	defer cancel()
	if err := g.opts.Log.Heartbeat(ctx, g.opts.Node, g.opts.LeaseTTL/2); err != nil {
		g.opts.Logger.Warn().Err(err).Msg("node heartbeat not written")
	}
}

// renewAll renews the rooms' leases, LeaseRenewers at a time, and returns
// when every renewal has answered or failed.
func (g *Registry) renewAll(ctx context.Context, rooms []*Room) {
	sem := make(chan struct{}, g.opts.LeaseRenewers)
	var wg sync.WaitGroup
	for _, r := range rooms {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			g.renew(ctx, r)
		})
	}
	wg.Wait()
}

func (g *Registry) renew(ctx context.Context, r *Room) {
	ttl := g.opts.LeaseTTL
	epoch := r.leaseEpoch.Load()
	if epoch == 0 {
		return // the room is taking its lease again; it renews it itself
	}
	err := r.renewLease(ctx, epoch)
	switch {
	case err == nil:
	case errors.Is(err, queue.ErrLeaseLost) && r.leaseEpoch.Load() != epoch:
		// The room took its lease again meanwhile (a rebuild after a
		// failed append): this renewal was for the old epoch, and the
		// rebuild finds out itself whether another node holds the room.
	case errors.Is(err, queue.ErrLeaseLost):
		r.logger.Warn().Msg("room lease lost; stopping the room")
		r.halt(fmt.Errorf("%w: %w", ErrUnavailable, err))
	case time.Since(time.Unix(0, r.renewedAt.Load())) >= ttl/2:
		r.logger.Warn().Err(err).Msg("room lease not renewed in time; stopping the room")
		r.halt(fmt.Errorf("%w: %w: %w", ErrUnavailable, queue.ErrLeaseLost, err))
	default:
		r.logger.Warn().Err(err).Msg("room lease renewal failed; retrying")
	}
}

// openRooms lists the rooms whose loops run and are not stopping.
func (g *Registry) openRooms() []*Room {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Room, 0, len(g.rooms))
	for _, s := range g.rooms {
		select {
		case <-s.ready:
		default:
			continue
		}
		if s.room != nil && !s.room.stopping.Load() {
			out = append(out, s.room)
		}
	}
	return out
}
