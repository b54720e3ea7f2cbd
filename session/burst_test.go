package session_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/lasthit/lasthit/session"
)

// A burst within the limits, from every player at once, reaches every
// client that keeps reading: 40 players each send their whole rate-limit
// burst (40 actions) at the same moment, 1,600 events in a few room
// batches, and each client gets its 40 acks and every event, none closed
// as a slow consumer. (With an outbox bound of 1,024 frames, the old
// default, most of them were: one batch of 1,024 events and the acks
// after it filled the outbox of a client that was not behind at all.)
func TestBurstWithinLimitsReachesEveryone(t *testing.T) {
	const clients = 40
	opts := session.Options{}
	burst := 40 // session.Options' RateBurst default
	h := startServer(t, harnessConfig{opts: opts})
	cs := make([]*client, clients)
	for i := range cs {
		cs[i], _ = h.join(t, "burst", fmt.Sprintf("dev:b%02d", i), 0)
		defer cs[i].close()
	}
	total := uint64(clients * burst)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			for cseq := 1; cseq <= burst; cseq++ {
				if err := c.send(attack(uint64(cseq))); err != nil {
					errs[i] = err
					return
				}
			}
			acks := 0
			var events []frame
			for acks < burst || len(events) < int(total) {
				f, err := c.read()
				switch {
				case err != nil:
					errs[i] = fmt.Errorf("after %d acks and %d events: %w", acks, len(events), err)
					return
				case f.Type == "ack":
					acks++
				case f.Type == "event" && f.Kind == "attack":
					events = append(events, f)
				case f.Type == "reject":
					errs[i] = fmt.Errorf("reject: %s", f)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "client %d", i)
	}
}
