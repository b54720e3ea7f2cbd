package session

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"time"

	"github.com/rs/zerolog"
)

// Options configure a Server. Zero values take the documented defaults.
// The room limits (players per room, room queue) belong to the sequencer's
// Options.
type Options struct {
	// Logger receives the server's and sessions' logs; each session narrows
	// it with session, remote, room and player fields. Default: disabled.
	Logger zerolog.Logger

	// Secret is the HMAC-SHA256 key join tokens are signed with, at least
	// MinSecretLen bytes. Empty means dev mode: only "dev:<player>" tokens
	// are accepted, and nothing checks who the player is.
	Secret []byte

	// ReadLimit bounds one client frame, in bytes; a larger frame closes the
	// connection with 1009. Default 4096.
	ReadLimit int64
	// HelloTimeout is how long a new connection may take to send its hello.
	// Default 10s.
	HelloTimeout time.Duration
	// JoinTimeout bounds opening the room, joining it and reading the
	// history a resuming client missed. Default 10s.
	JoinTimeout time.Duration
	// WriteWait bounds one write to the client (one wake-up of the write
	// pump, or one page of history); a client that takes longer is closed.
	// The write pump moves its deadline at most every WriteWait/4, so a
	// live write is cut off after between 3/4 of WriteWait and WriteWait.
	// Default 10s.
	WriteWait time.Duration
	// PongWait is how long the server waits for a pong (the answer to its
	// ping) before closing the connection; each pong moves the read
	// deadline. Default 60s.
	PongWait time.Duration
	// PingPeriod is how often the server pings; it must be below PongWait.
	// Default 9/10 of PongWait.
	PingPeriod time.Duration

	// OutboxFrames bounds the frames waiting to be written to one client.
	// Exceeding it closes the connection with 4000. Default 8192: a room's
	// legitimate burst must fit a client that keeps reading, and every
	// player of a full room (100) sending its whole RateBurst (40) at once
	// makes 4,000 events, plus the client's own acks, in a few batches
	// written faster than any client reads them. OutboxBytes stays the
	// bound on memory.
	OutboxFrames int
	// OutboxBytes bounds the bytes waiting to be written to one client.
	// Exceeding it closes the connection with 4000. Default 1 MiB.
	OutboxBytes int

	// RateLimit is the sustained actions per second one player may send
	// (over all its connections). Default 20.
	RateLimit float64
	// RateBurst is how many actions a player may send at once. Default 40.
	RateBurst int
	// JoinRate is the sustained joins per second one player may make
	// (hellos with a valid token, counted before the room is asked: a
	// join logs a join and a leave entry), and
	// JoinBurst how many at once; one more gets error unavailable and close
	// 1013. Defaults 1/s and 10.
	JoinRate  float64
	JoinBurst int
	// DisableRateLimit turns the per-player rate limits (actions and
	// joins) off (load tests).
	DisableRateLimit bool

	// MaxBadFrames is how many frames answered with error one connection
	// may send per minute (it regains them at that rate) before it is
	// closed with 1008. Default 10.
	MaxBadFrames int
	// MaxConnsPerIP bounds the open connections from one remote address;
	// one more gets error unavailable and close 1013. Default 100.
	MaxConnsPerIP int
	// MaxResends is how many actions one connection may resend with cseqs
	// the room had already sequenced or queued when it joined (after a
	// reconnect: the actions it sent but saw no answer for); they pass the
	// rate limit and the room's queue limit, since a reject would tell the
	// client they got no seq when they did. With the rate limit on, each
	// also spends a resend the player earned with an action the limit
	// admitted (at most MaxResends are held, over all its connections), so
	// reconnecting does not buy resends. Further ones are held to both
	// limits like any action. Default 256.
	MaxResends int
	// MaxResume is the most events a resuming client is sent as history;
	// one further behind gets the state instead. Default 10,000.
	MaxResume uint64

	// AllowOrigins lists the browser origins (scheme://host[:port]) allowed
	// besides the server's own host; "*" allows any. Requests without an
	// Origin header (non-browser clients) are always allowed. Default: none.
	AllowOrigins []string
}

// MinSecretLen is the shortest token secret accepted.
const MinSecretLen = 16

