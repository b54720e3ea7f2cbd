package main

// The replay's output: the timeline (one line per entry), the verdicts of
// Baron kills, and the filters that choose what is printed. Nothing here
// takes part in verification; the filters only choose lines.

import (
	"bufio"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/sequencer"
)

// entryFilter chooses the timeline lines and verdicts printed.
type entryFilter struct {
	from, to uint64 // to 0: no upper bound
	player   string
	kinds    []string
}

// active reports whether any filter was given.
func (f *entryFilter) active() bool {
	return f.from != 0 || f.to != 0 || f.player != "" || len(f.kinds) > 0
}

// String spells the filters as the flags that set them.
func (f *entryFilter) String() string {
	var flags []string
	if f.from != 0 {
		flags = append(flags, "--from "+strconv.FormatUint(f.from, 10))
	}
	if f.to != 0 {
		flags = append(flags, "--to "+strconv.FormatUint(f.to, 10))
	}
	if f.player != "" {
		flags = append(flags, "--player "+f.player)
	}
	if len(f.kinds) > 0 {
		flags = append(flags, "--kind "+strings.Join(f.kinds, ","))
	}
	return strings.Join(flags, " ")
}

func (f *entryFilter) seq(s uint64) bool { return s >= f.from && (f.to == 0 || s <= f.to) }

// about reports whether ev concerns f.player: its own actions, and the
// server-made entries (join, leave) that name it as their target. Other
// server-made entries name no player (a respawn's target is Baron, also a
// valid player name).
func (f *entryFilter) about(ev *sequencer.Event) bool {
	if f.player == "" || ev.Player == f.player {
		return true
	}
	return ev.Player == "" && (ev.Kind == gamestate.KindJoin || ev.Kind == gamestate.KindLeave) && ev.Target == f.player
}

func (f *entryFilter) kind(ev *sequencer.Event) bool {
	return len(f.kinds) == 0 || slices.Contains(f.kinds, ev.Kind)
}

func (f *entryFilter) entry(ev *sequencer.Event) bool {
	return f.seq(ev.Seq) && f.about(ev) && f.kind(ev)
}

// verdict: a verdict is printed when its winning seq is within --from and
// --to, and --player and --kind each match one of its entries (the winner
// or a contender), so --player p1 also shows the kills p1 lost.
func (f *entryFilter) verdict(v *sequencer.Verdict) bool {
	anyOf := func(match func(*sequencer.Event) bool) bool {
		if match(&v.Winner.Event) {
			return true
		}
		for _, cs := range [][]sequencer.Contender{v.Before, v.After} {
			for i := range cs {
				if match(&cs[i].Event) {
					return true
				}
			}
		}
		return false
	}
	return f.seq(v.Winner.Seq) && anyOf(f.about) && anyOf(f.kind)
}

// Timeline columns end at these offsets (a longer value pushes the rest of
// its line right, by one space at least).
const (
	colSeq    = 9
	colAt     = colSeq + 31 // 2006-01-02T15:04:05.123456789Z
	colPlayer = colAt + 13
	colCSeq   = colPlayer + 7
	colKind   = colCSeq + 9
	colTarget = colKind + 11
)

// printer writes the timeline and the verdicts. It formats only what the
// filter lets through: a replay of millions of entries with a narrow
// filter costs no formatting for the rest.
type printer struct {
	w       *bufio.Writer
	filter  entryFilter
	quiet   bool   // verdicts and summary only
	matched uint64 // entries the filter let through, printed or not (--quiet)
	at      atFormat
	buf     []byte
}

func (p *printer) header() {
	if p.quiet {
		return
	}
	b := append(p.buf[:0], "seq"...)
	b = append(padTo(b, colSeq), "at (UTC)"...)
	b = append(padTo(b, colAt), "player"...)
	b = append(padTo(b, colPlayer), "cseq"...)
	b = append(padTo(b, colCSeq), "kind"...)
	b = append(padTo(b, colKind), "target"...)
	b = append(padTo(b, colTarget), "result"...)
	p.buf = append(b, '\n')
	p.w.Write(p.buf)
}

// entry prints ev's timeline line if the filter lets it through.
func (p *printer) entry(ev *sequencer.Event) {
	if !p.filter.entry(ev) {
		return
	}
	p.matched++
	if p.quiet {
		return
	}
	b := strconv.AppendUint(p.buf[:0], ev.Seq, 10)
	b = p.at.append(padTo(b, colSeq), ev.At)
	b = appendOrDash(padTo(b, colAt), ev.Player)
	b = padTo(b, colPlayer)
	if ev.CSeq == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendUint(b, ev.CSeq, 10)
	}
	b = appendName(padTo(b, colCSeq), ev.Kind)
	b = appendOrDash(padTo(b, colKind), ev.Target)
	b = append(padTo(b, colTarget), ev.Result...)
	p.buf = append(b, '\n')
	p.w.Write(p.buf)
}

