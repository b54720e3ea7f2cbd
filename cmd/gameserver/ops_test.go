package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/internal/redistest"
	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/sequencer"
)

// fill describes a room the ops tests play: players join, then all attack
// Baron at once, each from its own goroutine, so last hits are contested.
type fill struct {
	players, attacks int    // attacks per player
	retain           uint64 // RedisOptions.Retain (0: default)
	snapshotEvery    uint64 // sequencer.Options.SnapshotEvery (0: default)
	lease            bool   // hold the room under a lease of node "node-a"
}

const (
	testNode    = "node-a"
	testNodeURL = "ws://127.0.0.1:7001/ws"
)

// playRoom runs a sequencer.Registry over a real RedisLog and plays f in
// room. The registry keeps running (and holds the room) until stop is
// called or the test ends; stopping sequences a leave for each player.
//
// Baron respawns 1 ms of room time after a kill here (20 s by default), so
// a short test sees several kills. A replay with the default options
// computes the same results: the respawn delay decides only when the
// server makes the respawn entry, never what an entry does.
func playRoom(t *testing.T, url, room string, f fill) (stop func()) {
	t.Helper()
	l, err := queue.NewRedisLog(queue.RedisOptions{URL: url, Retain: f.retain})
	require.NoError(t, err)
	opts := sequencer.Options{
		Game:          gamestate.BaronWith(gamestate.BaronOptions{RespawnDelay: time.Millisecond}),
		Log:           l,
		SnapshotEvery: f.snapshotEvery,
	}
	if f.lease {
		opts.Node = queue.Node{ID: testNode, URL: testNodeURL}
		opts.LeaseTTL = 30 * time.Second
	}
	g, err := sequencer.NewRegistry(opts)
	require.NoError(t, err)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			assert.NoError(t, g.Shutdown(ctx))
			l.Close()
		})
	}
	t.Cleanup(stop)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := g.Room(ctx, room)
	require.NoError(t, err)
	for p := 1; p <= f.players; p++ {
		_, err := r.Join(ctx, fmt.Sprintf("p%d", p), discardEvents{})
		require.NoError(t, err)
	}
	// Like real clients, each player waits for the answer to its action
	// before the next one, so the players' actions interleave in the log.
	var wg sync.WaitGroup
	for p := 1; p <= f.players; p++ {
		wg.Go(func() {
			answers := make(answerChan, 1)
			for c := uint64(1); c <= uint64(f.attacks); c++ {
				a := sequencer.Action{Player: fmt.Sprintf("p%d", p), CSeq: c, Kind: gamestate.KindAttack, Target: gamestate.TargetBaron, Reply: answers}
				if err := r.Push(a); err != nil {
					t.Errorf("push: %v", err)
					return
				}
				select {
				case <-answers:
				case <-ctx.Done():
					t.Errorf("no answer to p%d's cseq %d", p, c)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, r.Flush(ctx))
	return stop
}

type discardEvents struct{}

func (discardEvents) Publish([][]byte) bool { return true }
func (discardEvents) Dropped(error)         {}

// answerChan receives the answer to a player's one outstanding action (the
// room loop must never block on it: it has room for that one).
type answerChan chan struct{}

func (a answerChan) Acked(sequencer.Ack)       { a <- struct{}{} }
func (a answerChan) Rejected(sequencer.Reject) { a <- struct{}{} }

// gs runs one gameserver command in process.
func gs(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut, envOf(nil))
	return code, out.String(), errOut.String()
}

// frames returns the records' event frames as an export writes them.
func framesOf(recs []queue.Record) string {
	var b strings.Builder
	for _, r := range recs {
		b.Write(r.Event)
		b.WriteByte('\n')
	}
	return b.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// tableRows splits a rooms table into cells (columns are 2+ spaces apart).
func tableRows(out string) [][]string {
	var rows [][]string
	sep := regexp.MustCompile(`\s{2,}`)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, sep.Split(strings.TrimSpace(line), -1))
	}
	return rows
}

func TestRoomsCommand(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	playRoom(t, rs.URL(), "r1", fill{players: 2, attacks: 5, lease: true})
	stopR2 := playRoom(t, rs.URL(), "r2", fill{players: 1, attacks: 3})
	stopR2()
	m1, _ := logMeta(t, rs.URL(), "r1")
	m2, _ := logMeta(t, rs.URL(), "r2")

	code, out, errOut := gs("rooms", "--redis", rs.URL())
	require.Equal(t, 0, code, errOut)
	rows := tableRows(out)
	require.Len(t, rows, 3, out)
	assert.Equal(t, []string{"ROOM", "OWNER", "EPOCH", "LAST SEQ", "STREAM LEN", "SNAPSHOT SEQ", "LAST ACTIVITY"}, rows[0])
	byRoom := map[string][]string{}
	for _, r := range rows[1:] {
		require.Len(t, r, 7, "%q", r)
		byRoom[r[0]] = r
	}
	r1, r2 := byRoom["r1"], byRoom["r2"]
	require.NotNil(t, r1, out)
	require.NotNil(t, r2, out)
	assert.Equal(t, testNode+" "+testNodeURL, r1[1], "r1 is held under node-a's lease")
	assert.Equal(t, "-", r2[1], "no server holds r2")
	assert.Equal(t, strconv.FormatUint(m1.Epoch, 10), r1[2])
	assert.Equal(t, strconv.FormatUint(m1.LastSeq, 10), r1[3])
	assert.Equal(t, strconv.FormatUint(m1.LastSeq, 10), r1[4], "nothing trimmed: the stream holds every entry")
	assert.Equal(t, strconv.FormatUint(m2.LastSeq, 10), r2[3])
	assert.Equal(t, "-", r1[5], "no snapshot yet")
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+s ago\)$`, r1[6])

	// --limit, and the URL from the environment as serve reads it.
	var o, e bytes.Buffer
	code = run([]string{"rooms", "--limit", "1"}, &o, &e, envOf(map[string]string{"GAMESERVER_REDIS": rs.URL()}))
	require.Equal(t, 0, code, e.String())
	assert.Len(t, tableRows(o.String()), 2)
	assert.Contains(t, e.String(), "--limit to see more")

	// Exactly --limit rooms: nothing more to see.
	code, out, errOut = gs("rooms", "--redis", rs.URL(), "--limit", "2")
	require.Equal(t, 0, code, errOut)
	assert.Len(t, tableRows(out), 3)
	assert.NotContains(t, errOut, "--limit to see more")

	// An index entry that is no room name is skipped, not fatal.
	require.NoError(t, rawRedis(t, rs.URL()).ZAdd(context.Background(), "lh:rooms", redis.Z{Score: float64(time.Now().UnixMilli()), Member: "bad room{x}"}).Err())
	code, out, errOut = gs("rooms", "--redis", rs.URL())
	require.Equal(t, 0, code, errOut)
	assert.Len(t, tableRows(out), 3, out)
	assert.Contains(t, errOut, "1 entries of the index are not room names; skipped")
	code, out, errOut = gs("rooms", "--redis", rs.URL(), "--limit", "1")
	require.Equal(t, 0, code, errOut)
	assert.Len(t, tableRows(out), 2, out)
}

// A trimmed room's row: its last seq, the entries its stream keeps and its
// snapshot's seq are three different numbers, each in its column.
func TestRoomsTrimmed(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	playRoom(t, rs.URL(), "r1", fill{players: 2, attacks: 30, retain: 5, snapshotEvery: 10})()
	info := roomInfo(t, rs.URL(), "r1")
	require.True(t, info.HasSnapshot)
	require.Greater(t, info.FirstSeq, uint64(1), "retention trimmed the log")
	streamLen := info.LastSeq - info.FirstSeq + 1
	require.Equal(t, int64(streamLen), info.StreamLen)
	require.NotEqual(t, info.LastSeq, info.SnapshotSeq)
	require.NotEqual(t, streamLen, info.SnapshotSeq)

	code, out, errOut := gs("rooms", "--redis", rs.URL())
	require.Equal(t, 0, code, errOut)
	rows := tableRows(out)
	require.Len(t, rows, 2, out)
	require.Len(t, rows[1], 7, "%q", rows[1])
	assert.Equal(t, []string{"r1", "-", strconv.FormatUint(info.Epoch, 10), strconv.FormatUint(info.LastSeq, 10),
		strconv.FormatUint(streamLen, 10), strconv.FormatUint(info.SnapshotSeq, 10)}, rows[1][:6], out)
}

func roomInfo(t *testing.T, url, room string) queue.RoomInfo {
	t.Helper()
	l, err := queue.NewRedisLog(queue.RedisOptions{URL: url})
	require.NoError(t, err)
	defer l.Close()
	info, err := l.RoomInfo(context.Background(), room)
	require.NoError(t, err)
	return info
}

// The export is the log's frames byte for byte, in order; replaying it
// from Redis or from the file verifies, and both explain every kill.
func TestExportAndReplay(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	playRoom(t, rs.URL(), "r1", fill{players: 3, attacks: 30})()
	meta, recs := logMeta(t, rs.URL(), "r1")
	require.Equal(t, uint64(1), meta.FirstSeq)
	require.Len(t, recs, int(meta.LastSeq))

	code, exported, errOut := gs("export", "--redis", rs.URL(), "--room", "r1")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, framesOf(recs), exported, "the export is the log's event frames, one a line, in seq order")
	assert.Contains(t, errOut, fmt.Sprintf("%d entries of room r1, seq 1..%d", len(recs), meta.LastSeq))
	path := writeFile(t, "r1.jsonl", exported)

	// The kills, as the log records them.
	type kill struct {
		seq    uint64
		player string
		stamp  uint64
	}
	var kills []kill
	for _, r := range recs {
		if bytes.Contains(r.Event, []byte(`"last_hit":true`)) {
			ev, err := sequencer.DecodeEvent(r.Event)
			require.NoError(t, err)
			kills = append(kills, kill{ev.Seq, ev.Player, r.Stamp})
		}
	}
	require.NotEmpty(t, kills, "90 attacks of at least 300 damage kill a 10,000 HP Baron")

	code, fromRedis, errOut := gs("replay", "--redis", rs.URL(), "--room", "r1")
	require.Equal(t, 0, code, errOut)
	assert.Len(t, timelineLines(t, fromRedis), len(recs), "one timeline line per entry")
	heads := verdictHeads(fromRedis)
	require.Len(t, heads, len(kills), fromRedis)
	for i, k := range kills {
		assert.Regexp(t, fmt.Sprintf(`^verdict seq %d: %s took baron \(attack\) at \S+Z, stamp %d$`, k.seq, k.player, k.stamp), heads[i])
	}
	assert.Regexp(t, `(?m)^  winner  seq \d+ +p\d +attack +\+0s +stamp \d+ +\{"damage":\d+,"baron_hp":0,"last_hit":true\}$`, fromRedis)
	assert.Regexp(t, `(?m)^  before  seq \d+ +p\d +attack +-\S+ +stamp \d+ +\{"damage"`, fromRedis, "the attacks just before the kill, with stamps and time deltas")
	assert.Regexp(t, `(?m)^  after   seq \d+ +p\d +attack +\+\S+ +stamp \d+ +\{.+\}$`, fromRedis)
	assert.Contains(t, fromRedis, fmt.Sprintf("final state hash %016x equals the hash recorded with seq %d", meta.LastHash, meta.LastSeq))
	assert.Contains(t, fromRedis, fmt.Sprintf("replayed %d entries, seq 1..%d", len(recs), meta.LastSeq))

	code, fromFile, errOut := gs("replay", "--file", path)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, timelineLines(t, fromRedis), timelineLines(t, fromFile), "the same timeline from the file")
	fileHeads := verdictHeads(fromFile)
	require.Len(t, fileHeads, len(kills))
	for i := range heads {
		assert.Equal(t, regexp.MustCompile(`stamp \d+$`).ReplaceAllString(heads[i], "stamp -"), fileHeads[i], "the same verdicts; a file has no stamps")
	}
	hash := fmt.Sprintf("%016x", meta.LastHash)
	assert.Contains(t, fromFile, "final state hash "+hash+" (a file records no hash")

	code, out, _ := gs("replay", "--file", path, "--hash", hash, "--quiet")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "equals --hash")
	code, _, errOut = gs("replay", "--file", path, "--hash", fmt.Sprintf("%016x", meta.LastHash+1))
	assert.Equal(t, 1, code, "a wrong --hash fails")
	assert.Contains(t, errOut, "hashes to "+hash)

	t.Run("filters", func(t *testing.T) {
		// --from/--to choose lines and verdicts, never what is verified.
		code, out, errOut := gs("replay", "--file", path, "--from", "5", "--to", "9")
		require.Equal(t, 0, code, errOut)
		var seqs []string
		for _, f := range timelineLines(t, out) {
			seqs = append(seqs, f[0])
		}
		assert.Equal(t, []string{"5", "6", "7", "8", "9"}, seqs)
		assert.Contains(t, out, fmt.Sprintf("replayed %d entries", len(recs)))

		code, out, errOut = gs("replay", "--redis", rs.URL(), "--room", "r1", "--player", "p2")
		require.Equal(t, 0, code, errOut)
		want, wantKinds := 0, 0
		for _, r := range recs {
			ev, _ := sequencer.DecodeEvent(r.Event)
			if ev.Player == "p2" || (ev.Player == "" && ev.Target == "p2") {
				want++
			}
			if ev.Kind == "join" || ev.Kind == "respawn" {
				wantKinds++
			}
		}
		lines := timelineLines(t, out)
		assert.Len(t, lines, want)
		for _, f := range lines {
			assert.True(t, f[2] == "p2" || (f[2] == "-" && f[5] == "p2"), "%q", f)
		}
		var withP2 []string
		for _, b := range verdictBlocks(fromRedis) {
			if strings.Contains(b, " p2 ") {
				withP2 = append(withP2, b)
			}
		}
		assert.Equal(t, withP2, verdictBlocks(out), "the verdicts p2 took part in")

		code, out, errOut = gs("replay", "--file", path, "--kind", "join,respawn")
		require.Equal(t, 0, code, errOut)
		lines = timelineLines(t, out)
		assert.Len(t, lines, wantKinds)
		for _, f := range lines {
			assert.Contains(t, []string{"join", "respawn"}, f[4])
		}
		assert.Empty(t, verdictHeads(out), "no join or respawn took part in a verdict")

		code, out, errOut = gs("replay", "--file", path, "--quiet")
		require.Equal(t, 0, code, errOut)
		assert.Empty(t, timelineLines(t, out))
		assert.NotContains(t, out, "at (UTC)", "no timeline header")
		assert.Len(t, verdictHeads(out), len(kills))
		assert.Contains(t, out, "verified: every recorded result")
	})
}

// timelineLines returns the timeline's lines (those starting with a seq),
// split into columns.
func timelineLines(t *testing.T, out string) [][]string {
	t.Helper()
	var lines [][]string
	for _, l := range strings.Split(out, "\n") {
		if l != "" && l[0] >= '0' && l[0] <= '9' {
			f := strings.Fields(l)
			require.Len(t, f, 7, "seq at player cseq kind target result: %q", l)
			lines = append(lines, f)
		}
	}
	return lines
}

// verdictBlocks returns each verdict: its head line and contender lines.
func verdictBlocks(out string) []string {
	var blocks []string
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "verdict "):
			blocks = append(blocks, l+"\n")
		case strings.HasPrefix(l, "  ") && len(blocks) > 0:
			blocks[len(blocks)-1] += l + "\n"
		}
	}
	return blocks
}

func verdictHeads(out string) []string {
	var heads []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "verdict ") {
			heads = append(heads, l)
		}
	}
	return heads
}

// A result changed in the file fails the replay at that seq, naming the
// recorded and the recomputed result; a missing line is a gap.
func TestReplayCatchesTamperingAndGaps(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	playRoom(t, rs.URL(), "r1", fill{players: 2, attacks: 20})()
	_, recs := logMeta(t, rs.URL(), "r1")
	lines := strings.Split(strings.TrimSuffix(framesOf(recs), "\n"), "\n")

	damage := regexp.MustCompile(`"damage":(\d+)`)
	victim := -1
	for i, l := range lines {
		if i >= 10 && damage.MatchString(l) {
			victim = i
			break
		}
	}
	require.GreaterOrEqual(t, victim, 0)
	original := lines[victim]
	m := damage.FindStringSubmatch(original)
	d, _ := strconv.Atoi(m[1])
	tampered := strings.Replace(original, m[0], fmt.Sprintf(`"damage":%d`, d+1), 1)
	seq := recs[victim].Seq
	withLine := func(i int, l string) string {
		c := append([]string(nil), lines...)
		c[i] = l
		return strings.Join(c, "\n") + "\n"
	}
	resultOf := func(frame string) string {
		ev, err := sequencer.DecodeEvent([]byte(frame))
		require.NoError(t, err)
		return string(ev.Result)
	}

	code, out, errOut := gs("replay", "--file", writeFile(t, "tampered.jsonl", withLine(victim, tampered)))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, fmt.Sprintf("MISMATCH at seq %d", seq))
	assert.Contains(t, errOut, fmt.Sprintf("line %d", victim+1))
	assert.Contains(t, errOut, "recorded:   "+resultOf(tampered))
	assert.Contains(t, errOut, "recomputed: "+resultOf(original))
	assert.Contains(t, errOut, fmt.Sprintf("entries up to seq %d verified", seq-1))
	tl := timelineLines(t, out)
	require.NotEmpty(t, tl)
	assert.Equal(t, strconv.FormatUint(seq-1, 10), tl[len(tl)-1][0], "the timeline stops before the mismatch")
	assert.NotContains(t, out, "verified:", "no summary claims success")

	gap := strings.Join(append(append([]string(nil), lines[:victim]...), lines[victim+1:]...), "\n") + "\n"
	code, _, errOut = gs("replay", "--file", writeFile(t, "gap.jsonl", gap))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, fmt.Sprintf("seq %d follows %d (gap or repeat)", seq+1, seq-1))

	code, _, errOut = gs("replay", "--file", writeFile(t, "late.jsonl", strings.Join(lines[4:], "\n")+"\n"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "the file starts at seq 5, not 1")

	code, _, errOut = gs("replay", "--file", writeFile(t, "junk.jsonl", withLine(3, `{"type":"event","seq":4,`)))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "junk.jsonl:4:")
}

// A log trimmed by retention is exported from its oldest kept entry (said
// on stderr) and replayed from the room's snapshot.
func TestTrimmedLog(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	playRoom(t, rs.URL(), "r1", fill{players: 2, attacks: 30, retain: 5, snapshotEvery: 10})()
	meta, recs := logMeta(t, rs.URL(), "r1")
	require.Greater(t, meta.FirstSeq, uint64(1), "retention trimmed the log")

	code, exported, errOut := gs("export", "--redis", rs.URL(), "--room", "r1")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, framesOf(recs), exported)
	assert.Contains(t, errOut, fmt.Sprintf("the oldest kept entry is seq %d, so the export starts there", meta.FirstSeq))

	l, err := queue.NewRedisLog(queue.RedisOptions{URL: rs.URL()})
	require.NoError(t, err)
	snap, ok, err := l.LoadSnapshot(context.Background(), "r1")
	l.Close()
	require.NoError(t, err)
	require.True(t, ok)

	code, out, errOut := gs("replay", "--redis", rs.URL(), "--room", "r1")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, fmt.Sprintf("replayed from the snapshot at seq %d, whose state hash %016x checks; entries 1..%d were verified only by that hash", snap.Seq, snap.Hash, snap.Seq))
	tl := timelineLines(t, out)
	require.NotEmpty(t, tl)
	assert.Equal(t, strconv.FormatUint(snap.Seq+1, 10), tl[0][0])
	assert.Len(t, tl, int(meta.LastSeq-snap.Seq))
	assert.Contains(t, out, fmt.Sprintf("final state hash %016x equals the hash recorded with seq %d", meta.LastHash, meta.LastSeq))

	code, _, errOut = gs("replay", "--file", writeFile(t, "trimmed.jsonl", exported))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, fmt.Sprintf("the file starts at seq %d, not 1", meta.FirstSeq))
	assert.Contains(t, errOut, "--redis")
}

func TestOpsUsage(t *testing.T) {
	code, out, _ := gs("help")
	require.Equal(t, 0, code)
	for _, c := range []string{"rooms", "export", "replay"} {
		assert.Contains(t, out, "  "+c+" ")
		code, out, _ := gs(c, "-h")
		assert.Equal(t, 0, code)
		assert.Contains(t, out, "Usage: gameserver "+c)
		assert.Contains(t, out, "--redis")
	}
	for _, args := range [][]string{
		{"rooms"},
		{"rooms", "--redis", "redis://127.0.0.1:1/0", "--limit", "0"},
		{"export", "--redis", "redis://127.0.0.1:1/0"},
		{"export", "--redis", "redis://127.0.0.1:1/0", "--room", "no spaces"},
		{"replay"},
		{"replay", "--file", "x", "--redis", "redis://127.0.0.1:1/0"},
		{"replay", "--file", "x", "--from", "9", "--to", "3"},
		{"replay", "--file", "x", "--window", "0"},
		{"replay", "--file", "x", "--hash", "xyz"},
		{"replay", "--redis", "redis://127.0.0.1:1/0", "--room", "r1", "--hash", "ab"},
		{"replay", "--file", "x", "stray"},
	} {
		code, _, errOut := gs(args...)
		assert.Equal(t, 2, code, "%q: %s", args, errOut)
		assert.Contains(t, errOut, "see gameserver "+args[0]+" -h", "%q", args)
	}
	code, _, errOut := gs("replay", "--file", filepath.Join(t.TempDir(), "missing.jsonl"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no such file")
}

// rawRedis is a plain client of the test's Redis, to damage a room's keys
// the way a bug or an operator could.
func rawRedis(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// --kind takes the kinds of the game replay runs (Baron's), as written; any
// other is a usage error naming them. Filters that match nothing are
// accepted, and the summary says they matched nothing.
func TestReplayKinds(t *testing.T) {
	spec := replayGame()
	g := spec.New()
	for i, k := range replayKinds() {
		e := gamestate.Entry{Seq: uint64(i + 1), At: int64(i + 1), Player: "p1", CSeq: uint64(i + 1), Kind: k, Target: "baron"}
		assert.NotContains(t, string(g.Apply(&e, nil)), gamestate.ReasonUnknown, "%s is a kind of %s", k, spec.Name)
	}
	for _, k := range []string{"bogus", "Attack", "attack,bogus"} {
		code, _, errOut := gs("replay", "--file", "x", "--kind", k)
		assert.Equal(t, 2, code, "--kind %s: %s", k, errOut)
		assert.Contains(t, errOut, "not a kind of baron entries (attack, smite, join, leave, respawn)", k)
		assert.NotContains(t, errOut, `"attack"`, "a known kind is not reported")
	}

	var frames strings.Builder
	for i, p := range []string{"p1", "p2"} {
		fmt.Fprintf(&frames, `{"type":"event","seq":%d,"at":%d,"player":"","cseq":0,"kind":"join","target":"%s","result":{"ok":true,"team":"%s"}}`+"\n",
			i+1, 1000+i, p, []string{"blue", "red"}[i])
	}
	path := writeFile(t, "joins.jsonl", frames.String())
	for _, args := range [][]string{{"--player", "nobody"}, {"--from", "100"}, {"--kind", "smite", "--quiet"}} {
		code, out, errOut := gs(append([]string{"replay", "--file", path}, args...)...)
		require.Equal(t, 0, code, errOut)
		assert.Contains(t, out, "file "+path+": no entry matched "+strings.Join(args[:2], " "), "%q", args)
	}
	code, out, errOut := gs("replay", "--file", path, "--player", "p2", "--quiet")
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, out, "no entry matched", "p2 joined")
}

// export --out replaces the file only with a whole export, and prints the
// hash Redis recorded with the last entry and the command that checks the
// file against it: that hash is the one a replay of the file computes, so
// a truncated file fails the check.
func TestExportOut(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	playRoom(t, rs.URL(), "r1", fill{players: 2, attacks: 20})()
	meta, recs := logMeta(t, rs.URL(), "r1")
	hash := fmt.Sprintf("%016x", meta.LastHash)

	code, exported, errOut := gs("export", "--redis", rs.URL(), "--room", "r1")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, framesOf(recs), exported, "stdout holds the frames and nothing else")
	assert.Contains(t, errOut, fmt.Sprintf("state hash %s recorded with seq %d", hash, meta.LastSeq))
	assert.Contains(t, errOut, "\n  gameserver replay --file FILE --hash "+hash+"\n")

	dir := filepath.Join(t.TempDir(), "exports dir")
	require.NoError(t, os.Mkdir(dir, 0o755))
	path := filepath.Join(dir, "r1.jsonl")
	code, out, errOut := gs("export", "--redis", rs.URL(), "--room", "r1", "--out", path)
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, out)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, framesOf(recs), string(data))
	assert.Contains(t, errOut, fmt.Sprintf("%d entries of room r1, seq 1..%d to %s\n", len(recs), meta.LastSeq, path))
	m := regexp.MustCompile(`(?m)^  gameserver (replay --file '([^']+)' --hash ([0-9a-f]{16}))$`).FindStringSubmatch(errOut)
	require.NotNil(t, m, "the command to verify the file, the path quoted for a shell:\n%s", errOut)
	assert.Equal(t, path, m[2])
	assert.Equal(t, hash, m[3], "the hash recorded in Redis")

	code, out, errOut = gs("replay", "--file", path, "--hash", hash)
	require.Equal(t, 0, code, "the printed command verifies the file: %s", errOut)
	assert.Contains(t, out, "final state hash "+hash+" equals --hash")
	code, out, _ = gs("replay", "--file", path, "--quiet")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "final state hash "+hash+" (a file records no hash", "the hash a replay of the file computes")

	lines := strings.SplitAfter(string(data), "\n")
	truncated := writeFile(t, "truncated.jsonl", strings.Join(lines[:len(lines)-3], ""))
	code, _, errOut = gs("replay", "--file", truncated, "--hash", hash)
	assert.Equal(t, 1, code, "a truncated export verifies entry by entry, but not against --hash")
	assert.Contains(t, errOut, "recorded "+hash)

	// An export that fails after writing entries (the meta names a seq the
	// stream lacks) leaves the old file as it was, and no temporary file.
	require.NoError(t, rawRedis(t, rs.URL()).HSet(context.Background(), "lh:{r1}:meta", "seq", meta.LastSeq+1).Err())
	require.NoError(t, os.WriteFile(path, []byte("old\n"), 0o644))
	code, _, errOut = gs("export", "--redis", rs.URL(), "--room", "r1", "--out", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, fmt.Sprintf("the log ends before seq %d", meta.LastSeq+1))
	assert.NotContains(t, errOut, "replay --file")
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "old\n", string(data), "a failed export leaves --out's file alone")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left")

	code, _, errOut = gs("export", "--redis", rs.URL(), "--room", "r1", "--out", filepath.Join(dir, "missing", "r1.jsonl"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "--out: ")
}

