package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/sequencer"
)

const replayUsage = `Usage: gameserver replay (--redis URL --room R | --file room.jsonl) [flags]

Rebuilds a room's state from its log with the game's rules and verifies
every entry (seq follows seq without a gap, room time grows, the recorded
result equals the recomputed one) and the final state hash. It prints:

  - a timeline, one line per entry: seq, at (room time, UTC), player, cseq,
    kind, target, result. --from, --to, --player and --kind choose the
    lines printed; every entry is verified whatever they say. An unknown
    kind is a usage error.
  - a verdict for every Baron kill: the winning seq, player and at, and
    the competing entries against Baron just before and after it (--window
    on each side) with their stamps (arrival order; - from a file, which
    has none) and their room time relative to the kill.
  - a summary, which says so when the filters matched no entry.

From Redis the final state hash is compared with the one recorded with the
last entry. A log trimmed by retention (its oldest kept entry is not seq 1)
is replayed from the room's snapshot, whose hash is checked: the entries up
to the snapshot are then verified only by that hash. A file (gameserver
export) records no hash: the final hash is printed, and --hash checks it.

If the replay fails, the verdicts still waiting for contenders after them
are printed with those seen, and a note that the rest were cut off.

A progress bar shows on stderr for long logs when stderr is a terminal.

Exit status: 0 verified; 1 at the first mismatch (naming its seq, the
recorded and the recomputed result), a gap, or any other failure; 2 a
usage error.
`

// A progress bar is worth drawing from about half a second of work on.
const (
	progressMinEntries = 100_000  // from Redis
	progressMinBytes   = 16 << 20 // from a file, about 120,000 entries
)

// replayGCPercent is the GC target while replaying (unless GOGC is set):
// the live heap is a few MiB whatever the log's length, and replay
// allocates some garbage per entry, so collecting less often is about 15%
// faster for a heap of tens of MiB.
const replayGCPercent = 800

// maxLine bounds one line of a replayed file, so a file without newlines
// cannot make the replay hold all of it.
const maxLine = 64 << 20

// replayGame is the game replay rebuilds rooms with: Baron, the only game
// serve runs.
func replayGame() gamestate.Spec { return gamestate.Baron() }

// replayKinds are the kinds of entry a Baron log holds, the values --kind
// accepts: the client actions, then the server-made entries.
func replayKinds() []string {
	return []string{gamestate.KindAttack, gamestate.KindSmite, gamestate.KindJoin, gamestate.KindLeave, gamestate.KindRespawn}
}

type replayConfig struct {
	redis, room, file string
	hash              string
	from, to          uint64
	player            string
	kinds             stringList
	window            int
	quiet             bool
}

func replayFlags(rc *replayConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	redisFlag(fs, &rc.redis)
	fs.StringVar(&rc.room, "room", "", "room to replay from Redis")
	fs.StringVar(&rc.file, "file", "", "JSON-lines log to replay instead (gameserver export's output; - reads stdin)")
	fs.StringVar(&rc.hash, "hash", "", "with --file: the expected final state hash (hex), e.g. printed by replay --redis")
	fs.Uint64Var(&rc.from, "from", 0, "print timeline lines and verdicts from this seq on")
	fs.Uint64Var(&rc.to, "to", 0, "print timeline lines and verdicts up to this seq (default: the last)")
	fs.StringVar(&rc.player, "player", "", "print only this player's entries (its actions, joins and leaves) and the verdicts it took part in")
	fs.Var(&rc.kinds, "kind", "print only entries of these `kinds` (repeatable or comma-separated: "+strings.Join(replayKinds(), ",")+")")
	fs.IntVar(&rc.window, "window", 3, "contenders shown on each side of a verdict")
	fs.BoolVar(&rc.quiet, "quiet", false, "print only the verdicts and the summary")
	return fs
}

