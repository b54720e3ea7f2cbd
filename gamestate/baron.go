package gamestate

import (
	"encoding/json"
	"fmt"
	"time"
)

// Baron rules. Every number here is part of the rules: changing one changes
// what a replay of an old log computes, and the replay reports it.
const (
	BaronName    = "baron"
	BaronMaxHP   = 10_000
	SmiteDamage  = 1_200
	BaronReward  = 300 // gold to every member of the last hitter's team
	basePower    = 300 // a new player's attack power
	powerPerKill = 25  // power a team gains per Baron kill
	maxPower     = 600

	KindAttack  = "attack"
	KindSmite   = "smite"
	KindRespawn = "respawn"
	TargetBaron = "baron"

	TeamBlue = "blue"
	TeamRed  = "red"
)

// Refusal reasons in results ({"ok":false,"reason":...}).
const (
	ReasonTargetDead = "target_dead"
	ReasonCooldown   = "cooldown"
	ReasonNotJoined  = "not_joined"
	ReasonAlive      = "alive"
	ReasonUnknown    = "unknown_kind"
)

// BaronOptions are the tunable rules of a Baron room. A log must be
// replayed with the options it was written with.
type BaronOptions struct {
	// RespawnDelay is the room time from the last hit to the server-made
	// respawn entry. Default 20s.
	RespawnDelay time.Duration
	// SmiteCooldown is the room time between two smites of one player.
	// Default 15s.
	SmiteCooldown time.Duration
	// MaxHP is Baron's health at spawn. Default BaronMaxHP (10,000).
	MaxHP int64
}

func (o *BaronOptions) setDefaults() {
	if o.RespawnDelay <= 0 {
		o.RespawnDelay = 20 * time.Second
	}
	if o.SmiteCooldown <= 0 {
		o.SmiteCooldown = 15 * time.Second
	}
	if o.MaxHP <= 0 {
		o.MaxHP = BaronMaxHP
	}
}

// Baron returns the spec of the reference game with default options.
func Baron() Spec { return BaronWith(BaronOptions{}) }

// BaronWith returns the spec of the reference game with opts.
func BaronWith(opts BaronOptions) Spec {
	opts.setDefaults()
	return Spec{
		Name:  BaronName,
		New:   func() Game { return newBaron(opts) },
		Check: checkBaron,
	}
}

func checkBaron(kind, target string) error {
	switch kind {
	case KindAttack, KindSmite:
	default:
		return fmt.Errorf("%w: %q is not a client action of %s", ErrUnknownKind, kind, BaronName)
	}
	if target != TargetBaron {
		return fmt.Errorf("%w: field target: must be %q", ErrBadRequest, TargetBaron)
	}
	return nil
}

type baronPlayer struct {
	ID         string `json:"id"`
	Team       string `json:"team"`
	Present    bool   `json:"present"`
	Gold       int64  `json:"gold"`
	Power      int64  `json:"power"`
	SmiteReady int64  `json:"smite_ready"` // room time from which smite is allowed
	LastCSeq   uint64 `json:"last_cseq"`
	LastSeq    uint64 `json:"last_seq"`
}

type baronState struct {
	HP      int64         `json:"baron_hp"`
	Alive   bool          `json:"alive"`
	DiedAt  int64         `json:"died_at"`
	Kills   int64         `json:"kills"`
	Seeded  bool          `json:"seeded"`
	RNG     uint64        `json:"rng"`
	Players []baronPlayer `json:"players"` // sorted by ID, unique
}

type baron struct {
	opts BaronOptions
	s    baronState
}

func newBaron(opts BaronOptions) *baron {
	return &baron{opts: opts, s: baronState{HP: opts.MaxHP, Alive: true, Players: []baronPlayer{}}}
}

// find returns the index of id in the sorted player slice and whether it is
// there.
func (b *baron) find(id string) (int, bool) {
	lo, hi := 0, len(b.s.Players)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b.s.Players[m].ID < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(b.s.Players) && b.s.Players[lo].ID == id
}

func (b *baron) player(id string) *baronPlayer {
	if i, ok := b.find(id); ok {
		return &b.s.Players[i]
	}
	return nil
}

