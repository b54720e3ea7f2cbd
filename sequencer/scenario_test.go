package sequencer

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata scenarios")

// TestScenarios runs testdata/*.txt. Each block is one or more commands,
// a line "----", and the expected output up to a blank line:
//
//	options maxhp=N respawn=D cooldown=D  (first block only)
//	join P | leave P                      member joins or leaves
//	act P KIND [target=T] [cseq=N]        push (all act lines of a block are pushed before the room runs)
//	tick D                                advance room time by D, run due timers
//	crash                                 halt the room loop and rebuild the room from its log
//	restart                               stop the room gracefully and rebuild it
//	state                                 print the players' view
//
// The output lists the new log entries, the answers each player got, and
// how many events each member received; the runner checks that every
// member received exactly the log's bytes.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScenario(t, file)
		})
	}
}

type block struct {
	cmds []string
	want []string
}

func parseScenario(t *testing.T, data string) []block {
	var blocks []block
	lines := strings.Split(data, "\n")
	for i := 0; i < len(lines); {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			i++
			continue
		}
		var b block
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != "----"; i++ {
			if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "#") {
				b.cmds = append(b.cmds, l)
			}
		}
		require.Less(t, i, len(lines), "block %v has no ---- line", b.cmds)
		i++
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			b.want = append(b.want, lines[i])
		}
		blocks = append(blocks, b)
	}
	return blocks
}

type scenario struct {
	t       *testing.T
	clock   *manualClock
	log     *queue.MemoryLog
	reg     *Registry
	room    *Room
	opts    gamestate.BaronOptions
	subs    map[string]*recorder
	seen    map[string]int // events of each member already counted
	replies map[string]*replies
	cseq    map[string]uint64
	printed uint64 // last log seq printed
}

func runScenario(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	blocks := parseScenario(t, string(data))
	s := &scenario{
		t: t, clock: newManualClock(1_700_000_000_000_000_000), log: queue.NewMemoryLog(queue.MemoryOptions{}),
		subs: map[string]*recorder{}, seen: map[string]int{}, replies: map[string]*replies{}, cseq: map[string]uint64{},
	}
	var out bytes.Buffer
	for i, b := range blocks {
		if i == 0 && strings.HasPrefix(b.cmds[0], "options") {
			s.options(b.cmds[0])
		}
		if s.reg == nil {
			s.start()
		}
		got := s.run(b.cmds)
		for _, c := range b.cmds {
			fmt.Fprintln(&out, c)
		}
		fmt.Fprintln(&out, "----")
		for _, l := range got {
			fmt.Fprintln(&out, l)
		}
		fmt.Fprintln(&out)
		if !*rewrite {
			require.Equal(t, strings.Join(b.want, "\n"), strings.Join(got, "\n"), "block %d: %v", i+1, b.cmds)
		}
	}
	if *rewrite {
		require.NoError(t, os.WriteFile(file, append(bytes.TrimRight(out.Bytes(), "\n"), '\n'), 0o644))
	}
}

func (s *scenario) options(line string) {
	for _, f := range strings.Fields(line)[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "maxhp":
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(s.t, err)
			s.opts.MaxHP = n
		case "respawn":
			d, err := time.ParseDuration(v)
			require.NoError(s.t, err)
			s.opts.RespawnDelay = d
		case "cooldown":
			d, err := time.ParseDuration(v)
			require.NoError(s.t, err)
			s.opts.SmiteCooldown = d
		default:
			s.t.Fatalf("unknown option %q", k)
		}
	}
}

func (s *scenario) start() {
	s.reg = newTestRegistry(s.t, Options{Game: gamestate.BaronWith(s.opts), Log: s.log, Clock: s.clock.now, SnapshotEvery: 10})
	s.room = openTestRoom(s.t, s.reg, "scenario")
}