func (rc *replayConfig) validate() (expectHash uint64, err error) {
	var errs []error
	switch {
	case rc.file != "" && (rc.redis != "" || rc.room != ""):
		errs = append(errs, errors.New("--file and --redis/--room: choose one source"))
	case rc.file == "" && rc.redis == "":
		errs = append(errs, errors.New("a source is required: --redis URL --room R (or "+envName("redis")+"), or --file room.jsonl"))
	case rc.file == "" && !queue.ValidRoom(rc.room):
		errs = append(errs, fmt.Errorf("--room %q: 1-64 characters of [A-Za-z0-9_.-] required", rc.room))
	}
	if rc.to != 0 && rc.to < rc.from {
		errs = append(errs, fmt.Errorf("--to %d is below --from %d", rc.to, rc.from))
	}
	for _, k := range rc.kinds {
		if !slices.Contains(replayKinds(), k) {
			errs = append(errs, fmt.Errorf("--kind %q: not a kind of %s entries (%s)", k, replayGame().Name, strings.Join(replayKinds(), ", ")))
		}
	}
	if rc.window <= 0 {
		errs = append(errs, errors.New("--window must be positive"))
	}
	if rc.hash != "" {
		if rc.file == "" {
			errs = append(errs, errors.New("--hash is for --file: a Redis log has its recorded hash"))
		}
		expectHash, err = strconv.ParseUint(strings.TrimPrefix(rc.hash, "0x"), 16, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("--hash %q: not a 64-bit hex number", rc.hash))
		}
	}
	return expectHash, errors.Join(errs...)
}