// With Redis unreachable an ops command prints its one error, not
// go-redis's log line for every failed dial. go-redis logs on the
// process's stderr, not the command's, so the commands run in a child
// process (this test binary, running this test in child mode).
func TestOpsRedisUnreachable(t *testing.T) {
	if args := os.Getenv("LASTHIT_OPS_CHILD"); args != "" {
		os.Exit(run(strings.Fields(args), os.Stdout, os.Stderr, envOf(nil)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	url := "redis://" + addr + "/0"

	secret := "redis://:hunter2@" + addr + "/0" // a password is never printed
	cmds := []string{
		"rooms --redis " + url,
		"export --redis " + url + " --room r1",
		"replay --redis " + url + " --room r1",
		"rooms --redis " + secret,
	}
	shown := []string{url, url, url, "redis://:xxxxx@" + addr + "/0"}
	type result struct {
		code           int
		stdout, stderr string
	}
	results := make([]result, len(cmds))
	var wg sync.WaitGroup
	for i, args := range cmds {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestOpsRedisUnreachable$")
			cmd.Env = append(os.Environ(), "LASTHIT_OPS_CHILD="+args)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				results[i].code = exit.ExitCode()
			} else if err != nil {
				results[i].code = -1
			}
			results[i].stdout, results[i].stderr = stdout.String(), stderr.String()
		})
	}
	wg.Wait()
	for i, r := range results {
		name := strings.Fields(cmds[i])[0]
		assert.Equal(t, 1, r.code, "%s: %s", name, r.stderr)
		assert.Empty(t, r.stdout, name)
		// How the last dial failed depends on the machine (refused, or a
		// timeout on a loaded one); the line around it does not.
		assert.NotContains(t, r.stderr, "hunter2")
		assert.Regexp(t, `^gameserver `+name+`: --redis `+regexp.QuoteMeta(shown[i])+`: queue: ping: gave up after \d+ attempts \(context deadline exceeded\): [^\n]*`+regexp.QuoteMeta(addr)+`[^\n]*\n$`,
			r.stderr, "%s: the one error, and the room-less call reads well", name)
	}
}

