package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/lasthit/lasthit/sequencer"
)

// Buffer sizes of each connection. Client frames are small (an action is
// about 80 bytes), so a small read buffer; write buffers come from a pool
// shared by the server's connections, so an idle connection holds none.
const (
	readBufferSize  = 1024
	writeBufferSize = 4096
)

// readyRoom is the log key /readyz reads to check the log answers.
const readyRoom = "_readyz"

// Server serves protocol v1 (PROTOCOL.md) over WebSocket: mount it at
// GET /ws. It owns the shutdown of the registry it is given.
type Server struct {
	reg      *sequencer.Registry
	opts     Options
	logger   zerolog.Logger
	slowLog  zerolog.Logger // sampled: a burst of slow consumers logs a few lines
	upgrader websocket.Upgrader
	limits   *playerLimits // nil when the rate limit is off
	origins  map[string]bool
	anyOrig  bool
	nextID   atomic.Uint64
	stats    counters
	closing  atomic.Bool

	mu       sync.Mutex
	closed   bool
	sessions map[*session]struct{}
	perIP    map[string]int
	wg       sync.WaitGroup // one per ServeHTTP call past the closed check

	shutdownOnce sync.Once
	shutdownDone chan struct{}
	shutdownErr  error
}

type counters struct {
	open, joined                                 atomic.Int64
	slow, writeTimeouts, badFrames, refusedPerIP atomic.Uint64
	joinsLimited                                 atomic.Uint64
	tooBig                                       atomic.Uint64
	rejects                                      [len(rejectCodes) + 1]atomic.Uint64 // by rejectCodes; the last: any other code
}

// rejectCodes are the codes of reject frames counted one by one in Stats;
// any other is counted as "other".
var rejectCodes = [...]sequencer.Code{
	sequencer.CodeBadRequest, sequencer.CodeBusy, sequencer.CodeUnavailable,
	sequencer.CodeUnknownKind, CodeRateLimited,
}

// rejected counts a reject frame sent with code.
func (c *counters) rejected(code sequencer.Code) {
	i := len(rejectCodes)
	for j, rc := range rejectCodes {
		if rc == code {
			i = j
			break
		}
	}
	c.rejects[i].Add(1)
}

// Stats are the server's counters.
type Stats struct {
	Open           int    // connections being served (handshaking or joined)
	Joined         int    // connections that have joined a room
	SlowConsumers  uint64 // closed with 4000: an outbox bound was exceeded
	WriteTimeouts  uint64 // closed because a write took longer than WriteWait
	BadFrameCloses uint64 // closed with 1008 after too many bad frames
	TooBig         uint64 // closed with 1009: a frame over ReadLimit
	RefusedPerIP   uint64 // refused with 1013 by MaxConnsPerIP
	JoinsLimited   uint64 // hellos refused with 1013 by JoinRate
	// Rejects counts the reject frames sent, by code ("other" for a code
	// not listed); every code is present, zero or not.
	Rejects map[sequencer.Code]uint64
}

// NewServer validates opts, fills in defaults and returns a server for reg.
func NewServer(reg *sequencer.Registry, opts Options) (*Server, error) {
	if reg == nil {
		return nil, errors.New("session: NewServer needs a registry")
	}
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		reg:          reg,
		opts:         opts,
		logger:       opts.Logger,
		origins:      make(map[string]bool),
		sessions:     make(map[*session]struct{}),
		perIP:        make(map[string]int),
		shutdownDone: make(chan struct{}),
	}
	s.slowLog = s.logger.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})
	for _, o := range opts.AllowOrigins {
		if o == "*" {
			s.anyOrig = true
		}
		s.origins[normalizeOrigin(o)] = true
	}
	if !opts.DisableRateLimit {
		s.limits = newPlayerLimits(opts.RateLimit, opts.RateBurst, opts.JoinRate, opts.JoinBurst, opts.MaxResends)
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout:  opts.WriteWait,
		ReadBufferSize:    readBufferSize,
		WriteBufferSize:   writeBufferSize,
		WriteBufferPool:   &sync.Pool{},
		CheckOrigin:       s.checkOrigin,
		EnableCompression: false, // a small compressed frame could inflate past ReadLimit
	}
	return s, nil
}

// Options returns the server's options with defaults filled in.
func (s *Server) Options() Options { return s.opts }

