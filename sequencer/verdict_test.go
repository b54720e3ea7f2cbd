package sequencer

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerdictTracker(t *testing.T) {
	frame := func(seq uint64, player, kind, result string) Event {
		ev, err := DecodeEvent([]byte(fmt.Sprintf(`{"type":"event","seq":%d,"at":%d,"player":%q,"cseq":%d,"kind":%q,"target":"baron","result":%s}`,
			seq, 1000*seq, player, seq, kind, result)))
		require.NoError(t, err)
		return ev
	}
	v := NewVerdictTracker(2)
	var got []Verdict
	got = append(got, v.Observe(frame(1, "a", "attack", `{"damage":1,"baron_hp":3,"last_hit":false}`), 11)...)
	got = append(got, v.Observe(frame(2, "b", "attack", `{"damage":1,"baron_hp":2,"last_hit":false}`), 12)...)
	got = append(got, v.Observe(frame(3, "c", "attack", `{"damage":1,"baron_hp":1,"last_hit":false}`), 13)...)
	got = append(got, v.Observe(frame(4, "d", "smite", `{"damage":1,"baron_hp":0,"last_hit":true}`), 14)...)
	require.Empty(t, got)
	got = append(got, v.Observe(frame(5, "a", "attack", `{"ok":false,"reason":"target_dead"}`), 15)...)
	got = append(got, v.Observe(frame(6, "b", "attack", `{"ok":false,"reason":"target_dead"}`), 16)...)
	require.Len(t, got, 1)
	w := got[0]
	assert.Equal(t, uint64(4), w.Winner.Seq)
	assert.Equal(t, "d", w.Winner.Player)
	assert.Equal(t, uint64(14), w.Winner.Stamp)
	require.Len(t, w.Before, 2)
	assert.Equal(t, uint64(2), w.Before[0].Seq)
	assert.Equal(t, int64(-2000), w.Before[0].DeltaNs)
	require.Len(t, w.After, 2)
	assert.Equal(t, int64(2000), w.After[1].DeltaNs)
	assert.Empty(t, v.Flush())

	v.Observe(frame(7, "a", "attack", `{"damage":1,"baron_hp":0,"last_hit":true}`), 17)
	rest := v.Flush()
	require.Len(t, rest, 1)
	assert.Empty(t, rest[0].After)
}