// DefaultOptions returns what a zero Options resolves to (flag defaults
// and documentation read it, so the numbers live in one place).
func DefaultOptions() Options {
	var o Options
	o.setDefaults()
	return o
}

func (o *Options) setDefaults() {
	if o.ReadLimit == 0 {
		o.ReadLimit = 4096
	}
	if o.HelloTimeout == 0 {
		o.HelloTimeout = 10 * time.Second
	}
	if o.JoinTimeout == 0 {
		o.JoinTimeout = 10 * time.Second
	}
	if o.WriteWait == 0 {
		o.WriteWait = 10 * time.Second
	}
	if o.PongWait == 0 {
		o.PongWait = 60 * time.Second
	}
	if o.PingPeriod == 0 {
		o.PingPeriod = o.PongWait * 9 / 10
	}
	if o.OutboxFrames == 0 {
		o.OutboxFrames = 8192
	}
	if o.OutboxBytes == 0 {
		o.OutboxBytes = 1 << 20
	}
	if o.RateLimit == 0 {
		o.RateLimit = 20
	}
	if o.RateBurst == 0 {
		o.RateBurst = 40
	}
	if o.JoinRate == 0 {
		o.JoinRate = 1
	}
	if o.JoinBurst == 0 {
		o.JoinBurst = 10
	}
	if o.MaxBadFrames == 0 {
		o.MaxBadFrames = 10
	}
	if o.MaxConnsPerIP == 0 {
		o.MaxConnsPerIP = 100
	}
	if o.MaxResume == 0 {
		o.MaxResume = 10_000
	}
	if o.MaxResends == 0 {
		o.MaxResends = 256
	}
}

// minReadLimit leaves room for a hello with a long token.
const minReadLimit = 512

// validate reports every problem at once. It runs after setDefaults, so a
// zero never reaches it; what it sees is what the server would use.
func (o *Options) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(o.Secret) > 0 && len(o.Secret) < MinSecretLen {
		bad("Secret: must be at least %d bytes, got %d", MinSecretLen, len(o.Secret))
	}
	if o.ReadLimit < minReadLimit {
		bad("ReadLimit: must be at least %d bytes, got %d", minReadLimit, o.ReadLimit)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HelloTimeout", o.HelloTimeout}, {"JoinTimeout", o.JoinTimeout}, {"WriteWait", o.WriteWait},
		{"PongWait", o.PongWait}, {"PingPeriod", o.PingPeriod},
	} {
		if d.v < 0 {
			bad("%s: must be positive, got %v", d.name, d.v)
		}
	}
	if o.PingPeriod >= o.PongWait {
		bad("PingPeriod: must be below PongWait (%v), got %v", o.PongWait, o.PingPeriod)
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"OutboxFrames", o.OutboxFrames}, {"OutboxBytes", o.OutboxBytes}, {"RateBurst", o.RateBurst}, {"JoinBurst", o.JoinBurst},
		{"MaxBadFrames", o.MaxBadFrames}, {"MaxConnsPerIP", o.MaxConnsPerIP}, {"MaxResends", o.MaxResends},
	} {
		if n.v < 0 {
			bad("%s: must be positive, got %d", n.name, n.v)
		}
	}
	if o.OutboxBytes > 0 && int64(o.OutboxBytes) < o.ReadLimit {
		bad("OutboxBytes: must be at least ReadLimit (%d), got %d", o.ReadLimit, o.OutboxBytes)
	}
	// NaN passes every comparison and would let every action through.
	if o.RateLimit < 0 || math.IsNaN(o.RateLimit) || math.IsInf(o.RateLimit, 0) {
		bad("RateLimit: must be a positive number, got %v (use DisableRateLimit to turn it off)", o.RateLimit)
	}
	if o.JoinRate < 0 || math.IsNaN(o.JoinRate) || math.IsInf(o.JoinRate, 0) {
		bad("JoinRate: must be a positive number, got %v (use DisableRateLimit to turn it off)", o.JoinRate)
	}
	for _, origin := range o.AllowOrigins {
		if err := checkOriginEntry(origin); err != nil {
			bad("AllowOrigins: %w", err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("session: invalid options: %w", err)
	}
	return nil
}

func checkOriginEntry(origin string) error {
	if origin == "*" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("%q is not an origin like https://game.example.com", origin)
	}
	return nil
}
