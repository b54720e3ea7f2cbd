// Command gameserver runs the lasthit game server and its tools.
//
//	gameserver serve [flags]    run the server (see gameserver serve -h)
//	gameserver token [flags]    print a signed join token
//	gameserver loadtest [flags] drive load-test bots against servers
//	gameserver rooms [flags]    list the rooms of a Redis deployment
//	gameserver export [flags]   write a room's log as JSON lines
//	gameserver replay [flags]   verify a room's log and explain its verdicts
//	gameserver help             list commands and flags
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lasthit/lasthit/loadtest"
	"github.com/lasthit/lasthit/session"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// run executes one command and returns the exit code: 0 success, 1
// failure, 2 usage error.
func run(args []string, stdout, stderr io.Writer, env envLookup) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stdout, stderr, env)
	case "token":
		return runToken(args[1:], stdout, stderr, env)
	case "loadtest":
		return runLoadtest(args[1:], stdout, stderr, env)
	case "rooms":
		return runRooms(args[1:], stdout, stderr, env)
	case "export":
		return runExport(args[1:], stdout, stderr, env)
	case "replay":
		return runReplay(args[1:], stdout, stderr, env)
	case "help", "-h", "--help":
		printUsage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "gameserver: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: gameserver <command> [flags]

Commands:
  serve     run the game server (WebSocket protocol v1 on /ws, /healthz, /readyz)
  token     print a signed join token for a player
  loadtest  drive bots against servers and check the invariants (see gameserver loadtest -h)
  rooms     list the rooms of a Redis deployment (see gameserver rooms -h)
  export    write a room's log as JSON lines (see gameserver export -h)
  replay    rebuild and verify a room from its log; timeline and verdicts (see gameserver replay -h)
  help      show this help

`)
	fmt.Fprint(w, "Flags of serve (each also read from its environment variable; the command line wins):\n")
	printFlags(w, serveFlags(new(Config)), true)
	fmt.Fprint(w, "\nFlags of token:\n")
	printFlags(w, tokenFlags(new(tokenConfig)), false)
}

func runServe(args []string, stdout, stderr io.Writer, env envLookup) int {
	cfg, err := parseServe(args, env)
	if errors.Is(err, flag.ErrHelp) {
		printServeUsage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "gameserver serve: %v\n(see gameserver serve -h)\n", err)
		return 2
	}
	logger := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, logger, nil); err != nil {
		logger.Error().Err(err).Msg("gameserver serve failed")
		return 1
	}
	return 0
}

type tokenConfig struct {
	player, room, secret string
	ttl                  time.Duration
}

func tokenFlags(tc *tokenConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.StringVar(&tc.player, "player", "", "player id the token names (required)")
	fs.StringVar(&tc.room, "room", "", "room the token is limited to (default: any room)")
	fs.DurationVar(&tc.ttl, "ttl", time.Hour, "how long the token is valid")
	fs.StringVar(&tc.secret, "secret", "", "signing key, as the server's --secret (default: $"+envName("secret")+")")
	return fs
}

func runToken(args []string, stdout, stderr io.Writer, env envLookup) int {
	var tc tokenConfig
	fs := tokenFlags(&tc)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, "Usage: gameserver token --player P [--room R] [--ttl 1h]\n\nPrints a join token signed with the server's secret.\n\nFlags:\n")
			printFlags(stdout, fs, false)
			return 0
		}
		fmt.Fprintf(stderr, "gameserver token: %v\n(see gameserver token -h)\n", err)
		return 2
	}
	if tc.secret == "" {
		tc.secret, _ = env(envName("secret"))
	}
	switch {
	case tc.player == "":
		fmt.Fprintln(stderr, "gameserver token: --player is required")
		return 2
	case tc.secret == "":
		fmt.Fprintf(stderr, "gameserver token: no secret (--secret or %s); a server in dev mode takes dev:%s instead\n", envName("secret"), tc.player)
		return 2
	case tc.ttl <= 0:
		fmt.Fprintln(stderr, "gameserver token: --ttl must be positive")
		return 2
	}
	tok, err := session.SignToken([]byte(tc.secret), session.TokenClaims{Player: tc.player, Room: tc.room, Expires: time.Now().Add(tc.ttl)})
	if err != nil {
		fmt.Fprintf(stderr, "gameserver token: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

// runLoadtest runs the load-test bots until the run ends or a signal
// arrives. The secret comes from --secret or GAMESERVER_SECRET, so it can
// stay off the command line: the variable goes in as a --secret ahead of
// args, so a --secret in args, parsed after it, wins, and the flag set
// alone decides what is a flag and what is a value.
func runLoadtest(args []string, stdout, stderr io.Writer, env envLookup) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if secret, ok := env(envName("secret")); ok && secret != "" {
		args = append([]string{"--secret=" + secret}, args...)
	}
	return loadtest.Main(ctx, args, stdout, stderr)
}
