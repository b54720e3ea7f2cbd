package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/mattn/go-isatty"
)

// Exit statuses of Main.
const (
	ExitOK        = 0 // the run went through and every invariant held
	ExitViolation = 1 // an invariant was violated, or the run failed
	ExitUsage     = 2 // bad flags or configuration
)

// defaultRate is --rate's default. (Config.Rate's zero value means as fast
// as acks allow, which a command line asks for explicitly.)
const defaultRate = 10

// urlList is a flag that takes comma-separated URLs and may be repeated.
type urlList []string

func (u *urlList) String() string { return strings.Join(*u, ",") }

func (u *urlList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*u = append(*u, s)
		}
	}
	return nil
}

// parseFlags turns the command line into a Config. It does not fill in
// defaults the flags do not show, nor validate, beyond refusing a flag set
// to the zero that Config would take for "the default".
func parseFlags(args []string, stderr io.Writer) (Config, error) {
	var cfg Config
	var urls urlList
	var secret, scenario string
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gameserver loadtest --url ws://HOST:PORT/ws [flags]\n\n"+
			"Runs bots that speak protocol v1 against one or more servers, checks the\n"+
			"invariants on everything they receive, and reports latency and throughput.\n"+
			"Exit status: 0 all invariants held, 1 a violation or a failed run, 2 bad usage.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.Var(&urls, "url", "server WebSocket `URL`s, comma-separated or repeated; bots spread over them and fail over between them (required)")
	fs.IntVar(&cfg.Bots, "bots", 10, "number of bots (one player, one connection each)")
	fs.IntVar(&cfg.Rooms, "rooms", 0, "number of rooms; bot i joins room i mod rooms (default bots/2, rounded up)")
	fs.Float64Var(&cfg.Rate, "rate", defaultRate, "actions per second per bot; 0: as fast as acks allow within --window")
	fs.IntVar(&cfg.Window, "window", 16, "most actions one bot has in flight (keep within the server's dedupe window, 32 by default)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long bots act (default 10s)")
	fs.DurationVar(&cfg.Drain, "drain", 0, "how long bots may wait for answers after --duration (default 5s)")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 0, "how long the start waits for bots to join (default 10s)")
	fs.StringVar(&scenario, "scenario", string(ScenarioSteady), "what bots do: "+scenarioList())
	fs.StringVar(&secret, "secret", "", "token secret of the servers; bots sign their join tokens with it (default: dev:<player> tokens)")
	fs.StringVar(&cfg.JSONPath, "json", "", "write the report as JSON to `FILE`")
	fs.StringVar(&cfg.HTMLPath, "html", "", "write the report as a self-contained HTML page to `FILE`")
	fs.StringVar(&cfg.CPUProfilePath, "cpuprofile", "", "write a CPU profile of the bots (go tool pprof) to `FILE`")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the bots' randomness (default: random, reported)")
	fs.StringVar(&cfg.RunID, "run-id", "", "names this run's rooms and players, [a-z0-9]{1,16} (default: random)")
	fs.DurationVar(&cfg.PingEvery, "ping-every", 0, "how often each bot pings to measure its round trip; below --read-timeout (default 1s)")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", 0, "a connection that shows no frame for this long is dropped, and the bot fails over to the next URL (default 15s)")
	fs.DurationVar(&cfg.BackoffMax, "backoff-max", 0, "cap of the backoff between failed connection attempts (default 2s)")
	fs.DurationVar(&cfg.DropEvery, "drop-every", 0, "reconnect bots: mean time between two drops (default 1s)")
	fs.Int64Var(&cfg.LowHP, "low-hp", 0, "contested bots: Baron HP at which they hold back (default 2000)")
	fs.DurationVar(&cfg.HoldBack, "hold-back", 0, "contested bots: how long they hold back before bursting together (default 20ms)")
	fs.IntVar(&cfg.Burst, "burst", 0, "contested bots: attacks in one burst (default 8)")
	fs.IntVar(&cfg.CheckWindow, "check-window", 0, "events per room kept to compare the bots' streams (default 4096)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return Config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	// Config's zero values mean "the default", so a --bots 0 or a
	// --duration 0 given on the command line is refused here, not run
	// with the default.
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		switch {
		case f.Name == "bots" && cfg.Bots <= 0:
			bad = append(bad, fmt.Sprintf("--bots must be at least 1, got %d", cfg.Bots))
		case f.Name == "duration" && cfg.Duration <= 0:
			bad = append(bad, fmt.Sprintf("--duration must be positive, got %v", cfg.Duration))
		}
	})
	if len(bad) > 0 {
		return Config{}, errors.New(strings.Join(bad, "; "))
	}
	cfg.URLs = urls
	cfg.Scenario = Scenario(scenario)
	if secret != "" {
		cfg.Secret = []byte(secret)
	}
	return cfg, nil
}

// startCPUProfile profiles the whole process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// Main is `gameserver loadtest`: it parses args (without the command
// name), runs, prints the summary table to stdout, writes the report
// files, and returns the exit status. A progress line goes to stderr when
// it is a terminal.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return ExitUsage
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return ExitUsage
	}
	if f, ok := stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		cfg.Progress = stderr
	}
	if cfg.CPUProfilePath != "" {
		stopProfile, err := startCPUProfile(cfg.CPUProfilePath)
		if err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return ExitUsage
		}
		defer stopProfile()
	}
	rep, err := Run(ctx, cfg)
	if rep != nil {
		if werr := rep.WriteSummary(stdout); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return ExitViolation
	}
	if rep.Violations > 0 {
		return ExitViolation
	}
	return ExitOK
}