func runReplay(args []string, stdout, stderr io.Writer, env envLookup) int {
	var rc replayConfig
	fs := replayFlags(&rc)
	if code, done := parseCommand(fs, args, replayUsage, stdout, stderr); done {
		return code
	}
	if rc.file == "" {
		rc.redis = redisURL(rc.redis, env)
	}
	expectHash, err := rc.validate()
	if err != nil {
		return usageError(stderr, "replay", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if _, set := env("GOGC"); !set {
		defer debug.SetGCPercent(debug.SetGCPercent(replayGCPercent))
	}
	r := &replay{
		rp:     sequencer.NewReplayer(replayGame().New()),
		vt:     sequencer.NewVerdictTracker(rc.window),
		stdout: stdout,
		stderr: stderr,
		tty:    terminalsOf(stdout, stderr),
		out: printer{
			w:      bufio.NewWriterSize(stdout, 256<<10),
			filter: entryFilter{from: rc.from, to: rc.to, player: rc.player, kinds: rc.kinds},
			quiet:  rc.quiet,
		},
	}
	if rc.file != "" {
		err = r.fromFile(ctx, rc.file, rc.hash != "", expectHash)
	} else {
		err = r.fromRedis(ctx, rc.redis, rc.room)
	}
	return r.exit(err)
}

// replay feeds a log's frames to a sequencer.Replayer, which verifies
// them, and to a VerdictTracker, and prints what they say.
type replay struct {
	rp      *sequencer.Replayer
	vt      *sequencer.VerdictTracker
	out     printer
	results byteSlab
	stdout  io.Writer
	stderr  io.Writer
	tty     terminals
	bar     *progressbar.ProgressBar

	first    uint64 // first seq replayed
	n        uint64 // entries replayed
	verdicts int
	start    time.Time
}

// begin starts the replay proper once its length is known, with a
// progress bar (bar may be nil). It comes before any output: the bar may
// have to be cleared before every write to stdout.
func (r *replay) begin(bar *progressbar.ProgressBar) {
	r.bar = bar
	if bar != nil && r.tty.stdout {
		r.out.w.Reset(clearingWriter{w: r.stdout, bar: bar})
	}
	r.first = r.rp.Seq() + 1
	r.start = time.Now()
}

// step verifies and prints one entry.
func (r *replay) step(frame []byte, stamp uint64) error {
	ev, err := r.rp.Step(frame)
	if err != nil {
		return err
	}
	r.n++
	r.out.entry(&ev)
	// The tracker keeps recent entries; their Result aliases frame, whose
	// buffer the caller reuses.
	ev.Result = r.results.copy(ev.Result)
	vs := r.vt.Observe(ev, stamp)
	for i := range vs {
		r.verdict(&vs[i])
	}
	return nil
}

func (r *replay) verdict(v *sequencer.Verdict) {
	r.verdicts++
	r.out.verdict(v)
}

// end prints the verdicts still waiting for contenders after them.
func (r *replay) end() {
	vs := r.vt.Flush()
	for i := range vs {
		r.verdict(&vs[i])
	}
	if r.bar != nil {
		_ = r.bar.Finish()
	}
}

func (r *replay) summary(source string) {
	took := time.Since(r.start)
	rate := float64(r.n) / max(took.Seconds(), 1e-9)
	kills := "s"
	if r.verdicts == 1 {
		kills = ""
	}
	fmt.Fprintf(r.out.w, "%s: replayed %d entries, seq %d..%d, in %v (%.0f entries/s); %d Baron kill%s\n",
		source, r.n, r.first, r.rp.Seq(), took.Round(time.Microsecond), rate, r.verdicts, kills)
	if f := &r.out.filter; f.active() && r.out.matched == 0 {
		fmt.Fprintf(r.out.w, "%s: no entry matched %s\n", source, f)
	}
}

func (r *replay) fromRedis(ctx context.Context, url, room string) error {
	l, err := openLog(ctx, url)
	if err != nil {
		return err
	}
	defer l.Close()
	// The snapshot before the meta: a live room saves snapshots only at
	// seqs already in the log, so the meta read after it covers it.
	snap, hasSnap, err := l.LoadSnapshot(ctx, room)
	if err != nil {
		return err
	}
	meta, err := l.Meta(ctx, room)
	if err != nil {
		return err
	}
	if meta.LastSeq == 0 {
		return fmt.Errorf("room %s has no log entries", room)
	}
	source := "room " + room
	var trimmed string
	if meta.FirstSeq > 1 {
		if !hasSnap || snap.Seq+1 < meta.FirstSeq || snap.Seq > meta.LastSeq {
			return fmt.Errorf("room %s: the log was trimmed to seq %d..%d and no snapshot covers the entries before it", room, meta.FirstSeq, meta.LastSeq)
		}
		if err := r.rp.Restore(snap); err != nil {
			return fmt.Errorf("room %s: %w", room, err)
		}
		trimmed = fmt.Sprintf("%s: the log was trimmed by retention (oldest kept entry seq %d): replayed from the snapshot at seq %d, whose state hash %016x checks; entries 1..%d were verified only by that hash",
			source, meta.FirstSeq, snap.Seq, snap.Hash, snap.Seq)
	}
	r.begin(newProgress(r.stderr, r.tty.stderr, int64(meta.LastSeq-r.rp.Seq()), progressMinEntries, false, "replay "+room))
	if trimmed != "" && !r.out.quiet {
		fmt.Fprintln(r.out.w, trimmed)
	}
	r.out.header()
	err = readLog(ctx, l, room, r.rp.Seq()+1, meta.LastSeq, func(recs []queue.Record) error {
		for i := range recs {
			if err := r.step(recs[i].Event, recs[i].Stamp); err != nil {
				return err
			}
		}
		if r.bar != nil {
			_ = r.bar.Add(len(recs))
		}
		return nil
	})
	if errors.Is(err, queue.ErrTrimmed) {
		return fmt.Errorf("%w (the room is live, and retention trimmed its log during the replay: run it again)", err)
	}
	if err != nil {
		return err
	}
	r.end()
	if err := r.rp.CheckHash(meta.LastHash); err != nil {
		return err
	}
	r.summary(source)
	if trimmed != "" {
		fmt.Fprintln(r.out.w, trimmed)
	}
	fmt.Fprintf(r.out.w, "verified: every recorded result, and the final state hash %016x equals the hash recorded with seq %d\n", meta.LastHash, meta.LastSeq)
	return nil
}

// lineError places a replay error in a file.
type lineError struct {
	path string
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.path, e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

func (r *replay) fromFile(ctx context.Context, path string, checkHash bool, expect uint64) error {
	var src io.Reader = os.Stdin
	var size int64
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		src = f
	}
	bar := newProgress(r.stderr, r.tty.stderr, size, progressMinBytes, true, "replay "+filepath.Base(path))
	if bar != nil {
		pr := progressbar.NewReader(src, bar)
		src = &pr
	}
	r.begin(bar)
	r.out.header()
	br := bufio.NewReaderSize(src, 1<<20)
	var long []byte
	for line := 1; ; line++ {
		if line%65536 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(long) > maxLine {
					return &lineError{path, line, fmt.Errorf("line longer than %d MiB", maxLine>>20)}
				}
				b, err = br.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", path, err)
		}
		b = trimEOL(b)
		if len(bytes.TrimSpace(b)) > 0 { // blank lines, spaces or not, are skipped
			if serr := r.step(b, 0); serr != nil {
				if r.n == 0 {
					serr = firstLineHint(b, serr)
				}
				return &lineError{path, line, serr}
			}
		}
		if err == io.EOF {
			break
		}
	}
	if r.n == 0 {
		return fmt.Errorf("%s: no entries", path)
	}
	r.end()
	r.summary("file " + path)
	h := r.rp.Game().Hash()
	if !checkHash {
		fmt.Fprintf(r.out.w, "verified: every recorded result; final state hash %016x (a file records no hash: compare it with the room's, or pass --hash)\n", h)
		return nil
	}
	if err := r.rp.CheckHash(expect); err != nil {
		return fmt.Errorf("%w (--hash)", err)
	}
	fmt.Fprintf(r.out.w, "verified: every recorded result, and the final state hash %016x equals --hash\n", h)
	return nil
}

// trimEOL drops a line's "\n" or "\r\n".
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n > 1 && b[n-2] == '\r' {
			b = b[:n-2]
		}
	}
	return b
}