func (s *scenario) run(cmds []string) []string {
	var out []string
	ctx := context.Background()
	for _, c := range cmds {
		f := strings.Fields(c)
		switch f[0] {
		case "options":
		case "join":
			sub := &recorder{}
			w, err := s.room.Join(ctx, f[1], sub)
			require.NoError(s.t, err)
			s.subs[f[1]], s.seen[f[1]] = sub, 0
			out = append(out, fmt.Sprintf("welcome %s seq=%d epoch=%d", f[1], w.Seq, w.Epoch))
		case "leave":
			require.NoError(s.t, s.room.Leave(ctx, f[1], s.subs[f[1]]))
			delete(s.subs, f[1])
		case "act":
			out = append(out, s.act(f)...)
		case "tick":
			d, err := time.ParseDuration(f[1])
			require.NoError(s.t, err)
			s.clock.advance(d)
		case "crash", "restart":
			if f[0] == "crash" {
				s.room.halt(nil)
			}
			require.NoError(s.t, s.reg.Stop(ctx, s.room.Name()))
			s.room = openTestRoom(s.t, s.reg, "scenario")
			info, err := s.room.Info(ctx)
			require.NoError(s.t, err)
			out = append(out, fmt.Sprintf("rebuilt seq=%d epoch=%d", info.Seq, info.Epoch))
			s.subs, s.seen = map[string]*recorder{}, map[string]int{}
		case "state":
			// Printed after the room has run, below.
		default:
			s.t.Fatalf("unknown command %q", c)
		}
	}
	flush(s.t, s.room)
	out = append(out, s.newEntries()...)
	out = append(out, s.answers()...)
	out = append(out, s.deliveries()...)
	if cmds[len(cmds)-1] == "state" {
		out = append(out, "state "+string(s.stateView()))
	}
	return out
}

func (s *scenario) act(f []string) []string {
	player, kind := f[1], f[2]
	a := Action{Player: player, Kind: kind, Target: gamestate.TargetBaron}
	s.cseq[player]++
	a.CSeq = s.cseq[player]
	for _, kv := range f[3:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "target":
			a.Target = v
		case "cseq":
			n, err := strconv.ParseUint(v, 10, 64)
			require.NoError(s.t, err)
			a.CSeq = n
		}
	}
	rp := s.replies[player]
	if rp == nil {
		rp = &replies{}
		s.replies[player] = rp
	}
	a.Reply = rp
	if err := s.room.Push(a); err != nil {
		return []string{fmt.Sprintf("push %s cseq=%d: %s (%v)", player, a.CSeq, CodeOf(err), err)}
	}
	return nil
}

func (s *scenario) newEntries() []string {
	var out []string
	for _, rec := range readLog(s.t, s.log, "scenario") {
		if rec.Seq > s.printed {
			out = append(out, "log "+string(rec.Event))
			s.printed = rec.Seq
		}
	}
	return out
}

func (s *scenario) answers() []string {
	var out []string
	for _, p := range sortedKeys(s.replies) {
		acks, rejects := s.replies[p].take()
		for _, a := range acks {
			line := fmt.Sprintf("ack %s cseq=%d seq=%d", p, a.CSeq, a.Seq)
			if a.Dup {
				line += " dup"
			}
			out = append(out, line)
		}
		for _, x := range rejects {
			out = append(out, fmt.Sprintf("reject %s cseq=%d %s: %s", p, x.CSeq, x.Code, x.Message))
		}
	}
	return out
}

// deliveries checks that each member got exactly the log's bytes since it
// joined, and reports how many new events each received.
func (s *scenario) deliveries() []string {
	logged := readLog(s.t, s.log, "scenario")
	bySeq := map[uint64][]byte{}
	for _, r := range logged {
		bySeq[r.Seq] = r.Event
	}
	var counts []string
	for _, p := range sortedKeys(s.subs) {
		evs, dropped := s.subs[p].snapshot()
		require.NoError(s.t, dropped, "member %s dropped", p)
		for _, ev := range evs[s.seen[p]:] {
			e := decode(s.t, ev)
			require.Equal(s.t, string(bySeq[e.Seq]), string(ev), "member %s got seq %d unlike the log", p, e.Seq)
		}
		for i := 1; i < len(evs); i++ {
			require.Equal(s.t, decode(s.t, evs[i-1]).Seq+1, decode(s.t, evs[i]).Seq, "member %s: gap", p)
		}
		counts = append(counts, fmt.Sprintf("%s=%d", p, len(evs)-s.seen[p]))
		s.seen[p] = len(evs)
	}
	if len(counts) == 0 {
		return nil
	}
	return []string{"delivered " + strings.Join(counts, " ")}
}

func (s *scenario) stateView() []byte {
	// The view a client would get, from a replay of the whole log.
	g := gamestate.BaronWith(s.opts).New()
	rp := NewReplayer(g)
	for _, rec := range readLog(s.t, s.log, "scenario") {
		_, err := rp.Step(rec.Event)
		require.NoError(s.t, err)
	}
	return g.View()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
