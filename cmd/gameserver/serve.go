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

// serve runs the game server until ctx ends, then shuts down gracefully:
// stop accepting, let every room sequence, persist and answer what it has
// queued, close every session with 1001 after its acks, return nil.
// listening, if not nil, learns the bound address.
func serve(ctx context.Context, cfg Config, logger zerolog.Logger, listening func(net.Addr)) error {
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
		Game:       gamestate.Baron(),
		Log:        roomLog,
		Logger:     logger,
		MaxPlayers: cfg.MaxPlayers,
		QueueLimit: cfg.QueueLimit,
		MaxRooms:   cfg.MaxRooms,
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
	hs := &http.Server{
		Handler:           routes(srv, newMetricsHandler(reg, srv, roomLog)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(logger, "", 0),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, logger)
		if err != nil {
			_ = hs.Close()
			_ = srv.Shutdown(context.Background())
			return err
		}
		defer stopDebug()
	}
	logger.Info().Str("addr", ln.Addr().String()).Msg("listening")
	if listening != nil {
		listening(ln.Addr())
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

// serveDebug serves net/http/pprof on its own loopback listener, apart
// from the game traffic.
func serveDebug(addr string, logger zerolog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	logger.Info().Str("addr", ln.Addr().String()).Msg("debug endpoints (pprof) listening")
	return func() { _ = hs.Close() }, nil
}

// routes mounts the protocol, the probes and the metrics.
func routes(srv *session.Server, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /ws", srv)
	mux.Handle("GET /metrics", metrics)
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
