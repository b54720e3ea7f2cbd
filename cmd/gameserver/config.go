package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/session"
)

// envPrefix names the environment variables: --rate-limit is
// GAMESERVER_RATE_LIMIT. A flag on the command line wins over its variable.
const envPrefix = "GAMESERVER_"

// Room limits the sequencer resolves when given zero; shown as flag
// defaults (a test checks they match the registry's).
const (
	defaultMaxPlayers = 100
	defaultMaxKnown   = 10_000
	defaultQueueLimit = 4096
	defaultMaxRooms   = 10_000
	defaultRenewers   = 32
	defaultRetain     = 10_000
)

// Config is everything `gameserver serve` is configured with.
type Config struct {
	Addr            string
	Secret          string
	Redis           string
	LogLevel        string
	LogFormat       string // auto, json or console
	ShutdownTimeout time.Duration
	DebugAddr       string // net/http/pprof, loopback only; empty: off
	MetricsAddr     string // /metrics and the probes on a listener of their own; empty: on Addr
	NodeID          string // unique per process; empty: generated
	Advertise       string // ws URL clients are redirected to; empty: from the listener
	LeaseTTL        time.Duration
	LeaseRenewers   int
	Retain          uint64
	MaxPlayers      int
	MaxKnown        int
	QueueLimit      int
	MaxRooms        int
	// Session holds the connection limits; serve adds Logger and Secret.
	Session session.Options
}

// envLookup is os.LookupEnv; tests pass a map.
type envLookup func(string) (string, bool)

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// stringList is a flag that may be repeated or given comma-separated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// serveFlags defines the flags of serve, bound to cfg, with the defaults.
func serveFlags(cfg *Config) *flag.FlagSet {
	d := session.DefaultOptions()
	*cfg = Config{
		Addr:            "127.0.0.1:7777",
		LogLevel:        "info",
		LogFormat:       "auto",
		ShutdownTimeout: 30 * time.Second,
		MaxPlayers:      defaultMaxPlayers,
		MaxKnown:        defaultMaxKnown,
		QueueLimit:      defaultQueueLimit,
		MaxRooms:        defaultMaxRooms,
		LeaseRenewers:   defaultRenewers,
		Retain:          defaultRetain,
		Session:         d,
	}
	cfg.Session.PingPeriod = 0 // derived from --pong-wait unless set
	s := &cfg.Session
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on (HTTP: /ws, /healthz, /readyz)")
	fs.StringVar(&cfg.Secret, "secret", "", "HMAC key for join tokens, at least 16 bytes; empty: dev mode (dev:<player> tokens, loopback only)")
	fs.StringVar(&cfg.Redis, "redis", "", "Redis URL for durable room logs, redis://host:port/db; empty: the in-memory log (nothing survives the process)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "auto (console on a terminal, else JSON lines), json or console")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long a graceful shutdown may take before connections are cut")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", "", "loopback address serving /debug/pprof/ for profiling; empty: off")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "address serving /metrics (and /healthz, /readyz) apart from the game listener, e.g. on the ops network; empty: /metrics on --addr")
	fs.StringVar(&cfg.NodeID, "node-id", "", "this server's id in room leases (with --redis); empty: <hostname>-<pid>-<random>")
	fs.StringVar(&cfg.Advertise, "advertise", "", "WebSocket URL other servers redirect this server's rooms' clients to, ws://host:port/ws; empty: ws://<listen address>/ws")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", 3*time.Second, "room lease lifetime with --redis: renewed every ttl/4; a dead server's rooms move after at most this long")
	fs.IntVar(&cfg.MaxPlayers, "max-players", cfg.MaxPlayers, "players per room; one more gets room_full")
	fs.IntVar(&cfg.MaxKnown, "max-known-players", cfg.MaxKnown, "players a room keeps in its state over its life, present or not (at least --max-players); a new one past it gets room_full")
	fs.IntVar(&cfg.LeaseRenewers, "lease-renewers", cfg.LeaseRenewers, "lease renewals in flight at once with --redis, so thousands of rooms renew within ttl/4")
	fs.Uint64Var(&cfg.Retain, "retain", cfg.Retain, "entries of a room's log kept up to (and including) its latest snapshot's (in memory or in Redis), for clients resuming with since and for export/replay; older ones are trimmed")
	fs.IntVar(&cfg.QueueLimit, "queue-limit", cfg.QueueLimit, "actions waiting per room; one more gets reject busy")
	fs.IntVar(&cfg.MaxRooms, "max-rooms", cfg.MaxRooms, "rooms open at once, and rooms the in-memory log keeps; a new room past it gets error unavailable")
	fs.Int64Var(&s.ReadLimit, "read-limit", s.ReadLimit, "largest client frame in bytes; larger closes with 1009")
	fs.DurationVar(&s.HelloTimeout, "hello-timeout", s.HelloTimeout, "time a new connection has to send hello")
	fs.DurationVar(&s.JoinTimeout, "join-timeout", s.JoinTimeout, "time to open the room, join it and read a resume's history")
	fs.DurationVar(&s.WriteWait, "write-wait", s.WriteWait, "time one write to a client may take before it is closed")
	fs.DurationVar(&s.PongWait, "pong-wait", s.PongWait, "time without a pong before a client is closed")
	fs.DurationVar(&s.PingPeriod, "ping-period", 0, "time between pings (0: 9/10 of --pong-wait)")
	fs.IntVar(&s.OutboxFrames, "outbox-frames", s.OutboxFrames, "frames queued for one client before it is closed with 4000")
	fs.IntVar(&s.OutboxBytes, "outbox-bytes", s.OutboxBytes, "bytes queued for one client before it is closed with 4000")
	fs.Float64Var(&s.RateLimit, "rate-limit", s.RateLimit, "actions per second per player (0: off); more get reject rate_limited")
	fs.IntVar(&s.RateBurst, "rate-burst", s.RateBurst, "actions a player may send at once")
	fs.Float64Var(&s.JoinRate, "join-rate", s.JoinRate, "joins per second per player (each logs a join and a leave entry); more get error unavailable, close 1013; --rate-limit 0 turns this off too")
	fs.IntVar(&s.JoinBurst, "join-burst", s.JoinBurst, "joins a player may make at once")
	fs.IntVar(&s.MaxBadFrames, "max-bad-frames", s.MaxBadFrames, "frames answered with error per minute before a close with 1008")
	fs.IntVar(&s.MaxConnsPerIP, "max-conns-per-ip", s.MaxConnsPerIP, "open connections per remote address; one more gets close 1013")
	fs.IntVar(&s.MaxResends, "max-resends", s.MaxResends, "actions a reconnected client may resend with cseqs the room already holds, past the rate limit and --queue-limit (they get their original seq, not a reject)")
	fs.Uint64Var(&s.MaxResume, "max-resume", s.MaxResume, "most events sent to a resuming client; further behind gets the state")
	fs.Var((*stringList)(&s.AllowOrigins), "allow-origin", "browser `origin` allowed besides the server's host, e.g. https://game.example.com; repeatable or comma-separated; * allows any")
	return fs
}

