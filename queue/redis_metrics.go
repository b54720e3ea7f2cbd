package queue

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// RedisStats is a snapshot of a RedisLog's append metrics.
type RedisStats struct {
	// Window is the span the windowed figures below cover: the last
	// StatsWindow, or less while the log is younger than that.
	Window time.Duration
	// Appends and Entries are the successful Append calls and the records
	// they carried, within Window.
	Appends uint64
	Entries uint64
	// AppendsPerSec and EntriesPerSec are the same per second of Window.
	AppendsPerSec float64
	EntriesPerSec float64
	// MeanBatch is Entries / Appends (the group-commit batch size).
	MeanBatch float64
	// Latency percentiles of successful Append calls, retries included,
	// within Window (microseconds, 2 significant digits).
	P50, P90, P99, P999, Max time.Duration

	// Totals since the log was created.
	TotalAppends   uint64 // successful Append calls
	TotalEntries   uint64 // records they carried
	TotalRetries   uint64 // retried attempts of any call
	TotalFenced    uint64 // appends refused with ErrFenced
	TotalConflicts uint64 // appends refused with ErrConflict
	TotalFailed    uint64 // appends that failed otherwise (gave up, canceled)
}

// statBuckets is how many slices StatsWindow is cut into: the window
// slides by one slice at a time.
const statBuckets = 6

// Latency histogram range: 1 µs to 1 min, in µs.
const (
	latencyMinUS = 1
	latencyMaxUS = int64(time.Minute / time.Microsecond)
	latencySigFi = 2 // 1% resolution: 20 KiB per histogram, not 140
)

type statBucket struct {
	start   time.Time
	entries uint64
	hist    *hdrhistogram.Histogram // append latency, µs
}

// redisStats keeps the windowed figures in a ring of buckets, rotated
// lazily by whoever records or reads, and the totals in atomics.
type redisStats struct {
	slice   time.Duration
	created time.Time

	mu      sync.Mutex
	buckets [statBuckets]statBucket
	cur     int

	appends, entries, retries, fenced, conflicts, failed atomic.Uint64
}

func newRedisStats(window time.Duration, now time.Time) *redisStats {
	s := &redisStats{slice: window / statBuckets, created: now}
	for i := range s.buckets {
		s.buckets[i].hist = hdrhistogram.New(latencyMinUS, latencyMaxUS, latencySigFi)
	}
	s.buckets[0].start = now
	return s
}

// rotateLocked starts new buckets until the current one covers now.
func (s *redisStats) rotateLocked(now time.Time) {
	for i := 0; now.Sub(s.buckets[s.cur].start) >= s.slice; i++ {
		next := s.buckets[s.cur].start.Add(s.slice)
		if i >= statBuckets {
			// Idle for more than a whole window: start afresh at now.
			next = now
		}
		s.cur = (s.cur + 1) % statBuckets
		b := &s.buckets[s.cur]
		b.start, b.entries = next, 0
		b.hist.Reset()
	}
}

func (s *redisStats) appended(entries int, took time.Duration, now time.Time) {
	s.appends.Add(1)
	s.entries.Add(uint64(entries))
	us := min(max(took.Microseconds(), latencyMinUS), latencyMaxUS)
	s.mu.Lock()
	s.rotateLocked(now)
	b := &s.buckets[s.cur]
	b.entries += uint64(entries)
	_ = b.hist.RecordValue(us) // in range by the clamp above
	s.mu.Unlock()
}

func (s *redisStats) retried() { s.retries.Add(1) }

func (s *redisStats) snapshot(now time.Time) RedisStats {
	st := RedisStats{
		TotalAppends:   s.appends.Load(),
		TotalEntries:   s.entries.Load(),
		TotalRetries:   s.retries.Load(),
		TotalFenced:    s.fenced.Load(),
		TotalConflicts: s.conflicts.Load(),
		TotalFailed:    s.failed.Load(),
	}
	merged := hdrhistogram.New(latencyMinUS, latencyMaxUS, latencySigFi)
	s.mu.Lock()
	s.rotateLocked(now)
	oldest := now
	for i := range s.buckets {
		b := &s.buckets[i]
		if b.start.IsZero() || now.Sub(b.start) >= s.slice*statBuckets {
			continue
		}
		if b.start.Before(oldest) {
			oldest = b.start
		}
		st.Entries += b.entries
		merged.Merge(b.hist)
	}
	s.mu.Unlock()
	if oldest.Before(s.created) {
		oldest = s.created
	}
	st.Window = now.Sub(oldest)
	st.Appends = uint64(merged.TotalCount())
	if st.Appends > 0 {
		st.MeanBatch = float64(st.Entries) / float64(st.Appends)
		st.P50 = time.Duration(merged.ValueAtQuantile(50)) * time.Microsecond
		st.P90 = time.Duration(merged.ValueAtQuantile(90)) * time.Microsecond
		st.P99 = time.Duration(merged.ValueAtQuantile(99)) * time.Microsecond
		st.P999 = time.Duration(merged.ValueAtQuantile(99.9)) * time.Microsecond
		st.Max = time.Duration(merged.Max()) * time.Microsecond
	}
	if secs := st.Window.Seconds(); secs > 0 {
		st.AppendsPerSec = float64(st.Appends) / secs
		st.EntriesPerSec = float64(st.Entries) / secs
	}
	return st
}