// next advances the PRNG (splitmix64). The first entry of a room seeds it
// from that entry's room time, which the log records.
func (b *baron) next(at int64) uint64 {
	if !b.s.Seeded {
		b.s.RNG = uint64(at)
		b.s.Seeded = true
	}
	b.s.RNG += 0x9e3779b97f4a7c15
	z := b.s.RNG
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (b *baron) Apply(e *Entry, dst []byte) []byte {
	if !b.s.Seeded {
		b.next(e.At)
	}
	// The acting player, looked up once per entry (nil for server-made
	// entries and strangers). Only join grows the player slice, and join
	// entries have no player, so the pointer stays valid.
	var p *baronPlayer
	if e.Player != "" {
		if p = b.player(e.Player); p != nil && e.CSeq > p.LastCSeq {
			p.LastCSeq, p.LastSeq = e.CSeq, e.Seq
		}
	}
	switch e.Kind {
	case KindJoin:
		return b.join(e, dst)
	case KindLeave:
		return b.leave(e, dst)
	case KindAttack:
		return b.attack(e, p, dst)
	case KindSmite:
		return b.smite(e, p, dst)
	case KindRespawn:
		return b.respawn(dst)
	}
	return refusal(dst, ReasonUnknown)
}

func (b *baron) join(e *Entry, dst []byte) []byte {
	if e.Target == "" {
		return refusal(dst, ReasonNotJoined)
	}
	i, ok := b.find(e.Target)
	if !ok {
		// The team is chosen before the slice shifts: during the shift
		// the player at i is there twice.
		team := b.smallerTeam()
		b.s.Players = append(b.s.Players, baronPlayer{})
		copy(b.s.Players[i+1:], b.s.Players[i:])
		b.s.Players[i] = baronPlayer{ID: e.Target, Team: team, Power: basePower}
	}
	p := &b.s.Players[i]
	p.Present = true
	return openObj(dst).bool("ok", true).str("team", p.Team).close()
}

// smallerTeam is the team with fewer present players; blue on a tie.
func (b *baron) smallerTeam() string {
	blue, red := 0, 0
	for i := range b.s.Players {
		if !b.s.Players[i].Present {
			continue
		}
		if b.s.Players[i].Team == TeamBlue {
			blue++
		} else {
			red++
		}
	}
	if red < blue {
		return TeamRed
	}
	return TeamBlue
}

func (b *baron) leave(e *Entry, dst []byte) []byte {
	p := b.player(e.Target)
	if p == nil || !p.Present {
		return refusal(dst, ReasonNotJoined)
	}
	p.Present = false
	return openObj(dst).bool("ok", true).close()
}

func (b *baron) attack(e *Entry, p *baronPlayer, dst []byte) []byte {
	if p == nil || !p.Present {
		return refusal(dst, ReasonNotJoined)
	}
	if !b.s.Alive {
		return refusal(dst, ReasonTargetDead)
	}
	roll := int64(b.next(e.At) % uint64(p.Power/2+1))
	return b.hit(e, p, p.Power+roll, dst)
}

func (b *baron) smite(e *Entry, p *baronPlayer, dst []byte) []byte {
	if p == nil || !p.Present {
		return refusal(dst, ReasonNotJoined)
	}
	if !b.s.Alive {
		return refusal(dst, ReasonTargetDead)
	}
	if e.At < p.SmiteReady {
		return openObj(dst).bool("ok", false).str("reason", ReasonCooldown).int("ready_at", p.SmiteReady).close()
	}
	p.SmiteReady = e.At + int64(b.opts.SmiteCooldown)
	return b.hit(e, p, SmiteDamage, dst)
}

// hit deals damage to a living Baron; the entry that takes it to 0 is the
// last hit and its player's team gets the reward.
func (b *baron) hit(e *Entry, p *baronPlayer, damage int64, dst []byte) []byte {
	if damage > b.s.HP {
		damage = b.s.HP
	}
	b.s.HP -= damage
	last := b.s.HP == 0
	if last {
		b.s.Alive = false
		b.s.DiedAt = e.At
		b.s.Kills++
		team := p.Team
		for i := range b.s.Players {
			q := &b.s.Players[i]
			if q.Team == team && q.Present {
				q.Gold += BaronReward
				q.Power = min(q.Power+powerPerKill, maxPower)
			}
		}
	}
	return openObj(dst).int("damage", damage).int("baron_hp", b.s.HP).bool("last_hit", last).close()
}

func (b *baron) respawn(dst []byte) []byte {
	if b.s.Alive {
		return refusal(dst, ReasonAlive)
	}
	b.s.Alive = true
	b.s.HP = b.opts.MaxHP
	return openObj(dst).bool("ok", true).int("baron_hp", b.s.HP).close()
}

func (b *baron) Due() (Timer, bool) {
	if b.s.Alive {
		return Timer{}, false
	}
	return Timer{At: b.s.DiedAt + int64(b.opts.RespawnDelay), Kind: KindRespawn, Target: TargetBaron}, true
}

func (b *baron) LastCSeq(player string) (uint64, uint64) {
	if p := b.player(player); p != nil {
		return p.LastCSeq, p.LastSeq
	}
	return 0, 0
}

func (b *baron) Member(player string) bool {
	p := b.player(player)
	return p != nil && p.Present
}

func (b *baron) Known(player string) bool { return b.player(player) != nil }

func (b *baron) Players() int { return len(b.s.Players) }

func (b *baron) Snapshot() []byte {
	out, err := json.Marshal(&b.s)
	if err != nil {
		// The state is plain data; Marshal cannot fail on it.
		panic(fmt.Sprintf("gamestate: marshal baron state: %v", err))
	}
	return out
}

func (b *baron) Restore(data []byte) error {
	var s baronState
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("gamestate: restore baron: %w", err)
	}
	if s.HP < 0 || s.HP > b.opts.MaxHP || s.Alive != (s.HP > 0) {
		return fmt.Errorf("gamestate: restore baron: inconsistent hp %d alive %v", s.HP, s.Alive)
	}
	for i := range s.Players {
		p := &s.Players[i]
		if i > 0 && s.Players[i-1].ID >= p.ID {
			return fmt.Errorf("gamestate: restore baron: players not sorted and unique at %q", p.ID)
		}
		// The rules divide by power and hand out gold by team: a state
		// they could not have made is refused, not applied.
		if p.Power < basePower || p.Power > maxPower || p.Gold < 0 || (p.Team != TeamBlue && p.Team != TeamRed) {
			return fmt.Errorf("gamestate: restore baron: player %q: power %d, gold %d, team %q out of range", p.ID, p.Power, p.Gold, p.Team)
		}
	}
	if s.Players == nil {
		s.Players = []baronPlayer{}
	}
	b.s = s
	return nil
}

