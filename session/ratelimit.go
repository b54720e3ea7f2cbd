package session

import (
	"sync"
	"time"
)

// tokenBucket allows rate events per second on average and burst at once.
// It is hand-written rather than golang.org/x/time/rate because the whole
// of what is needed is the ten lines of allow, and the per-player registry
// below must inspect a bucket's fill to evict it, which rate.Limiter does
// not expose without reading its clock. Not safe for concurrent use.
type tokenBucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int, now time.Time) tokenBucket {
	return tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

func (b *tokenBucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
}

// allow takes one token if there is one.
func (b *tokenBucket) allow(now time.Time) bool {
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether the bucket has refilled completely, so forgetting it
// changes nothing.
func (b *tokenBucket) full(now time.Time) bool {
	b.refill(now)
	return b.tokens >= b.burst
}

// playerLimits holds one bucket per player, shared by all the player's
// connections, so reconnecting or joining several rooms does not reset or
// multiply a player's allowance. A bucket outlives its last connection
// until it has refilled; the map is swept when it has doubled since the
// last sweep, which keeps it bounded by about twice the players seen within
// one refill time.
type playerLimits struct {
	rate, joinRate   float64
	burst, joinBurst int
	maxResends       int

	mu      sync.Mutex
	buckets map[string]*playerBucket
	sweepAt int
}

type playerBucket struct {
	mu    sync.Mutex
	b     tokenBucket // actions
	joins tokenBucket // hellos that join a room
	// resends is how many resends may pass the rate limit: one per action
	// the limit admitted, at most maxResends, so resends (over all the
	// player's connections and reconnects) never outnumber the actions
	// that were let through.
	resends, maxResends int
	conns               int // guarded by playerLimits.mu
}

const minSweep = 64

func newPlayerLimits(rate float64, burst int, joinRate float64, joinBurst, maxResends int) *playerLimits {
	return &playerLimits{rate: rate, burst: burst, joinRate: joinRate, joinBurst: joinBurst, maxResends: maxResends,
		buckets: make(map[string]*playerBucket), sweepAt: minSweep}
}

// acquire returns the player's bucket, creating it, and counts a
// connection; release must follow.
func (l *playerLimits) acquire(player string, now time.Time) *playerBucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	pb := l.buckets[player]
	if pb == nil {
		if len(l.buckets) >= l.sweepAt {
			l.sweepLocked(now)
		}
		pb = &playerBucket{b: newTokenBucket(l.rate, l.burst, now), joins: newTokenBucket(l.joinRate, l.joinBurst, now), maxResends: l.maxResends}
		l.buckets[player] = pb
	}
	pb.conns++
	return pb
}

func (l *playerLimits) release(pb *playerBucket) {
	l.mu.Lock()
	pb.conns--
	l.mu.Unlock()
}

// sweepLocked forgets the buckets of players without connections whose
// buckets are full again.
func (l *playerLimits) sweepLocked(now time.Time) {
	for player, pb := range l.buckets {
		if pb.conns > 0 {
			continue
		}
		pb.mu.Lock()
		full := pb.b.full(now) && pb.joins.full(now)
		pb.mu.Unlock()
		if full {
			delete(l.buckets, player)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.buckets))
}

// allow takes an action token; an admitted action earns a resend.
func (pb *playerBucket) allow(now time.Time) bool {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if !pb.b.allow(now) {
		return false
	}
	pb.resends = min(pb.resends+1, pb.maxResends)
	return true
}

// allowResend spends a resend earned by an admitted action.
func (pb *playerBucket) allowResend() bool {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if pb.resends == 0 {
		return false
	}
	pb.resends--
	return true
}

// allowJoin takes a join token: every join logs a join entry (and a leave
// when the connection ends), so a client reconnecting in a loop would
// otherwise grow the room's log without bound.
func (pb *playerBucket) allowJoin(now time.Time) bool {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	return pb.joins.allow(now)
}
