package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/sequencer"
	"github.com/lasthit/lasthit/session"
)

// readyTimeout bounds the log probe of /readyz.
const readyTimeout = 2 * time.Second

// newLogger returns the process logger: JSON lines, or a console writer
// when format is console, or auto and w is a terminal.
func newLogger(w io.Writer, level, format string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	if format == "console" || (format == "auto" && isTerminal(w)) {
		w = zerolog.NewConsoleWriter(func(cw *zerolog.ConsoleWriter) { cw.Out = w; cw.TimeFormat = time.TimeOnly })
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// bound is where serve listens: the game listener, and the metrics
// listener when --metrics-addr is set (else nil).
type bound struct {
	Game, Metrics net.Addr
}

// serve runs the game server until ctx ends, then shuts down gracefully:
// stop accepting, let every room sequence, persist and answer what it has
// queued, close every session with 1001 after its acks, return nil.
// listening, if not nil, learns the bound addresses.
func serve(ctx context.Context, cfg Config, logger zerolog.Logger, listening func(bound)) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	roomLog, closeLog, err := buildLog(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeLog()
	// Listen before building the registry: the advertised URL of room
	// leases defaults to the bound address.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	seqOpts := sequencer.Options{
		Game:            gamestate.Baron(),
		Log:             roomLog,
		Logger:          logger,
		MaxPlayers:      cfg.MaxPlayers,
		MaxKnownPlayers: cfg.MaxKnown,
		QueueLimit:      cfg.QueueLimit,
		MaxRooms:        cfg.MaxRooms,
	}
	if cfg.Redis != "" {
		seqOpts.Node = queue.Node{ID: cfg.NodeID, URL: cfg.Advertise}
		if seqOpts.Node.ID == "" {
			seqOpts.Node.ID = defaultNodeID()
		}
		if seqOpts.Node.URL == "" {
			seqOpts.Node.URL = "ws://" + ln.Addr().String() + "/ws"
		}
		seqOpts.LeaseTTL = cfg.LeaseTTL
		seqOpts.LeaseRenewers = cfg.LeaseRenewers
		logger.Info().Str("node", seqOpts.Node.ID).Str("advertise", seqOpts.Node.URL).Dur("lease_ttl", cfg.LeaseTTL).Msg("room leases")
	}
	reg, err := sequencer.NewRegistry(seqOpts)
	if err != nil {
		return err
	}
	opts := cfg.Session
	opts.Logger = logger
	opts.Secret = []byte(cfg.Secret)
	srv, err := session.NewServer(reg, opts)
	if err != nil {
		_ = reg.Shutdown(context.Background())
		return err
	}
	if srv.DevMode() {
		logger.Warn().Msg("dev mode: no --secret, so any dev:<player> token is accepted; listening on loopback only")
	}
	metrics := newMetricsHandler(reg, srv, roomLog)
	game, ops := routes(srv, metrics), http.Handler(nil)
	if cfg.MetricsAddr != "" {
		game, ops = routes(srv, nil), probes(srv, metrics)
	}
	hs := &http.Server{
		Handler:           game,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(logger, "", 0),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	at := bound{Game: ln.Addr()}
	for _, side := range []struct {
		flag, addr, what string
		handler          http.Handler
		bound            *net.Addr
	}{
		{"--metrics-addr", cfg.MetricsAddr, "metrics and probes", ops, &at.Metrics},
		{"--debug-addr", cfg.DebugAddr, "debug endpoints (pprof)", debugRoutes(), nil},
	} {
		if side.addr == "" {
			continue
		}
		addr, stop, err := serveSide(side.flag, side.addr, side.what, side.handler, logger)
		if err != nil {
			_ = hs.Close()
			_ = srv.Shutdown(context.Background())
			return err
		}
		defer stop()
		if side.bound != nil {
			*side.bound = addr
		}
	}
	logger.Info().Str("addr", ln.Addr().String()).Msg("listening")
	if listening != nil {
		listening(at)
	}

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info().Msg("shutting down")
	case serveErr = <-served:
		logger.Error().Err(serveErr).Msg("http server stopped")
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Hijacked WebSocket connections are not the http.Server's: this stops
	// the listener and idle HTTP requests only. The sessions are srv's.
	if err := hs.Shutdown(sctx); err != nil {
		logger.Warn().Err(err).Msg("http shutdown")
	}
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info().Msg("shut down")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// defaultNodeID is unique per process: host, pid and a random suffix, so a
// restarted server never mistakes its predecessor's leases for its own.
func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", strings.ReplaceAll(host, "|", "_"), os.Getpid(), hex.EncodeToString(b[:]))
}

// serveSide serves handler on a listener of its own, apart from the game
// traffic (metrics for the ops network, pprof on loopback). It returns
// the bound address and a func that closes it.
func serveSide(flag, addr, what string, handler http.Handler, logger zerolog.Logger) (net.Addr, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", flag, err)
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(logger, "", 0)}
	go func() { _ = hs.Serve(ln) }()
	logger.Info().Str("addr", ln.Addr().String()).Msg(what + " listening")
	return ln.Addr(), func() { _ = hs.Close() }, nil
}

func debugRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// routes mounts the protocol, the probes and, unless metrics is nil (they
// have a listener of their own), the metrics.
func routes(srv *session.Server, metrics http.Handler) http.Handler {
	mux := probes(srv, metrics)
	mux.Handle("GET /ws", srv)
	return mux
}

// probes mounts /healthz, /readyz and, unless metrics is nil, /metrics.
func probes(srv *session.Server, metrics http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := srv.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}
