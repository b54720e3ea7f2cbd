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
	"regexp"
	"strings"
	"syscall"

	"github.com/lasthit/lasthit/queue"
)

const exportUsage = `Usage: gameserver export --redis URL --room R [--out room.jsonl | > room.jsonl]

Writes the room's log as JSON lines: each entry's event frame exactly as it
was broadcast and stored, in seq order, one per line, up to the last seq
when the export started. This is what replay --file reads.

With --out FILE the export goes to a temporary file next to FILE, renamed
to FILE only once complete: a failed or interrupted export leaves FILE as
it was. Without --out it goes to stdout.

On success it prints on stderr the seq range and the state hash Redis
recorded with the last entry exported, and the command that verifies the
file against it (gameserver replay --file FILE --hash HEX): a file records
no hash, so only --hash tells a truncated export from a complete one.

If retention has trimmed the log (the oldest kept entry is not seq 1), the
export starts at the oldest kept entry and says so on stderr; replay --file
needs seq 1, so replay such a room with replay --redis, which starts from
its snapshot.
`

type exportConfig struct {
	redis, room, out string
}

func exportFlags(ec *exportConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	redisFlag(fs, &ec.redis)
	fs.StringVar(&ec.room, "room", "", "room to export (required)")
	fs.StringVar(&ec.out, "out", "", "write to this `file` instead of stdout, replacing it only once the export is complete")
	return fs
}

func runExport(args []string, stdout, stderr io.Writer, env envLookup) int {
	var ec exportConfig
	fs := exportFlags(&ec)
	if code, done := parseCommand(fs, args, exportUsage, stdout, stderr); done {
		return code
	}
	ec.redis = redisURL(ec.redis, env)
	switch {
	case ec.redis == "":
		return usageError(stderr, "export", errNoRedis)
	case !queue.ValidRoom(ec.room):
		return usageError(stderr, "export", fmt.Errorf("--room %q: 1-64 characters of [A-Za-z0-9_.-] required", ec.room))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "gameserver export: %v\n", err)
		return 1
	}
	l, err := openLog(ctx, ec.redis)
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	meta, err := l.Meta(ctx, ec.room)
	if err != nil {
		return fail(err)
	}
	if meta.LastSeq == 0 {
		return fail(fmt.Errorf("room %s has no log entries", ec.room))
	}
	if meta.FirstSeq > 1 {
		fmt.Fprintf(stderr, "gameserver export: room %s's log was trimmed by retention: the oldest kept entry is seq %d, so the export starts there (replay --file needs seq 1; use replay --redis for this room)\n", ec.room, meta.FirstSeq)
	}
	var n int
	if ec.out == "" {
		n, err = writeExport(ctx, l, ec.room, meta, stdout)
	} else {
		n, err = exportToFile(ctx, l, ec.room, meta, ec.out)
	}
	if err != nil {
		return fail(err)
	}
	to, file := "", "FILE"
	if ec.out != "" {
		to, file = " to "+ec.out, shellQuote(ec.out)
	}
	fmt.Fprintf(stderr, "gameserver export: %d entries of room %s, seq %d..%d%s\n", n, ec.room, meta.FirstSeq, meta.LastSeq, to)
	hash := fmt.Sprintf("%016x", meta.LastHash)
	if meta.FirstSeq > 1 {
		fmt.Fprintf(stderr, "gameserver export: state hash %s recorded with seq %d (replay --redis checks it)\n", hash, meta.LastSeq)
		return 0
	}
	fmt.Fprintf(stderr, "gameserver export: state hash %s recorded with seq %d; check that the file is complete and verifies with:\n  gameserver replay --file %s --hash %s\n", hash, meta.LastSeq, file, hash)
	return 0
}

// writeExport writes the room's entries meta.FirstSeq..meta.LastSeq to w
// and returns how many it wrote.
func writeExport(ctx context.Context, l queue.Log, room string, meta queue.Meta, w io.Writer) (int, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	n := 0
	err := readLog(ctx, l, room, meta.FirstSeq, meta.LastSeq, func(recs []queue.Record) error {
		for _, rec := range recs {
			// JSON never needs a raw newline, and the sequencer writes
			// none; one would split the entry over two lines.
			if bytes.IndexByte(rec.Event, '\n') >= 0 {
				return fmt.Errorf("room %s: seq %d: the event frame holds a newline", room, rec.Seq)
			}
			bw.Write(rec.Event)
			bw.WriteByte('\n')
			n++
		}
		return nil
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return n, err
}

// exportToFile writes the export to a temporary file in path's directory
// (a rename within one file system is atomic), syncs it, and renames it to
// path only then: path holds the old file or the whole export, never part
// of one.
func exportToFile(ctx context.Context, l queue.Log, room string, meta queue.Meta, path string) (n int, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("--out: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if n, err = writeExport(ctx, l, room, meta, tmp); err != nil {
		return n, err
	}
	// CreateTemp makes the file 0600; an export is as readable as a
	// shell's > would make it under the usual umask.
	err = errors.Join(tmp.Chmod(0o644), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return n, fmt.Errorf("--out: %w", err)
	}
	return n, nil
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shellQuote quotes s for a POSIX shell, so a printed command can be
// pasted as it is.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
