package session_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/queue"
)

// metaShift adds to the LastSeq that Meta reports once armed: the log
// then claims entries the room does not have, so only the room's own seq
// can refuse a since.
type metaShift struct {
	queue.Log
	add atomic.Uint64
}

func (l *metaShift) Meta(ctx context.Context, room string) (queue.Meta, error) {
	m, err := l.Log.Meta(ctx, room)
	m.LastSeq += l.add.Load()
	return m, err
}

// TestSinceTooLargeLeavesTheRoomAlone: a hello refused for a since past the
// room's last seq is one error and a close, and nothing else: the
// player's live connection stays, the room logs no join or leave for it,
// and a room not open is not opened for it.
func TestSinceTooLargeLeavesTheRoomAlone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shift uint64 // added to the log's LastSeq: the check against the log passes
	}{{"log", 0}, {"room", 10_000}} {
		t.Run(tc.name, func(t *testing.T) {
			log := &metaShift{}
			h := startServer(t, harnessConfig{wrapLog: func(l queue.Log) queue.Log { log.Log = l; return log }})
			live, _ := h.join(t, "rs", "dev:p1", 0)
			defer live.close()
			live.mustSend(attack(1))
			require.Equal(t, "ack", answer(t, live).Type)
			before := h.logRecords("rs")
			log.add.Store(tc.shift)

			c := h.dial(t)
			c.mustSend(hello("rs", "dev:p1", 999))
			f := c.mustRead()
			assert.Equal(t, "error bad_request", f.Type+" "+f.Code, "%s", f)
			assert.Contains(t, f.Message, "field since: 999 is after the room's last seq")
			assert.Equal(t, 1008, c.closeCode())
			c.close()
			checkFor(t, readWait, 5*time.Millisecond, func() error {
				if n := h.srv.Stats().Open; n != 1 {
					return fmt.Errorf("%d connections open", n)
				}
				return nil
			})

			live.expectOpen() // no close frame came before the pong
			live.mustSend(attack(2))
			a := answer(t, live)
			require.Equal(t, "ack", a.Type, "%s", a)
			after := h.logRecords("rs")
			require.Len(t, after, len(before)+1, "only attack 2 was logged")
			ev := decodeEvent(t, after[len(after)-1].Event)
			assert.Equal(t, "p1 2 attack", fmt.Sprintf("%s %d %s", ev.Player, ev.CSeq, ev.Kind))

			if tc.shift == 0 {
				d := h.dial(t)
				d.mustSend(hello("unopened", "dev:p2", 3))
				f = d.mustRead()
				assert.Equal(t, "error bad_request", f.Type+" "+f.Code, "%s", f)
				assert.Equal(t, 1008, d.closeCode())
				d.close()
				checkFor(t, readWait, 5*time.Millisecond, func() error {
					if n := h.srv.Stats().Open; n != 1 {
						return fmt.Errorf("%d connections open", n)
					}
					return nil
				})
				assert.False(t, slices.Contains(h.reg.Names(), "unopened"), "room opened for a refused hello: %v", h.reg.Names())
			}
		})
	}
}
