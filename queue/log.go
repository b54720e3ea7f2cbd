package queue

import (
	"context"
	"errors"
	"time"
)

// Errors of the Log contract.
var (
	// ErrFenced: the caller's epoch is not the room's current epoch; another
	// owner took the room. The caller must stop writing it at once.
	ErrFenced = errors.New("queue: fenced: room owned under a newer epoch")
	// ErrConflict: the batch does not follow the log's last seq and is not
	// an identical retry of entries already there.
	ErrConflict = errors.New("queue: conflict: batch does not follow the log")
	// ErrTrimmed: the range asked for starts before the oldest kept entry.
	ErrTrimmed = errors.New("queue: range trimmed by retention")
	// ErrBadRoom: the room name is not valid.
	ErrBadRoom = errors.New("queue: invalid room name")
)

// Record is one log entry.
type Record struct {
	Seq   uint64
	Stamp uint64 // server-wide arrival stamp (see package sequencer)
	At    int64  // room time of stamping, ns
	Event []byte // the event frame exactly as broadcast
}

// Batch is what one room-loop iteration makes durable in one call.
type Batch struct {
	Epoch   uint64
	Records []Record // consecutive seqs
	Hash    uint64   // state hash after the last record
}

// Meta describes a room's log.
type Meta struct {
	LastSeq  uint64 // 0 for an empty log
	LastHash uint64 // state hash after LastSeq
	LastAt   int64  // room time of the last entry
	FirstSeq uint64 // oldest entry still kept (LastSeq+1 when none is)
	Epoch    uint64 // current fencing epoch
}

// Snapshot is a room state as of Seq.
type Snapshot struct {
	Seq   uint64
	Hash  uint64
	At    int64 // room time of the entry at Seq
	State []byte
}

// Log is the durable room log. See the package documentation for the
// contract; MemoryLog and the Redis log implement it.
type Log interface {
	// Acquire makes the caller the room's writer and returns its epoch,
	// greater than any epoch handed out for the room before. With a lease
	// (TTL > 0) it fails with *OwnerError while another node holds the
	// room's lease; a node may acquire again a room it holds.
	Acquire(ctx context.Context, room string, lease Lease) (uint64, error)
	// Renew extends the caller's lease on a room it acquired under epoch,
	// or fails with ErrLeaseLost.
	Renew(ctx context.Context, room string, lease Lease, epoch uint64) error
	// Release gives the lease up (a graceful stop), so another node can
	// take the room at once instead of waiting for it to expire. Releasing
	// a lease no longer held is not an error.
	Release(ctx context.Context, room string, lease Lease, epoch uint64) error
	// Heartbeat tells other nodes that node is alive for ttl.
	Heartbeat(ctx context.Context, node Node, ttl time.Duration) error
	// Append makes b durable. See the package documentation. It must
	// return within a bound of its own (the room loop passes a context
	// that is canceled only when the room halts): MemoryLog never waits,
	// RedisLog gives up after RetryDeadline.
	Append(ctx context.Context, room string, b Batch) error
	// Read returns at most max records with from <= seq <= to, in order.
	// It returns ErrTrimmed when from is older than the oldest kept entry.
	Read(ctx context.Context, room string, from, to uint64, max int) ([]Record, error)
	// Meta returns the room's log description; a room never written has
	// the zero Meta (with FirstSeq 1).
	Meta(ctx context.Context, room string) (Meta, error)
	// SaveSnapshot stores s as the room's latest snapshot. Entries older
	// than the retention window below s.Seq may then be trimmed.
	SaveSnapshot(ctx context.Context, room string, s Snapshot) error
	// LoadSnapshot returns the latest snapshot, if there is one.
	LoadSnapshot(ctx context.Context, room string) (Snapshot, bool, error)
}

// ValidRoom reports whether name is a valid room name: 1-64 characters of
// [A-Za-z0-9_.-].
func ValidRoom(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}