// firstLineHint explains a file that does not start at seq 1: the export
// of a trimmed log, which only a replay from Redis (from the snapshot) can
// verify.
func firstLineHint(frame []byte, err error) error {
	ev, derr := sequencer.DecodeEvent(frame)
	if derr != nil || ev.Seq <= 1 {
		return err
	}
	return fmt.Errorf("%w: the file starts at seq %d, not 1, so it is the export of a log trimmed by retention and carries no snapshot to start from; replay the room with --redis URL --room R, which starts from its snapshot", err, ev.Seq)
}

// exit flushes the output and turns the outcome into the exit status; a
// mismatch is spelled out on stderr.
func (r *replay) exit(err error) int {
	if err != nil {
		// Every entry the tracker holds was verified: a kill is decided
		// even if the replay failed before the contenders after it.
		vs := r.vt.Flush()
		for i := range vs {
			r.out.cutVerdict(&vs[i], r.rp.Seq())
		}
	}
	if ferr := r.out.w.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	if err == nil {
		return 0
	}
	if r.bar != nil {
		_ = r.bar.Clear()
	}
	var mm *sequencer.MismatchError
	if errors.As(err, &mm) {
		where := ""
		if le := (*lineError)(nil); errors.As(err, &le) {
			where = fmt.Sprintf(" (%s line %d)", le.path, le.line)
		}
		fmt.Fprintf(r.stderr, "gameserver replay: MISMATCH at seq %d%s: the recorded result is not what the rules compute\n  recorded:   %s\n  recomputed: %s\n",
			mm.Seq, where, clip(mm.Recorded, maxShownResult), clip(mm.Recomputed, maxShownResult))
	} else {
		fmt.Fprintf(r.stderr, "gameserver replay: %v\n", err)
	}
	if r.rp.Seq() > 0 {
		fmt.Fprintf(r.stderr, "gameserver replay: entries up to seq %d verified\n", r.rp.Seq())
	}
	return 1
}

// maxShownResult bounds each result a mismatch prints: a tampered entry
// can hold megabytes.
const maxShownResult = 1024

// clip returns b, or its first n bytes and how long it was.
func clip(b string, n int) string {
	if len(b) <= n {
		return b
	}
	return fmt.Sprintf("%s… (%d bytes in all)", b[:n], len(b))
}

// byteSlab copies small byte strings into shared blocks, so keeping a copy
// costs a fraction of an allocation; a block is freed once nothing
// references it.
type byteSlab struct{ buf []byte }

const slabSize = 64 << 10

func (s *byteSlab) copy(b []byte) []byte {
	if cap(s.buf)-len(s.buf) < len(b) {
		s.buf = make([]byte, 0, max(slabSize, len(b)))
	}
	start := len(s.buf)
	s.buf = append(s.buf, b...)
	return s.buf[start:len(s.buf):len(s.buf)]
}
