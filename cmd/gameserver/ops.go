package main

// What the ops commands (rooms, export, replay) share: flag parsing, the
// Redis log they read, paging through a room's log, and the progress bar.
// They only read: none of them acquires a room or appends.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"

	"github.com/lasthit/lasthit/queue"
)

// readPage is how many records one Read of the ops commands asks for
// (RedisOptions.MaxRead caps it at 10,000): few round trips, and a page
// of a few MiB at most.
const readPage = 8192

// parseCommand parses args into fs. It returns done with the exit code
// when the command ends here: -h prints usage and the flags to stdout (0),
// a bad flag or a stray argument is a usage error on stderr (2).
func parseCommand(fs *flag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage, "\nFlags:\n")
		printFlags(stdout, fs, false)
		return 0, true
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		return usageError(stderr, fs.Name(), err), true
	}
	return 0, false
}

// usageError reports a usage error of command and returns exit code 2.
func usageError(stderr io.Writer, command string, err error) int {
	fmt.Fprintf(stderr, "gameserver %s: %v\n(see gameserver %s -h)\n", command, err, command)
	return 2
}

// redisFlag defines --redis, which falls back to GAMESERVER_REDIS (serve's
// variable), so ops commands find the same Redis as the servers.
func redisFlag(fs *flag.FlagSet, url *string) {
	fs.StringVar(url, "redis", "", "Redis URL of the room logs, as serve's --redis (default: $"+envName("redis")+")")
}

// errNoRedis is the usage error of an ops command given no Redis.
var errNoRedis = errors.New("--redis is required (or " + envName("redis") + ")")

func redisURL(flagValue string, env envLookup) string {
	if flagValue != "" {
		return flagValue
	}
	v, _ := env(envName("redis"))
	return v
}

// openLog connects to the room logs at url and checks that Redis answers,
// so a wrong URL is one clear error instead of one per call.
func openLog(ctx context.Context, url string) (*queue.RedisLog, error) {
	// go-redis logs each failed dial on its own stderr logger: with Redis
	// down, dozens of lines before the one error that says so. serve
	// routes them to its logger (buildLog); an ops command has no log, and
	// its error names the cause, so they go nowhere.
	redis.SetLogger(redisLogger{zerolog.Nop()})
	l, err := queue.NewRedisLog(queue.RedisOptions{URL: url})
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	if err := l.Ping(ctx); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("--redis %s: %w", redactURL(url), err)
	}
	return l, nil
}

// redactURL is u with its password, if any, replaced by "xxxxx", for
// messages: an ops command's error can end up in a ticket or a chat.
func redactURL(u string) string {
	if p, err := neturl.Parse(u); err == nil {
		return p.Redacted()
	}
	if at := strings.LastIndexByte(u, '@'); at >= 0 {
		return "xxxxx" + u[at:] // unparsable: keep only what follows the credentials
	}
	return u
}

// readLog hands fn the room's records from..to in order, a page at a time.
// The next page is read while fn works on the current one, so a replay
// from Redis pays for Redis's round trips and its own work at once, not
// one after the other. fn may keep nothing of a page past its call except
// what it copies.
func readLog(ctx context.Context, l queue.Log, room string, from, to uint64, fn func([]queue.Record) error) error {
	if from > to {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	type page struct {
		recs []queue.Record
		err  error
	}
	pages := make(chan page, 1)
	reader := make(chan struct{})
	go func() {
		defer close(reader)
		defer close(pages)
		for next := from; next <= to; {
			recs, err := l.Read(ctx, room, next, to, readPage)
			if err == nil && len(recs) == 0 {
				err = fmt.Errorf("room %s: the log ends before seq %d, which its meta names as written", room, next)
			}
			select {
			case pages <- page{recs, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			next = recs[len(recs)-1].Seq + 1
		}
	}()
	defer func() {
		cancel()
		<-reader
	}()
	for p := range pages {
		if p.err != nil {
			return p.err
		}
		if err := fn(p.recs); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// terminals says which of a command's output streams are terminals: the
// progress bar is drawn only on a terminal stderr, and cleared before each
// write to a terminal stdout. A command takes it from its real streams
// (terminalsOf) and hands the flag on, so a test can say either.
type terminals struct{ stdout, stderr bool }

func terminalsOf(stdout, stderr io.Writer) terminals {
	return terminals{stdout: isTTY(stdout), stderr: isTTY(stderr)}
}

// isTTY reports whether w is a terminal. A pipe, a file or /dev/null is not.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// progressEvery is how often the progress bar redraws. Its first frame
// comes one interval after it starts, never at the first Add: a rate over
// the microseconds a first page or a first buffered read takes is
// absurd ("412 GB/s").
const progressEvery = 100 * time.Millisecond

// newProgress returns a progress bar on stderr when stderr is a terminal
// and the work is long (max at least minMax), else nil. Its clock starts
// now, so call it right before the work. The bar clears itself when
// finished, so only the output stays.
func newProgress(stderr io.Writer, terminal bool, max, minMax int64, bytes bool, desc string) *progressbar.ProgressBar {
	if max < minMax || !terminal {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(progressEvery),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("entries"))
	}
	bar := progressbar.NewOptions64(max, opts...)
	// Reset starts the bar's clock and counts it as just drawn: the
	// first frame waits for the throttle, and its rate is over that long
	// at least.
	bar.Reset()
	return bar
}

// clearingWriter clears the progress bar before each write, for when
// stdout and the bar share a terminal; the bar draws itself again on its
// next update.
type clearingWriter struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (c clearingWriter) Write(p []byte) (int, error) {
	_ = c.bar.Clear()
	return c.w.Write(p)
}
