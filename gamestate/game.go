package gamestate

import (
	"errors"
	"fmt"
	"sort"
)

// Entry is one sequenced entry as the rules see it. Server-made entries
// (join, leave, respawn) have an empty Player and a zero CSeq; join and
// leave name their player in Target.
type Entry struct {
	Seq    uint64
	At     int64 // room time of stamping, ns
	Player string
	CSeq   uint64
	Kind   string
	Target string
}

// Timer is a server-made entry the game wants sequenced once room time
// reaches At (Baron's respawn, for instance). The room loop turns it into an
// ordinary entry; the rules never act on time by themselves.
type Timer struct {
	At     int64
	Kind   string
	Target string
}

// Game is the state machine of one room.
type Game interface {
	// Apply applies e, which must follow the previously applied entry, and
	// appends its result (one JSON object) to dst.
	Apply(e *Entry, dst []byte) []byte
	// Snapshot returns the whole state in a canonical encoding.
	Snapshot() []byte
	// Restore replaces the state with one produced by Snapshot.
	Restore(b []byte) error
	// Hash is a 64-bit hash of the canonical state.
	Hash() uint64
	// View is the state as players may see it (JSON), for welcome frames.
	View() []byte
	// Due reports the next server-made entry the game is waiting for.
	Due() (Timer, bool)
	// LastCSeq reports the last cseq sequenced for player and its seq.
	LastCSeq(player string) (cseq, seq uint64)
	// Member reports whether player has joined and not left.
	Member(player string) bool
	// Known reports whether the state holds player (it joined once,
	// present or not), and Players how many players it holds.
	Known(player string) bool
	Players() int
}

// Server-made kinds every game understands.
const (
	KindJoin  = "join"
	KindLeave = "leave"
)

// Errors returned by Spec.Check for client actions.
var (
	ErrUnknownKind = errors.New("unknown kind")
	ErrBadRequest  = errors.New("bad request")
)

// Spec names a game and builds fresh instances of it.
type Spec struct {
	Name string
	// New returns a game in its initial state.
	New func() Game
	// Check validates a client action before it is stamped. It returns an
	// error wrapping ErrUnknownKind or ErrBadRequest. It must be safe for
	// concurrent use.
	Check func(kind, target string) error
}

// Catalog is an immutable set of games by name.
type Catalog struct {
	specs map[string]Spec
}

// NewCatalog returns a catalog of specs; names must be unique and non-empty.
func NewCatalog(specs ...Spec) (*Catalog, error) {
	c := &Catalog{specs: make(map[string]Spec, len(specs))}
	for _, s := range specs {
		if s.Name == "" || s.New == nil || s.Check == nil {
			return nil, fmt.Errorf("gamestate: spec %q is incomplete", s.Name)
		}
		if _, dup := c.specs[s.Name]; dup {
			return nil, fmt.Errorf("gamestate: game %q registered twice", s.Name)
		}
		c.specs[s.Name] = s
	}
	return c, nil
}

// Lookup returns the spec registered under name.
func (c *Catalog) Lookup(name string) (Spec, bool) {
	s, ok := c.specs[name]
	return s, ok
}

// Names lists the registered games in sorted order.
func (c *Catalog) Names() []string {
	names := make([]string, 0, len(c.specs))
	for n := range c.specs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
