package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lasthit/lasthit/queue"
)

const roomsUsage = `Usage: gameserver rooms --redis URL [--limit N]

Lists the rooms of a Redis deployment, most recently active first: room,
owner (the lease holder: node id and URL; - when no server holds the room),
epoch, last seq, stream length (entries kept), snapshot seq and last activity.
`

type roomsConfig struct {
	redis string
	limit int
}

func roomsFlags(rc *roomsConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("rooms", flag.ContinueOnError)
	redisFlag(fs, &rc.redis)
	fs.IntVar(&rc.limit, "limit", 100, "list at most this many rooms, the most recently active")
	return fs
}

func runRooms(args []string, stdout, stderr io.Writer, env envLookup) int {
	var rc roomsConfig
	fs := roomsFlags(&rc)
	if code, done := parseCommand(fs, args, roomsUsage, stdout, stderr); done {
		return code
	}
	rc.redis = redisURL(rc.redis, env)
	switch {
	case rc.redis == "":
		return usageError(stderr, "rooms", errNoRedis)
	case rc.limit <= 0:
		return usageError(stderr, "rooms", errors.New("--limit must be positive"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	l, err := openLog(ctx, rc.redis)
	if err != nil {
		fmt.Fprintf(stderr, "gameserver rooms: %v\n", err)
		return 1
	}
	defer l.Close()
	infos, skipped, err := roomInfos(ctx, l, rc.limit)
	if err != nil {
		fmt.Fprintf(stderr, "gameserver rooms: %v\n", err)
		return 1
	}
	if skipped > 0 {
		fmt.Fprintf(stderr, "gameserver rooms: %d entries of the index are not room names; skipped\n", skipped)
	}
	if len(infos) == 0 {
		fmt.Fprintln(stderr, "gameserver rooms: no rooms in the index")
		return 0
	}
	if err := writeRoomsTable(stdout, infos, time.Now()); err != nil {
		fmt.Fprintf(stderr, "gameserver rooms: %v\n", err)
		return 1
	}
	if len(infos) == rc.limit {
		if more, err := l.Rooms(ctx, rc.limit+skipped, 1); err == nil && len(more) > 0 {
			fmt.Fprintf(stderr, "(the %d most recently active rooms; --limit to see more)\n", rc.limit)
		}
	}
	return 0
}

// roomInfos reads the index a page at a time, then each room's info (one
// round trip each). Index entries that are not room names (written by
// hand, or by something else) are skipped and counted.
func roomInfos(ctx context.Context, l *queue.RedisLog, limit int) (infos []queue.RoomInfo, skipped int, err error) {
	for len(infos) < limit {
		page, err := l.Rooms(ctx, len(infos)+skipped, limit-len(infos))
		if err != nil {
			return nil, 0, err
		}
		for _, r := range page {
			if !queue.ValidRoom(r.Room) {
				skipped++
				continue
			}
			info, err := l.RoomInfo(ctx, r.Room)
			if err != nil {
				return nil, 0, err
			}
			infos = append(infos, info)
		}
		if len(page) == 0 {
			break
		}
	}
	return infos, skipped, nil
}

func writeRoomsTable(w io.Writer, infos []queue.RoomInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROOM\tOWNER\tEPOCH\tLAST SEQ\tSTREAM LEN\tSNAPSHOT SEQ\tLAST ACTIVITY")
	for _, in := range infos {
		owner, snap, active := "-", "-", "-"
		if in.Owner != "" {
			owner = in.Owner
		}
		if in.HasSnapshot {
			snap = strconv.FormatUint(in.SnapshotSeq, 10)
		}
		if !in.LastActive.IsZero() {
			active = fmt.Sprintf("%s (%s ago)", in.LastActive.UTC().Format(time.RFC3339), now.Sub(in.LastActive).Round(time.Second))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", in.Room, owner, in.Epoch, in.LastSeq, in.StreamLen, snap, active)
	}
	return tw.Flush()
}