// The progress bar is drawn only on a terminal, and only for long work.
func TestOpsProgressOnlyOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	assert.Nil(t, newProgress(&buf, false, 1000, 10, false, "replay r1"), "not a terminal: no bar")
	assert.Nil(t, newProgress(&buf, true, 5, 10, false, "replay r1"), "short work: no bar")
	bar := newProgress(&buf, true, 1000, 10, false, "replay r1")
	require.NotNil(t, bar, "a terminal gets a bar")
	waitFrame(t, &buf, func() { require.NoError(t, bar.Add(1)) })
	assert.Contains(t, buf.String(), "replay r1")

	// What run's commands see: a buffer, a file, a pipe are no terminals.
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	defer f.Close()
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pr.Close()
	defer pw.Close()
	assert.Equal(t, terminals{}, terminalsOf(&buf, f))
	assert.Equal(t, terminals{}, terminalsOf(pw, io.Discard))
}

// The bar's first frame comes a redraw interval after it starts, so the
// rate it shows is over that long at least, never over the microseconds
// a first page or a first buffered read takes.
func TestOpsProgressFirstFrameRate(t *testing.T) {
	// A bytes bar redraws only when its percentage changes: each step is 1%.
	const step = 10 << 20
	units := map[string]float64{"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
	for _, bytesBar := range []bool{false, true} {
		var buf bytes.Buffer
		bar := newProgress(&buf, true, 100*step, 1, bytesBar, "replay")
		require.NotNil(t, bar)
		require.NoError(t, bar.Add(step))
		assert.Empty(t, buf.String(), "bytes %v: no frame at the first Add", bytesBar)
		n := waitFrame(t, &buf, func() { require.NoError(t, bar.Add(step)) })
		limit := float64((1+n)*step) / progressEvery.Seconds()
		frame := buf.String()
		var rate float64
		if bytesBar {
			m := regexp.MustCompile(`([\d.]+) ?(B|kB|MB|GB|TB)/s`).FindStringSubmatch(frame)
			require.NotNil(t, m, "%q", frame)
			v, err := strconv.ParseFloat(m[1], 64)
			require.NoError(t, err)
			rate = v * units[m[2]]
		} else {
			m := regexp.MustCompile(`(\d+) entries/s`).FindStringSubmatch(frame)
			require.NotNil(t, m, "%q", frame)
			v, err := strconv.ParseFloat(m[1], 64)
			require.NoError(t, err)
			rate = v
		}
		assert.Positive(t, rate, "%q", frame)
		assert.LessOrEqual(t, rate, limit*1.01, "bytes %v: %q", bytesBar, frame) // the bytes rate is rounded
	}
}

// waitFrame calls add every few milliseconds until the bar draws on buf,
// and returns how many times it called it.
func waitFrame(t *testing.T, buf *bytes.Buffer, add func()) int {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	n := 0
	for buf.Len() == 0 {
		select {
		case <-tick.C:
			add()
			n++
		case <-deadline:
			t.Fatal("the bar drew no frame")
		}
	}
	return n
}

// replay --redis compares the final state with the hash the room's meta
// records: a changed hash fails the replay, naming both.
func TestReplayRedisFinalHash(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	playRoom(t, rs.URL(), "r1", fill{players: 2, attacks: 10})()
	meta, _ := logMeta(t, rs.URL(), "r1")
	bad := meta.LastHash ^ 1
	require.NoError(t, rawRedis(t, rs.URL()).HSet(context.Background(), "lh:{r1}:meta", "hash", strconv.FormatUint(bad, 10)).Err())

	code, out, errOut := gs("replay", "--redis", rs.URL(), "--room", "r1")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, fmt.Sprintf("state after seq %d hashes to %016x, recorded %016x", meta.LastSeq, meta.LastHash, bad))
	assert.NotContains(t, out, "verified:")
}

