package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/lasthit/lasthit/queue"
)

const exportUsage = `Usage: gameserver export --redis URL --room R > room.jsonl

Writes the room's log to stdout as JSON lines: each entry's event frame
exactly as it was broadcast and stored, in seq order, one per line, up to
the last seq when the export started. This is what replay --file reads.

If retention has trimmed the log (the oldest kept entry is not seq 1), the
export starts at the oldest kept entry and says so on stderr; replay --file
needs seq 1, so replay such a room with replay --redis, which starts from
its snapshot.
`

type exportConfig struct {
	redis, room string
}

func exportFlags(ec *exportConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	redisFlag(fs, &ec.redis)
	fs.StringVar(&ec.room, "room", "", "room to export (required)")
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
	w := bufio.NewWriterSize(stdout, 256<<10)
	n := 0
	err = readLog(ctx, l, ec.room, meta.FirstSeq, meta.LastSeq, func(recs []queue.Record) error {
		for _, rec := range recs {
			// JSON never needs a raw newline, and the sequencer writes
			// none; one would split the entry over two lines.
			if bytes.IndexByte(rec.Event, '\n') >= 0 {
				return fmt.Errorf("room %s: seq %d: the event frame holds a newline", ec.room, rec.Seq)
			}
			w.Write(rec.Event)
			w.WriteByte('\n')
			n++
		}
		return nil
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stderr, "gameserver export: %d entries of room %s, seq %d..%d\n", n, ec.room, meta.FirstSeq, meta.LastSeq)
	return 0
}
