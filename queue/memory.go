package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// MemoryOptions configure a MemoryLog.
type MemoryOptions struct {
	// Retain is how many entries up to the latest snapshot are kept so
	// clients can resume with since. Default 10,000.
	Retain uint64
	// MaxRooms bounds how many rooms' logs the process keeps. A MemoryLog
	// forgets nothing (it is the rooms' only copy), so past this many
	// rooms a new room is refused with ErrTooManyRooms. Default 10,000.
	MaxRooms int
}

// ErrTooManyRooms: a MemoryLog already holds MaxRooms rooms.
var ErrTooManyRooms = errors.New("queue: the in-memory log holds its maximum number of rooms")

// MemoryLog keeps room logs in process memory: the embedded default. Every
// contract of Log holds within the process; nothing survives it.
type MemoryLog struct {
	retain   uint64
	maxRooms int
	mu       sync.Mutex // serializes adding rooms, for the count
	count    int
	// rooms maps a room name to its *memRoom. A sync.Map: rooms are added
	// once and read on every append, from every room loop at once, and a
	// map behind one mutex made that lock the point all rooms met.
	rooms sync.Map
}

var _ Log = (*MemoryLog)(nil)

type memRoom struct {
	mu    sync.Mutex
	meta  Meta
	recs  recordRing // recs.at(i).Seq == meta.FirstSeq+i
	snap  Snapshot
	hasSn bool
}

// NewMemoryLog returns an empty in-memory log.
func NewMemoryLog(opts MemoryOptions) *MemoryLog {
	if opts.Retain == 0 {
		opts.Retain = 10_000
	}
	if opts.MaxRooms <= 0 {
		opts.MaxRooms = 10_000
	}
	return &MemoryLog{retain: opts.Retain, maxRooms: opts.MaxRooms}
}

func (m *MemoryLog) room(name string) (*memRoom, error) {
	if !ValidRoom(name) {
		return nil, fmt.Errorf("%w: %q", ErrBadRoom, name)
	}
	if r, ok := m.rooms.Load(name); ok {
		return r.(*memRoom), nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.rooms.Load(name); ok {
		return r.(*memRoom), nil
	}
	if m.count >= m.maxRooms {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyRooms, m.maxRooms)
	}
	r := &memRoom{meta: Meta{FirstSeq: 1}}
	m.rooms.Store(name, r)
	m.count++
	return r, nil
}

// emptyRoom stands for a room never written: reads of it must not create
// it (nor count against MaxRooms).
var emptyRoom = &memRoom{meta: Meta{FirstSeq: 1}}

// peek returns the room if it exists, else emptyRoom, for reads.
func (m *MemoryLog) peek(name string) (*memRoom, error) {
	if !ValidRoom(name) {
		return nil, fmt.Errorf("%w: %q", ErrBadRoom, name)
	}
	if r, ok := m.rooms.Load(name); ok {
		return r.(*memRoom), nil
	}
	return emptyRoom, nil
}

// Acquire hands out the next epoch. A MemoryLog lives in one process, so
// there is no other node to hold a lease: leases always succeed.
func (m *MemoryLog) Acquire(_ context.Context, room string, _ Lease) (uint64, error) {
	r, err := m.room(room)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.meta.Epoch++
	return r.meta.Epoch, nil
}

// Renew fails only when another Acquire moved the epoch on.
func (m *MemoryLog) Renew(_ context.Context, room string, _ Lease, epoch uint64) error {
	r, err := m.peek(room)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.meta.Epoch != epoch {
		return ErrLeaseLost
	}
	return nil
}

// Release has nothing to release in one process.
func (m *MemoryLog) Release(context.Context, string, Lease, uint64) error { return nil }

// Heartbeat has nobody to tell in one process.
func (m *MemoryLog) Heartbeat(context.Context, Node, time.Duration) error { return nil }

func (m *MemoryLog) Append(_ context.Context, room string, b Batch) error {
	if len(b.Records) == 0 {
		return nil
	}
	r, err := m.room(room)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Epoch 0 is never handed out: it opens no room, acquired or not.
	if b.Epoch == 0 || b.Epoch != r.meta.Epoch {
		return ErrFenced
	}
	first := b.Records[0].Seq
	if first != r.meta.LastSeq+1 {
		return r.checkRetryLocked(b)
	}
	for i := range b.Records {
		if b.Records[i].Seq != first+uint64(i) {
			return fmt.Errorf("%w: seq %d at position %d of a batch starting at %d", ErrConflict, b.Records[i].Seq, i, first)
		}
	}
	r.recs.push(b.Records)
	last := b.Records[len(b.Records)-1]
	r.meta.LastSeq = last.Seq
	r.meta.LastAt = last.At
	r.meta.LastHash = b.Hash
	return nil
}

// checkRetryLocked accepts a batch that is already in the log with the same
// content (a retried append) and refuses anything else.
func (r *memRoom) checkRetryLocked(b Batch) error {
	first := b.Records[0].Seq
	last := b.Records[len(b.Records)-1].Seq
	if first < r.meta.FirstSeq || last > r.meta.LastSeq || first == 0 {
		return fmt.Errorf("%w: batch %d..%d, log at %d", ErrConflict, first, last, r.meta.LastSeq)
	}
	for i, rec := range b.Records {
		have := r.recs.at(int(first - r.meta.FirstSeq + uint64(i)))
		if have.Seq != rec.Seq || have.Stamp != rec.Stamp || have.At != rec.At || !bytes.Equal(have.Event, rec.Event) {
			return fmt.Errorf("%w: seq %d differs from the logged entry", ErrConflict, rec.Seq)
		}
	}
	return nil
}

func (m *MemoryLog) Read(_ context.Context, room string, from, to uint64, max int) ([]Record, error) {
	r, err := m.peek(room)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if from == 0 {
		from = 1
	}
	if from < r.meta.FirstSeq {
		return nil, fmt.Errorf("%w: asked from %d, oldest kept is %d", ErrTrimmed, from, r.meta.FirstSeq)
	}
	if to > r.meta.LastSeq {
		to = r.meta.LastSeq
	}
	if from > to || max <= 0 {
		return nil, nil
	}
	n := min(to-from+1, uint64(max))
	start := from - r.meta.FirstSeq
	out := make([]Record, n)
	r.recs.copyOut(out, int(start), int(n))
	return out, nil
}

func (m *MemoryLog) Meta(_ context.Context, room string) (Meta, error) {
	r, err := m.peek(room)
	if err != nil {
		return Meta{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.meta, nil
}

func (m *MemoryLog) SaveSnapshot(_ context.Context, room string, s Snapshot) error {
	r, err := m.room(room)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.Seq > r.meta.LastSeq {
		return fmt.Errorf("%w: snapshot at %d is past the log's last seq %d", ErrConflict, s.Seq, r.meta.LastSeq)
	}
	if r.hasSn && s.Seq <= r.snap.Seq {
		return nil
	}
	s.State = bytes.Clone(s.State)
	r.snap, r.hasSn = s, true
	if s.Seq > m.retain {
		r.trimLocked(s.Seq - m.retain + 1)
	}
	return nil
}

// trimLocked drops entries below keepFrom.
func (r *memRoom) trimLocked(keepFrom uint64) {
	if keepFrom <= r.meta.FirstSeq {
		return
	}
	r.recs.drop(int(keepFrom - r.meta.FirstSeq))
	r.meta.FirstSeq = keepFrom
}

func (m *MemoryLog) LoadSnapshot(_ context.Context, room string) (Snapshot, bool, error) {
	r, err := m.peek(room)
	if err != nil {
		return Snapshot{}, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snap, r.hasSn, nil
}