// A file with no entries, and one whose room time goes back, fail.
func TestReplayFileGuards(t *testing.T) {
	code, out, errOut := gs("replay", "--file", writeFile(t, "empty.jsonl", ""))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "empty.jsonl: no entries")
	assert.NotContains(t, out, "verified:")

	code, _, errOut = gs("replay", "--file", writeFile(t, "blank.jsonl", "\n\r\n\n  \t\n"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "blank.jsonl: no entries")

	join := `{"type":"event","seq":%d,"at":%d,"player":"","cseq":0,"kind":"join","target":"%s","result":{"ok":true,"team":"%s"}}` + "\n"
	for _, at := range []int64{999, 1000} {
		file := fmt.Sprintf(join, 1, 1000, "p1", "blue") + fmt.Sprintf(join, 2, at, "p2", "red")
		code, _, errOut = gs("replay", "--file", writeFile(t, "back.jsonl", file))
		assert.Equal(t, 1, code, "at %d after 1000", at)
		assert.Contains(t, errOut, fmt.Sprintf("seq 2 has at %d, not after 1000", at))
		assert.Contains(t, errOut, "back.jsonl:2:")
	}
	code, _, errOut = gs("replay", "--file", writeFile(t, "ok.jsonl", fmt.Sprintf(join, 1, 1000, "p1", "blue")+"   \n"+fmt.Sprintf(join, 2, 1001, "p2", "red")))
	assert.Equal(t, 0, code, errOut)

	// A mismatch shows at most a KiB of each result.
	huge := `{"type":"event","seq":1,"at":1000,"player":"","cseq":0,"kind":"join","target":"p1","result":{"ok":true,"team":"blue","x":"` + strings.Repeat("y", 100_000) + `"}}` + "\n"
	code, _, errOut = gs("replay", "--file", writeFile(t, "huge.jsonl", huge))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "MISMATCH at seq 1")
	assert.Contains(t, errOut, "bytes in all)")
	assert.Less(t, len(errOut), 4096)
}