// parseServe reads serve's configuration from env, then args (which win).
// It prints nothing: -h returns flag.ErrHelp, and the caller prints.
func parseServe(args []string, env envLookup) (Config, error) {
	var cfg Config
	fs := serveFlags(&cfg)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := env(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	if cfg.Session.RateLimit == 0 {
		cfg.Session.DisableRateLimit = true
	}
	return cfg, cfg.validate()
}

// validate reports every problem of cfg that serve can see before
// building anything; the packages' own validation follows at start.
func (cfg *Config) validate() error {
	var errs []error
	if cfg.Secret == "" && !isLoopback(cfg.Addr) {
		errs = append(errs, fmt.Errorf("--addr %s: dev mode (no --secret) listens only on a loopback address such as 127.0.0.1:7777; set --secret to listen on %s", cfg.Addr, cfg.Addr))
	}
	if cfg.Secret == "" && cfg.MetricsAddr != "" && !isLoopback(cfg.MetricsAddr) {
		errs = append(errs, fmt.Errorf("--metrics-addr %s: dev mode (no --secret) listens only on a loopback address; set --secret to listen on %s", cfg.MetricsAddr, cfg.MetricsAddr))
	}
	if cfg.Secret != "" && len(cfg.Secret) < session.MinSecretLen {
		errs = append(errs, fmt.Errorf("--secret: must be at least %d bytes", session.MinSecretLen))
	}
	if _, err := zerolog.ParseLevel(cfg.LogLevel); err != nil || cfg.LogLevel == "" {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", cfg.LogLevel))
	}
	switch cfg.LogFormat {
	case "auto", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: want auto, json or console", cfg.LogFormat))
	}
	if r := cfg.Session.RateLimit; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		errs = append(errs, fmt.Errorf("--rate-limit %v: must be 0 (off) or a positive number", cfg.Session.RateLimit))
	}
	if r := cfg.Session.JoinRate; r <= 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		errs = append(errs, fmt.Errorf("--join-rate %v: must be positive (--rate-limit 0 turns the limits off)", cfg.Session.JoinRate))
	}
	if cfg.DebugAddr != "" && !isLoopback(cfg.DebugAddr) {
		errs = append(errs, fmt.Errorf("--debug-addr %q: must be a loopback address", cfg.DebugAddr))
	}
	if cfg.LeaseTTL < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--lease-ttl %v: must be at least 100ms", cfg.LeaseTTL))
	}
	if cfg.Advertise != "" && !strings.HasPrefix(cfg.Advertise, "ws://") && !strings.HasPrefix(cfg.Advertise, "wss://") {
		errs = append(errs, fmt.Errorf("--advertise %q: want a ws:// or wss:// URL", cfg.Advertise))
	}
	if strings.ContainsAny(cfg.NodeID, "| \t") {
		errs = append(errs, fmt.Errorf("--node-id %q: may not contain '|' or spaces", cfg.NodeID))
	}
	if cfg.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %v: must be positive", cfg.ShutdownTimeout))
	}
	if cfg.MaxKnown < cfg.MaxPlayers {
		errs = append(errs, fmt.Errorf("--max-known-players %d: must be at least --max-players (%d)", cfg.MaxKnown, cfg.MaxPlayers))
	}
	if cfg.MaxPlayers <= 0 {
		errs = append(errs, fmt.Errorf("--max-players %d: must be positive", cfg.MaxPlayers))
	}
	if cfg.MaxRooms <= 0 {
		errs = append(errs, fmt.Errorf("--max-rooms %d: must be positive", cfg.MaxRooms))
	}
	if cfg.LeaseRenewers <= 0 {
		errs = append(errs, fmt.Errorf("--lease-renewers %d: must be positive", cfg.LeaseRenewers))
	}
	if cfg.Retain == 0 {
		errs = append(errs, errors.New("--retain 0: must be positive"))
	}
	if cfg.QueueLimit <= 0 {
		errs = append(errs, fmt.Errorf("--queue-limit %d: must be positive", cfg.QueueLimit))
	}
	return errors.Join(errs...)
}

