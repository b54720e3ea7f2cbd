package sequencer

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/lasthit/lasthit/gamestate"
)

// Action is one thing a player (or the server) asks the room to do.
type Action struct {
	Player string // empty for server-made entries
	CSeq   uint64 // the client's counter; 0 for server-made entries
	Kind   string
	Target string
	// Reply receives the ack or reject. It is called from the room loop and
	// must not block. Nil for server-made entries.
	Reply Replier
	// Replaced, if not nil, is set once the sender's connection has been
	// replaced by a newer one of the same player (its Subscriber got
	// Dropped(ErrReplaced)); a push after that is refused with
	// ErrReplaced. The newer connection's Welcome.LastCSeq then counts
	// every action the older one queued.
	Replaced *atomic.Bool

	stamp Stamp
}

// Ack answers an action that is durable.
type Ack struct {
	CSeq uint64
	Seq  uint64
	Dup  bool // the cseq was sequenced before; Seq is the original seq
}

// Code is a reject code of the wire protocol.
type Code string

// Reject codes the sequencer gives (the session adds rate_limited).
const (
	CodeBadRequest  Code = "bad_request"
	CodeBusy        Code = "busy"
	CodeUnavailable Code = "unavailable"
	CodeUnknownKind Code = "unknown_kind"
)

// Reject answers an action that got no seq and had no effect.
type Reject struct {
	CSeq    uint64
	Code    Code
	Message string
}

// Replier receives the outcome of an action.
type Replier interface {
	Acked(Ack)
	Rejected(Reject)
}

// Errors of Push, Join and the registry.
var (
	ErrBusy        = errors.New("sequencer: room queue full")
	ErrClosed      = errors.New("sequencer: room stopped")
	ErrBadAction   = errors.New("sequencer: bad action")
	ErrRoomFull    = errors.New("sequencer: room full")
	ErrReplaced    = errors.New("sequencer: player joined again on another connection")
	ErrSlow        = errors.New("sequencer: subscriber cannot keep up")
	ErrUnavailable = errors.New("sequencer: log unavailable")
)

// CodeOf maps an error of Push to the reject code of the wire protocol.
func CodeOf(err error) Code {
	switch {
	case errors.Is(err, ErrBusy):
		return CodeBusy
	case errors.Is(err, gamestate.ErrUnknownKind):
		return CodeUnknownKind
	case errors.Is(err, gamestate.ErrBadRequest), errors.Is(err, ErrBadAction):
		return CodeBadRequest
	default:
		return CodeUnavailable
	}
}

func (a *Action) validate(spec gamestate.Spec) error {
	if a.Player == "" {
		return fmt.Errorf("%w: no player", ErrBadAction)
	}
	if a.CSeq == 0 {
		return fmt.Errorf("%w: field cseq: must be a positive integer", ErrBadAction)
	}
	return spec.Check(a.Kind, a.Target)
}