// A name the server would never write (a log holds whatever anyone wrote
// to it) is printed quoted, so a newline or a terminal escape in it cannot
// print lines of its own, such as a forged verdict.
func TestReplayQuotesOddNames(t *testing.T) {
	join := `{"type":"event","seq":%d,"at":%d,"player":"","cseq":0,"kind":"join","target":"%s","result":{"ok":true,"team":"%s"}}` + "\n"
	forged := `x\nverdict seq 99: mallory took baron (attack)\u001b[2J` // JSON escapes
	file := fmt.Sprintf(join, 1, 1000, "p1", "blue") + fmt.Sprintf(join, 2, 2000, forged, "red")
	code, out, errOut := gs("replay", "--file", writeFile(t, "odd.jsonl", file))
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, out, "\nverdict seq 99", "no line of the name's own")
	assert.NotContains(t, out, "\x1b")
	assert.Contains(t, out, `"x\nverdict seq 99: mallory took baron (attack)\x1b[2J"`)
	assert.Regexp(t, `(?m)^1 .* join +p1 `, out, "a name the server writes is printed as it is")
}

// --player names a player's own actions and its joins and leaves, not
// other server-made entries that happen to target the same word (every
// respawn targets baron, which is also a valid player name).
func TestReplayPlayerFilter(t *testing.T) {
	f := entryFilter{player: "baron"}
	for _, c := range []struct {
		ev   sequencer.Event
		want bool
	}{
		{sequencer.Event{Kind: "respawn", Target: "baron"}, false},
		{sequencer.Event{Kind: "join", Target: "baron"}, true},
		{sequencer.Event{Kind: "leave", Target: "baron"}, true},
		{sequencer.Event{Player: "baron", Kind: "attack", Target: "baron"}, true},
		{sequencer.Event{Player: "p1", Kind: "attack", Target: "baron"}, false},
		{sequencer.Event{Kind: "join", Target: "p1"}, false},
	} {
		assert.Equal(t, c.want, f.about(&c.ev), "%+v", c.ev)
	}
}

