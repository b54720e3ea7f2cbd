package queue

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The in-memory log keeps at most MaxRooms rooms; reading a room that was
// never written creates nothing.
func TestMemoryLogMaxRooms(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryLog(MemoryOptions{MaxRooms: 2})
	for _, room := range []string{"never-written", "also-never"} {
		meta, err := m.Meta(ctx, room)
		require.NoError(t, err)
		assert.Equal(t, Meta{FirstSeq: 1}, meta)
		_, ok, err := m.LoadSnapshot(ctx, room)
		require.NoError(t, err)
		assert.False(t, ok)
		recs, err := m.Read(ctx, room, 1, 10, 10)
		require.NoError(t, err)
		assert.Empty(t, recs)
	}
	_, err := m.Acquire(ctx, "a", Lease{})
	require.NoError(t, err)
	_, err = m.Acquire(ctx, "b", Lease{})
	require.NoError(t, err)
	_, err = m.Acquire(ctx, "c", Lease{})
	assert.ErrorIs(t, err, ErrTooManyRooms)
	_, err = m.Acquire(ctx, "a", Lease{})
	assert.NoError(t, err, "a room it holds is not a new room")
}