// DevMode reports whether the server accepts unsigned dev:<player> tokens.
func (s *Server) DevMode() bool { return len(s.opts.Secret) == 0 }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Open:           int(s.stats.open.Load()),
		Joined:         int(s.stats.joined.Load()),
		SlowConsumers:  s.stats.slow.Load(),
		WriteTimeouts:  s.stats.writeTimeouts.Load(),
		BadFrameCloses: s.stats.badFrames.Load(),
		TooBig:         s.stats.tooBig.Load(),
		RefusedPerIP:   s.stats.refusedPerIP.Load(),
		JoinsLimited:   s.stats.joinsLimited.Load(),
		Rejects:        s.stats.rejectCounts(),
	}
}

func (c *counters) rejectCounts() map[sequencer.Code]uint64 {
	m := make(map[sequencer.Code]uint64, len(rejectCodes)+1)
	for i, code := range rejectCodes {
		m[code] = c.rejects[i].Load()
	}
	m["other"] = c.rejects[len(rejectCodes)].Load()
	return m
}

// Ready reports whether the server can sequence: it is not shutting down
// and the log answers.
func (s *Server) Ready(ctx context.Context) error {
	if s.closing.Load() {
		return errors.New("shutting down")
	}
	if _, err := s.reg.Options().Log.Meta(ctx, readyRoom); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	return nil
}

func normalizeOrigin(o string) string { return strings.TrimSuffix(strings.ToLower(o), "/") }

// checkOrigin allows requests without Origin (non-browser clients), from
// the server's own host, and from the allow-list.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || s.anyOrig {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) || s.origins[normalizeOrigin(origin)]
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ServeHTTP upgrades the request and serves the connection until it ends.
// The calling goroutine is the connection's read pump.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	cw := &corkWriter{ResponseWriter: w, max: corkLimit}
	conn, err := s.upgrader.Upgrade(cw, r, nil)
	if err != nil {
		// The upgrader has answered with an HTTP error.
		s.logger.Debug().Err(err).Str("remote", r.RemoteAddr).Msg("websocket upgrade refused")
		return
	}
	id := "s" + strconv.FormatUint(s.nextID.Add(1), 36)
	ip := remoteIP(r)
	conn.SetReadLimit(s.opts.ReadLimit)
	sess := newSession(s, conn, cw.conn, id, ip)
	if perr, code := s.admit(sess); perr != nil {
		sess.refuse(perr, code, true)
		conn.Close()
		return
	}
	s.stats.open.Add(1)
	defer func() {
		s.forget(sess)
		s.stats.open.Add(-1)
	}()
	sess.run()
}

// admit registers sess, or says why it may not be served.
func (s *Server) admit(sess *session) (*protoError, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return &protoError{Code: sequencer.CodeUnavailable, Message: "server shutting down"}, CloseGoingAway
	}
	if s.perIP[sess.ip] >= s.opts.MaxConnsPerIP {
		s.stats.refusedPerIP.Add(1)
		return &protoError{Code: sequencer.CodeUnavailable,
			Message: fmt.Sprintf("too many connections from your address (at most %d)", s.opts.MaxConnsPerIP)}, CloseTryLater
	}
	s.perIP[sess.ip]++
	s.sessions[sess] = struct{}{}
	return nil, 0
}

func (s *Server) forget(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
	if s.perIP[sess.ip] <= 1 {
		delete(s.perIP, sess.ip)
	} else {
		s.perIP[sess.ip]--
	}
}

// Shutdown stops accepting connections, shuts the registry down (every
// room sequences what it has queued, makes it durable and answers it),
// then closes every session with 1001 after the acks and events already
// queued for it, and waits for all connections to end. When ctx ends
// first, the remaining connections are cut and ctx's error returned.
// Shutdown is idempotent: later calls wait for the first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		defer close(s.shutdownDone)
		s.shutdownErr = s.shutdown(ctx)
	})
	select {
	case <-s.shutdownDone:
		return s.shutdownErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()

	regErr := s.reg.Shutdown(ctx)
	if regErr != nil {
		s.logger.Warn().Err(regErr).Msg("registry shutdown incomplete")
	}
	for _, sess := range s.snapshot() {
		sess.shutdown()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return regErr
	case <-ctx.Done():
		n := 0
		for _, sess := range s.snapshot() {
			sess.cut()
			n++
		}
		s.logger.Warn().Int("connections", n).Msg("shutdown timed out: connections cut")
		<-done
		return ctx.Err()
	}
}

func (s *Server) snapshot() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		out = append(out, sess)
	}
	return out
}