// A kill whose contenders after it are cut off by a failure is still
// explained, with what was seen, and says it was cut off.
func TestReplayCutVerdict(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	playRoom(t, rs.URL(), "r1", fill{players: 3, attacks: 30})()
	_, recs := logMeta(t, rs.URL(), "r1")
	kill := -1
	for i, r := range recs[:len(recs)-1] {
		if bytes.Contains(r.Event, []byte(`"last_hit":true`)) {
			kill = i
			break
		}
	}
	require.GreaterOrEqual(t, kill, 0, "a kill before the last entry")
	lines := strings.Split(strings.TrimSuffix(framesOf(recs), "\n"), "\n")
	next, err := sequencer.DecodeEvent([]byte(lines[kill+1]))
	require.NoError(t, err)
	lines[kill+1] = strings.Replace(lines[kill+1], `"result":`+string(next.Result), `"result":{"tampered":true}`, 1)
	require.Contains(t, lines[kill+1], "tampered")
	path := writeFile(t, "cut.jsonl", strings.Join(lines, "\n")+"\n")

	code, out, errOut := gs("replay", "--file", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, fmt.Sprintf("MISMATCH at seq %d", recs[kill].Seq+1))
	blocks := verdictBlocks(out)
	require.NotEmpty(t, blocks, out)
	last := blocks[len(blocks)-1]
	assert.True(t, strings.HasPrefix(last, fmt.Sprintf("verdict seq %d: ", recs[kill].Seq)), last)
	assert.Contains(t, last, "\n  winner  ")
	assert.True(t, strings.HasSuffix(last, fmt.Sprintf("  after   (cut off: the replay stopped after seq %d)\n", recs[kill].Seq)), last)
	assert.NotContains(t, out, "verified:")
}