// isLoopback reports whether addr (host:port) names a loopback host. An
// empty host means every interface, so it is not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// buildLog is the one place the durable log is chosen: Redis when --redis
// is set, else the in-memory log. It reports what an ack is worth and
// returns a function that releases the log.
func buildLog(ctx context.Context, cfg Config, logger zerolog.Logger) (queue.Log, func(), error) {
	if cfg.Redis == "" {
		logger.Info().Msg("log: in memory; acked actions do not survive this process")
		return queue.NewMemoryLog(queue.MemoryOptions{MaxRooms: cfg.MaxRooms, Retain: cfg.Retain}), func() {}, nil
	}
	redis.SetLogger(redisLogger{logger.With().Str("component", "go-redis").Logger()})
	l, err := queue.NewRedisLog(queue.RedisOptions{URL: cfg.Redis, Game: gamestate.BaronName, Logger: logger, Retain: cfg.Retain})
	if err != nil {
		return nil, nil, fmt.Errorf("--redis: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.LoadScripts(pctx); err != nil {
		logger.Warn().Err(err).Msg("log: redis; scripts not loaded ahead (each is loaded on its first call)")
	}
	p, err := l.Persistence(pctx)
	switch {
	case err != nil:
		logger.Warn().Err(err).Msg("log: redis; cannot read its persistence settings, so what an ack survives is unknown")
	case !p.CrashSafe:
		logger.Warn().Bool("appendonly", p.AppendOnly).Str("appendfsync", p.AppendFsync).Msg("log: redis; " + p.Summary)
	default:
		logger.Info().Bool("appendonly", p.AppendOnly).Str("appendfsync", p.AppendFsync).Msg("log: redis; " + p.Summary)
	}
	return l, func() { _ = l.Close() }, nil
}

// redisLogger sends go-redis's own messages (dial failures, pool
// trouble) to the process logger instead of its default stderr logger.
type redisLogger struct{ l zerolog.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn().Msgf(format, v...)
}

func printServeUsage(w io.Writer) {
	fmt.Fprint(w, "Usage: gameserver serve [flags]\n\nRuns the game server. Every flag can also be set by its environment variable;\nthe command line wins.\n\nFlags:\n")
	printFlags(w, serveFlags(new(Config)), true)
}

// printFlags lists fs's flags GNU style, with their variables and defaults.
func printFlags(w io.Writer, fs *flag.FlagSet, withEnv bool) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s %s\n", f.Name, typ)
		fmt.Fprintf(w, "        %s", usage)
		var notes []string
		if withEnv {
			notes = append(notes, "env "+envName(f.Name))
		}
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "[]" {
			notes = append(notes, "default "+f.DefValue)
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(notes, ", "))
		}
		fmt.Fprintln(w)
	})
}
