package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/sequencer"
)

// writeRoomFile plays a 10-player room on an in-memory log until it holds
// at least entries entries, and writes the log to a file as export does.
// Baron respawns a microsecond of room time after each kill, so the log
// is mostly hits, with a last hit about every 30 entries, a few
// target_dead refusals and a respawn after each kill (a replay
// with the default options computes the same results: the delay decides
// only when the server makes a respawn entry).
func writeRoomFile(tb testing.TB, entries int) string {
	tb.Helper()
	log := queue.NewMemoryLog(queue.MemoryOptions{Retain: uint64(entries) * 2})
	g, err := sequencer.NewRegistry(sequencer.Options{
		Game: gamestate.BaronWith(gamestate.BaronOptions{RespawnDelay: time.Microsecond}),
		Log:  log,
	})
	require.NoError(tb, err)
	ctx := context.Background()
	room, err := g.Room(ctx, "bench")
	require.NoError(tb, err)
	const players = 10
	for p := range players {
		_, err := room.Join(ctx, fmt.Sprintf("p%d", p), discardEvents{})
		require.NoError(tb, err)
	}
	for c := uint64(1); c <= uint64(entries/players); c++ {
		for p := range players {
			for room.Push(sequencer.Action{Player: fmt.Sprintf("p%d", p), CSeq: c, Kind: gamestate.KindAttack, Target: gamestate.TargetBaron, Reply: ignoreAnswers{}}) != nil {
				runtime.Gosched()
			}
		}
		// A flush a round lets the respawn timer in, as in a real game,
		// where Baron is alive most of the time.
		require.NoError(tb, room.Flush(ctx))
	}
	require.NoError(tb, g.Shutdown(ctx))

	path := filepath.Join(tb.TempDir(), "bench.jsonl")
	f, err := os.Create(path)
	require.NoError(tb, err)
	w := bufio.NewWriter(f)
	meta, err := log.Meta(ctx, "bench")
	require.NoError(tb, err)
	require.Equal(tb, uint64(1), meta.FirstSeq)
	for from := uint64(1); from <= meta.LastSeq; {
		recs, err := log.Read(ctx, "bench", from, meta.LastSeq, 4096)
		require.NoError(tb, err)
		for _, r := range recs {
			w.Write(r.Event)
			w.WriteByte('\n')
		}
		from = recs[len(recs)-1].Seq + 1
	}
	require.NoError(tb, w.Flush())
	require.NoError(tb, f.Close())
	return path
}

type ignoreAnswers struct{}

func (ignoreAnswers) Acked(sequencer.Ack)       {}
func (ignoreAnswers) Rejected(sequencer.Reject) {}

// Replay speed from a file: `gameserver replay --file` of a 100,000-entry
// log, the whole command (open, read, verify, verdicts, summary) per op.
// quiet prints verdicts and the summary only; timeline also formats and
// writes a line per entry (to io.Discard).
//
//	go test -run '^$' -bench ReplayFile -benchtime 20x -count 5 ./cmd/gameserver/
func BenchmarkReplayFile(b *testing.B) {
	const entries = 100_000
	path := writeRoomFile(b, entries)
	n := countLines(b, path)
	for _, bc := range []struct {
		name string
		args []string
	}{
		{"quiet", []string{"--quiet"}},
		{"timeline", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			args := append([]string{"replay", "--file", path}, bc.args...)
			var errOut bytes.Buffer
			for b.Loop() {
				if code := run(args, io.Discard, &errOut, envOf(nil)); code != 0 {
					b.Fatalf("replay exited %d: %s", code, errOut.String())
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

func countLines(tb testing.TB, path string) int {
	data, err := os.ReadFile(path)
	require.NoError(tb, err)
	return bytes.Count(data, []byte{'\n'})
}

// The benchmark's file replays, and the speed the summary reports is
// there (a quick check of the fixture, not a timing assertion).
func TestReplayLargeFile(t *testing.T) {
	path := writeRoomFile(t, 20_000)
	code, out, errOut := gs("replay", "--file", path, "--quiet", "--window", "2")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `replayed \d+ entries, seq 1\.\.\d+, in \S+ \(\d+ entries/s\); \d+ Baron kills`, out)
	kills := verdictHeads(out)
	assert.Greater(t, len(kills), 100, "a kill every ~30 attacks")
	assert.Equal(t, len(kills), strings.Count(out, "\n  winner  "))
	assert.Contains(t, out, fmt.Sprintf("; %d Baron kills", len(kills)))
}