// verdict prints one decided last hit: a head line naming the winner, then
// the contenders in seq order with the winner among them.
//
//	verdict seq 31: p1 took baron (attack) at 2026-11-22T03:48:50.265742925Z, stamp 31
//	  before  seq 29      p2            attack   -155.421µs    stamp 29          {"damage":307,"baron_hp":461,"last_hit":false}
//	  before  seq 30      p3            attack   -123.785µs    stamp 30          {"damage":421,"baron_hp":40,"last_hit":false}
//	  winner  seq 31      p1            attack   +0s           stamp 31          {"damage":40,"baron_hp":0,"last_hit":true}
//	  after   seq 32      p3            attack   +139.537µs    stamp 32          {"ok":false,"reason":"target_dead"}
func (p *printer) verdict(v *sequencer.Verdict) {
	if p.filter.verdict(v) {
		p.w.Write(p.appendVerdict(v))
	}
}

// cutVerdict prints a verdict whose contenders after it were cut off by a
// replay that stopped after seq last, ending it with a line that says so.
func (p *printer) cutVerdict(v *sequencer.Verdict, last uint64) {
	if !p.filter.verdict(v) {
		return
	}
	b := append(p.appendVerdict(v), "  after   (cut off: the replay stopped after seq "...)
	b = strconv.AppendUint(b, last, 10)
	p.buf = append(b, ")\n"...)
	p.w.Write(p.buf)
}

// appendVerdict formats v into p.buf and returns it.
func (p *printer) appendVerdict(v *sequencer.Verdict) []byte {
	w := &v.Winner
	b := append(p.buf[:0], "verdict seq "...)
	b = strconv.AppendUint(b, w.Seq, 10)
	b = append(b, ": "...)
	b = appendName(b, w.Player)
	b = append(b, " took "...)
	b = appendName(b, w.Target)
	b = append(b, " ("...)
	b = appendName(b, w.Kind)
	b = append(b, ") at "...)
	b = p.at.append(b, w.At)
	b = append(b, ", stamp "...)
	b = appendStamp(b, w.Stamp)
	b = append(b, '\n')
	for i := range v.Before {
		b = appendContender(b, "before", &v.Before[i])
	}
	b = appendContender(b, "winner", w)
	for i := range v.After {
		b = appendContender(b, "after", &v.After[i])
	}
	p.buf = b
	return b
}

func appendContender(b []byte, role string, c *sequencer.Contender) []byte {
	s := len(b)
	b = append(b, "  "...)
	b = append(b, role...)
	b = append(padAt(b, s, 10), "seq "...)
	b = strconv.AppendUint(b, c.Seq, 10)
	b = appendName(padAt(b, s, 22), c.Player)
	b = appendName(padAt(b, s, 36), c.Kind)
	b = padAt(b, s, 45)
	if c.DeltaNs >= 0 {
		b = append(b, '+')
	}
	b = append(b, time.Duration(c.DeltaNs).String()...)
	b = append(padAt(b, s, 59), "stamp "...)
	b = appendStamp(b, c.Stamp)
	b = append(padAt(b, s, 77), c.Result...)
	return append(b, '\n')
}

// appendStamp writes a stamp, or - when it is unknown (0: a log read from
// a file carries none).
func appendStamp(b []byte, stamp uint64) []byte {
	if stamp == 0 {
		return append(b, '-')
	}
	return strconv.AppendUint(b, stamp, 10)
}

func appendOrDash(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendName(b, s)
}

// appendName appends a player, target or kind as it is when it reads as
// the server writes names ([A-Za-z0-9_.-]), else quoted, escapes and all:
// a log holds what anyone could write to it, and a name with a newline or
// a terminal escape must not print lines of its own (a forged verdict).
func appendName(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return strconv.AppendQuoteToASCII(b, s)
		}
	}
	return append(b, s...)
}

// padTo appends one space, then more until b is n columns wide.
func padTo(b []byte, n int) []byte { return padAt(b, 0, n) }

// padAt appends one space, then more until the line starting at b[start]
// is n columns wide. A column is a rune, not a byte: a duration's µ is two
// bytes (a file's player ids, unchecked, could hold more).
func padAt(b []byte, start, n int) []byte {
	b = append(b, ' ')
	for pad := n - columns(b[start:]); pad > 0; pad -= len(spaces) {
		b = append(b, spaces[:min(pad, len(spaces))]...)
	}
	return b
}

// columns is b's width in runes. Lines are mostly ASCII, so it checks
// eight bytes at a time for one that is not before counting runes: a
// timeline line is padded six times, for every entry replayed.
func columns(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&0x8080808080808080 != 0 {
			return i + utf8.RuneCount(b[i:])
		}
	}
	return i + utf8.RuneCount(b[i:])
}

const spaces = "                                                                "

// atFormat writes room time (ns since the Unix epoch) as RFC 3339 UTC with
// nanoseconds, as time.Format with "2006-01-02T15:04:05.000000000Z" would,
// but formats the date and time of day only when the second changes:
// consecutive entries mostly share it.
type atFormat struct {
	sec  int64
	head []byte // "2006-01-02T15:04:05." of sec
}

func (f *atFormat) append(b []byte, at int64) []byte {
	sec, frac := at/int64(time.Second), at%int64(time.Second)
	if frac < 0 {
		sec, frac = sec-1, frac+int64(time.Second)
	}
	if f.head == nil || sec != f.sec {
		f.sec = sec
		f.head = time.Unix(sec, 0).UTC().AppendFormat(f.head[:0], "2006-01-02T15:04:05.")
	}
	b = append(b, f.head...)
	var digits [9]byte
	for i := 8; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	b = append(b, digits[:]...)
	return append(b, 'Z')
}
