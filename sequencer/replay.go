package sequencer

import (
	"bytes"
	"fmt"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
)

// MismatchError reports the first entry whose recorded result differs from
// the result the rules compute on replay.
type MismatchError struct {
	Seq        uint64
	Recorded   string
	Recomputed string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("sequencer: replay mismatch at seq %d: recorded %s, recomputed %s", e.Seq, e.Recorded, e.Recomputed)
}

// Replayer rebuilds a room's state from its log (optionally from a
// snapshot), checking that the sequence is gapless, that room time grows,
// that no player's action is sequenced twice (a player's cseqs grow, as
// the room loop sequences only a cseq above the player's last), and that
// every recorded result equals the recomputed one.
type Replayer struct {
	game gamestate.Game
	seq  uint64
	at   int64
	buf  []byte
	scan scanner
	// entry is reused: an Entry passed to the Game would escape, one
	// allocation per replayed entry.
	entry gamestate.Entry
}

// NewReplayer replays into game, which must be in its initial state.
func NewReplayer(game gamestate.Game) *Replayer {
	return &Replayer{game: game, scan: scanner{intern: make(map[string]string)}}
}

// Game is the state being rebuilt.
func (p *Replayer) Game() gamestate.Game { return p.game }

// Seq is the last seq applied.
func (p *Replayer) Seq() uint64 { return p.seq }

// At is the room time of the last entry applied.
func (p *Replayer) At() int64 { return p.at }

// Restore starts the replay from a snapshot, checking its hash.
func (p *Replayer) Restore(s queue.Snapshot) error {
	if err := p.game.Restore(s.State); err != nil {
		return err
	}
	if h := p.game.Hash(); h != s.Hash {
		return fmt.Errorf("sequencer: snapshot at seq %d hashes to %016x, recorded %016x", s.Seq, h, s.Hash)
	}
	p.seq, p.at = s.Seq, s.At
	return nil
}

// Step applies the next logged event frame and returns it decoded.
func (p *Replayer) Step(frame []byte) (Event, error) {
	ev, err := p.scan.event(frame)
	if err != nil {
		return Event{}, fmt.Errorf("seq %d: %w", p.seq+1, err)
	}
	if ev.Seq != p.seq+1 {
		return ev, fmt.Errorf("sequencer: replay: seq %d follows %d (gap or repeat)", ev.Seq, p.seq)
	}
	if p.seq > 0 && ev.At <= p.at {
		return ev, fmt.Errorf("sequencer: replay: seq %d has at %d, not after %d", ev.Seq, ev.At, p.at)
	}
	if ev.Player != "" {
		if last, lastSeq := p.game.LastCSeq(ev.Player); ev.CSeq <= last {
			return ev, fmt.Errorf("sequencer: replay: seq %d: player %q cseq %d is not above its cseq %d at seq %d: an action sequenced twice or out of order",
				ev.Seq, ev.Player, ev.CSeq, last, lastSeq)
		}
	}
	p.entry = ev.Entry()
	p.buf = p.game.Apply(&p.entry, p.buf[:0])
	if !bytes.Equal(p.buf, ev.Result) {
		return ev, &MismatchError{Seq: ev.Seq, Recorded: string(ev.Result), Recomputed: string(p.buf)}
	}
	p.seq, p.at = ev.Seq, ev.At
	return ev, nil
}

// CheckHash compares the state hash with one recorded after the last entry.
func (p *Replayer) CheckHash(recorded uint64) error {
	if h := p.game.Hash(); h != recorded {
		return fmt.Errorf("sequencer: state after seq %d hashes to %016x, recorded %016x", p.seq, h, recorded)
	}
	return nil
}