// Hash is FNV-1a over the canonical field order, computed without
// allocating so the room loop can record it with every batch.
func (b *baron) Hash() uint64 {
	h := fnvOffset
	h = fnvInt(h, b.s.HP)
	h = fnvBool(h, b.s.Alive)
	h = fnvInt(h, b.s.DiedAt)
	h = fnvInt(h, b.s.Kills)
	h = fnvBool(h, b.s.Seeded)
	h = fnvInt(h, int64(b.s.RNG))
	h = fnvInt(h, int64(len(b.s.Players)))
	for i := range b.s.Players {
		p := &b.s.Players[i]
		h = fnvString(h, p.ID)
		h = fnvString(h, p.Team)
		h = fnvBool(h, p.Present)
		h = fnvInt(h, p.Gold)
		h = fnvInt(h, p.Power)
		h = fnvInt(h, p.SmiteReady)
		h = fnvInt(h, int64(p.LastCSeq))
		h = fnvInt(h, int64(p.LastSeq))
	}
	return h
}

type baronView struct {
	HP      int64            `json:"baron_hp"`
	Alive   bool             `json:"alive"`
	Kills   int64            `json:"kills"`
	Players []baronViewEntry `json:"players"`
}

type baronViewEntry struct {
	ID      string `json:"id"`
	Team    string `json:"team"`
	Present bool   `json:"present"`
	Gold    int64  `json:"gold"`
}

// View leaves out the PRNG state (a client that knew it could predict
// damage rolls) and per-player bookkeeping.
func (b *baron) View() []byte {
	v := baronView{HP: b.s.HP, Alive: b.s.Alive, Kills: b.s.Kills, Players: make([]baronViewEntry, len(b.s.Players))}
	for i, p := range b.s.Players {
		v.Players[i] = baronViewEntry{ID: p.ID, Team: p.Team, Present: p.Present, Gold: p.Gold}
	}
	out, err := json.Marshal(&v)
	if err != nil {
		panic(fmt.Sprintf("gamestate: marshal baron view: %v", err))
	}
	return out
}
