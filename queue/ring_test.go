package queue

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The ring keeps records in order across wrap-around, drops and growth.
func TestRecordRing(t *testing.T) {
	var r recordRing
	next, oldest := uint64(1), uint64(1)
	batch := func(n int) []Record {
		out := make([]Record, n)
		for i := range out {
			out[i] = Record{Seq: next, Event: []byte{byte(next)}}
			next++
		}
		return out
	}
	check := func() {
		t.Helper()
		require.Equal(t, int(next-oldest), r.len())
		out := make([]Record, r.len())
		r.copyOut(out, 0, r.len())
		for i, rec := range out {
			require.Equal(t, oldest+uint64(i), rec.Seq)
			require.Equal(t, rec.Seq, r.at(i).Seq)
		}
	}
	for round := 0; round < 200; round++ {
		r.push(batch(1 + round%37))
		check()
		if n := r.len() / 2; round%3 == 0 && n > 0 {
			r.drop(n)
			oldest += uint64(n)
			check()
		}
	}
	require.LessOrEqual(t, len(r.buf), 1024, "dropping keeps the ring from growing without bound")
	mid := make([]Record, 5)
	r.copyOut(mid, 3, 5)
	require.Equal(t, oldest+3, mid[0].Seq)
	require.Equal(t, oldest+7, mid[4].Seq)
}
