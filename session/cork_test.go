package session

import (
	"net"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type countingConn struct {
	net.Conn
	writes atomic.Int32
	bytes  atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	c.bytes.Add(int32(len(p)))
	return len(p), nil
}

func TestCorkConn(t *testing.T) {
	under := &countingConn{}
	c := &corkConn{Conn: under, max: 100}

	_, err := c.Write([]byte("uncorked"))
	require.NoError(t, err)
	assert.Equal(t, int32(1), under.writes.Load(), "uncorked writes go straight through")

	c.cork()
	for i := 0; i < 5; i++ {
		_, err := c.Write([]byte("0123456789"))
		require.NoError(t, err)
	}
	assert.Equal(t, int32(1), under.writes.Load(), "corked writes wait")
	require.NoError(t, c.uncork())
	assert.Equal(t, int32(2), under.writes.Load(), "five frames, one write")
	assert.Equal(t, int32(8+50), under.bytes.Load())

	c.cork()
	for i := 0; i < 25; i++ {
		_, err := c.Write([]byte("0123456789"))
		require.NoError(t, err)
	}
	assert.Equal(t, int32(4), under.writes.Load(), "a full buffer is written early")
	require.NoError(t, c.uncork())
	assert.Equal(t, int32(5), under.writes.Load())
	assert.Equal(t, int32(8+50+250), under.bytes.Load(), "nothing lost or repeated")
}
