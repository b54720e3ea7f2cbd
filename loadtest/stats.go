package loadtest

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1µs to 60s at three
// significant digits; anything slower is recorded as 60s.
const (
	histLowest  = 1
	histHighest = 60_000_000
	histDigits  = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histLowest, histHighest, histDigits) }

func micros(d time.Duration) int64 {
	return min(max(d.Microseconds(), histLowest), histHighest)
}

// metric names a latency histogram.
type metric int

const (
	metricAck       metric = iota // action sent → its ack
	metricEvent                   // action sent → its own event
	metricRTT                     // ping → pong
	metricReconnect               // connection lost → welcome on the next one
	numMetrics
)

// counter names a count every bot adds to.
type counter int

const (
	cSent       counter = iota // actions sent, resends not included
	cResent                    // actions sent again after a reconnect
	cAcked                     // acks, dup acks included
	cDupAcks                   // acks with dup:true
	cRejected                  // rejects
	cEvents                    // event frames received (delivered)
	cReconnects                // joins after the first
	cErrors                    // everything counted in errors
	cUnverified                // acks whose event no bot still remembers
	cUnacked                   // actions without answer when their bot stopped
	numCounters
)

// shard is where a group of bots records. Its histograms hold the current
// window only: the collector swaps them out every second.
type shard struct {
	counts [numCounters]atomic.Uint64

	mu     sync.Mutex
	hists  [numMetrics]*hdrhistogram.Histogram // guarded by mu
	errors map[string]uint64                   // guarded by mu
}

func newShard() *shard {
	s := &shard{errors: make(map[string]uint64)}
	for m := range s.hists {
		s.hists[m] = newHist()
	}
	return s
}

func (s *shard) add(c counter, n uint64) { s.counts[c].Add(n) }

func (s *shard) record(m metric, d time.Duration) {
	v := micros(d)
	s.mu.Lock()
	s.hists[m].RecordValue(v) // in range: micros clamps
	s.mu.Unlock()
}

// countError counts one error under code: a reject or error code
// ("reject.busy", "error.unauthorized"), a close code ("close.4000") or a
// client-side failure ("dial", "conn_lost").
func (s *shard) countError(code string) {
	s.counts[cErrors].Add(1)
	s.mu.Lock()
	s.errors[code]++
	s.mu.Unlock()
}

// Latency summarizes a histogram, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.TotalCount(),
		Mean:  math.Round(h.Mean()) / 1000,
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}

// Point is one window of the run (about a second).
type Point struct {
	T            float64 `json:"t"` // seconds from the start to the end of the window
	SentPerSec   float64 `json:"sent_per_sec"`
	AckedPerSec  float64 `json:"acked_per_sec"`
	EventsPerSec float64 `json:"events_delivered_per_sec"`
	ErrorsPerSec float64 `json:"errors_per_sec"`
	AckMS        Latency `json:"ack_ms"`
	EventMS      Latency `json:"event_ms"`
	Violations   uint64  `json:"violations"` // so far
	Draining     bool    `json:"draining,omitempty"`
}

// collector turns the shards' windows into the series and the totals. It
// is owned by Run's goroutine.
type collector struct {
	shards []*shard
	spares [numMetrics]*hdrhistogram.Histogram
	window [numMetrics]*hdrhistogram.Histogram
	total  [numMetrics]*hdrhistogram.Histogram
	start  time.Time
	lastAt time.Time
	first  [numCounters]uint64 // at begin
	last   [numCounters]uint64 // at the last tick
	series []Point
}

func newCollector(shards []*shard) *collector {
	c := &collector{shards: shards}
	for m := range numMetrics {
		c.spares[m], c.window[m], c.total[m] = newHist(), newHist(), newHist()
	}
	return c
}

// begin marks the start: windows and rates count from now. What was
// recorded before (while bots joined) is discarded.
func (c *collector) begin(now time.Time) {
	c.swap()
	c.start, c.lastAt, c.first = now, now, c.counts()
	c.last = c.first
}

// swap moves every shard's window into c.window.
func (c *collector) swap() {
	for m := range numMetrics {
		c.window[m].Reset()
	}
	for _, s := range c.shards {
		s.mu.Lock()
		for m := range numMetrics {
			s.hists[m], c.spares[m] = c.spares[m], s.hists[m]
		}
		s.mu.Unlock()
		for m := range numMetrics {
			c.window[m].Merge(c.spares[m])
			c.spares[m].Reset()
		}
	}
}

func (c *collector) counts() [numCounters]uint64 {
	var n [numCounters]uint64
	for _, s := range c.shards {
		for i := range n {
			n[i] += s.counts[i].Load()
		}
	}
	return n
}

// tick closes the window ending now and appends its point.
func (c *collector) tick(now time.Time, violations uint64, draining bool) Point {
	c.swap()
	for m := range numMetrics {
		c.total[m].Merge(c.window[m])
	}
	n := c.counts()
	dt := now.Sub(c.lastAt).Seconds()
	rate := func(k counter) float64 {
		if dt <= 0 {
			return 0
		}
		return float64(n[k]-c.last[k]) / dt
	}
	p := Point{
		T:            now.Sub(c.start).Seconds(),
		SentPerSec:   rate(cSent),
		AckedPerSec:  rate(cAcked),
		EventsPerSec: rate(cEvents),
		ErrorsPerSec: rate(cErrors),
		AckMS:        summarize(c.window[metricAck]),
		EventMS:      summarize(c.window[metricEvent]),
		Violations:   violations,
		Draining:     draining,
	}
	c.series = append(c.series, p)
	c.lastAt, c.last = now, n
	return p
}

// errors sums the shards' error counts.
func (c *collector) errors() map[string]uint64 {
	out := make(map[string]uint64)
	for _, s := range c.shards {
		s.mu.Lock()
		for k, v := range s.errors {
			out[k] += v
		}
		s.mu.Unlock()
	}
	return out
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
