package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/sequencer"
)

func TestAtFormat(t *testing.T) {
	var f atFormat
	base := time.Date(2025, 6, 1, 23, 59, 59, 999_999_998, time.UTC).UnixNano()
	for _, at := range []int64{
		base, base + 1, base + 2, base + 3, // across midnight
		base + int64(time.Hour), 0, 1, -1, -int64(time.Second), -int64(time.Second) - 1,
		time.Date(2024, 2, 29, 12, 0, 0, 5, time.UTC).UnixNano(),
	} {
		want := time.Unix(0, at).UTC().Format("2006-01-02T15:04:05.000000000Z")
		assert.Equal(t, want, string(f.append(nil, at)), "at %d", at)
	}
}

func TestPadAt(t *testing.T) {
	assert.Equal(t, "ab   |", string(padTo([]byte("ab"), 5))+"|")
	assert.Equal(t, "abcdef |", string(padTo([]byte("abcdef"), 5))+"|", "a long value keeps one space")
	assert.Len(t, padTo(nil, 200), 200)
	assert.Equal(t, "x\n  y  |", string(padAt([]byte("x\n  y"), 2, 5))+"|", "offsets count from the line's start")
	assert.Equal(t, "1µs  |", string(padTo([]byte("1µs"), 5))+"|", "µ is one column, two bytes")
	assert.Equal(t, "ab  é12345678µ |", string(padAt([]byte("ab  é12345678µ"), 4, 11))+"|", "runes past the first eight bytes count too")
}

// The contender lines of a verdict keep their columns whatever unit their
// time delta is printed in (µs is one column wider in bytes than ns or s).
func TestTimelineVerdictColumnsAlign(t *testing.T) {
	base := time.Date(2026, 11, 22, 3, 48, 50, 0, time.UTC).UnixNano()
	c := func(seq uint64, player string, delta time.Duration, result string) sequencer.Contender {
		return sequencer.Contender{
			Event:   sequencer.Event{Seq: seq, At: base + int64(delta), Player: player, CSeq: seq, Kind: "attack", Target: "baron", Result: []byte(result)},
			Stamp:   seq + 100,
			DeltaNs: int64(delta),
		}
	}
	v := sequencer.Verdict{
		Winner: c(31, "p1", 0, `{"damage":40,"baron_hp":0,"last_hit":true}`),
		Before: []sequencer.Contender{
			c(29, "p2", -2*time.Second, `{"damage":307,"baron_hp":461,"last_hit":false}`),
			c(30, "p3", -155421*time.Nanosecond, `{"damage":421,"baron_hp":40,"last_hit":false}`),
		},
		After: []sequencer.Contender{
			c(32, "p3", 42*time.Nanosecond, `{"ok":false,"reason":"target_dead"}`),
			c(33, "p2", 139537*time.Nanosecond, `{"ok":false,"reason":"target_dead"}`),
			c(34, "p4", 5*time.Millisecond, `{"ok":false,"reason":"target_dead"}`),
		},
	}
	var out bytes.Buffer
	p := printer{w: bufio.NewWriter(&out)}
	p.verdict(&v)
	require.NoError(t, p.w.Flush())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 7, out.String())
	column := func(line, s string) int {
		i := strings.Index(line, s)
		require.GreaterOrEqual(t, i, 0, "%q in %q", s, line)
		return utf8.RuneCountInString(line[:i])
	}
	for _, l := range lines[1:] {
		assert.Equal(t, 10, column(l, "seq "), l)
		assert.Equal(t, 36, column(l, "attack"), l)
		delta := strings.IndexAny(l, "+-") // the first sign on the line is the delta's
		assert.Equal(t, 45, utf8.RuneCountInString(l[:delta]), l)
		assert.Equal(t, 59, column(l, "stamp "), l)
		assert.Equal(t, 77, column(l, "{"), l)
	}
	assert.Contains(t, lines[2], "-155.421µs")
}
