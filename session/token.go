package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Join tokens.
//
// A signed token is three dot-separated parts:
//
//	v1.<payload>.<mac>
//
// payload is base64url (no padding) of the JSON object
// {"p":"<player>","r":"<room>","exp":<unix seconds>} ("r" absent when the
// token is good for any room), and mac is base64url of
// HMAC-SHA256(secret, "v1." + payload). The server accepts a token when the
// mac matches (compared in constant time), exp is in the future, the player
// id is valid and, if the token binds a room, it is the room of the hello.
//
// Without a secret (dev mode) the only accepted form is "dev:<player>".

// ErrUnauthorized is wrapped by every token error.
var ErrUnauthorized = errors.New("unauthorized")

const (
	tokenVersion = "v1"
	devPrefix    = "dev:"
)

var b64 = base64.RawURLEncoding

// TokenClaims is what a join token says.
type TokenClaims struct {
	Player  string    // 1-64 characters of [A-Za-z0-9_.-]
	Room    string    // empty: any room
	Expires time.Time // required
}

type tokenPayload struct {
	Player  string `json:"p"`
	Room    string `json:"r,omitempty"`
	Expires int64  `json:"exp"`
}

// SignToken returns a token for c signed with secret.
func SignToken(secret []byte, c TokenClaims) (string, error) {
	switch {
	case len(secret) < MinSecretLen:
		return "", fmt.Errorf("session: token secret must be at least %d bytes", MinSecretLen)
	case !validName(c.Player):
		return "", fmt.Errorf("session: player %q: must be 1-64 characters of [A-Za-z0-9_.-]", c.Player)
	case c.Room != "" && !validName(c.Room):
		return "", fmt.Errorf("session: room %q: must be 1-64 characters of [A-Za-z0-9_.-]", c.Room)
	case c.Expires.IsZero():
		return "", errors.New("session: token needs an expiry")
	}
	payload, err := json.Marshal(tokenPayload{Player: c.Player, Room: c.Room, Expires: c.Expires.Unix()})
	if err != nil {
		return "", fmt.Errorf("session: encode token: %w", err)
	}
	signed := tokenVersion + "." + b64.EncodeToString(payload)
	return signed + "." + b64.EncodeToString(tokenMAC(secret, signed)), nil
}

func tokenMAC(secret []byte, signed string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// VerifyToken checks token for a hello to room at time now and returns the
// player it names. With an empty secret (dev mode) only "dev:<player>" is
// accepted. Every error wraps ErrUnauthorized; its text is safe to show
// the client.
func VerifyToken(secret []byte, token, room string, now time.Time) (string, error) {
	if len(secret) == 0 {
		player, ok := strings.CutPrefix(token, devPrefix)
		switch {
		case !ok:
			return "", fmt.Errorf("%w: the server is in dev mode and accepts only dev:<player> tokens", ErrUnauthorized)
		case !validName(player):
			return "", fmt.Errorf("%w: player id must be 1-64 characters of [A-Za-z0-9_.-]", ErrUnauthorized)
		}
		return player, nil
	}
	if token == "" {
		return "", fmt.Errorf("%w: field token: required", ErrUnauthorized)
	}
	version, rest, _ := strings.Cut(token, ".")
	payloadB64, macB64, found := strings.Cut(rest, ".")
	if version != tokenVersion || !found {
		return "", fmt.Errorf("%w: malformed token", ErrUnauthorized)
	}
	mac, err := b64.DecodeString(macB64)
	if err != nil || !hmac.Equal(mac, tokenMAC(secret, tokenVersion+"."+payloadB64)) {
		return "", fmt.Errorf("%w: bad token signature", ErrUnauthorized)
	}
	raw, err := b64.DecodeString(payloadB64)
	if err != nil {
		return "", fmt.Errorf("%w: malformed token", ErrUnauthorized)
	}
	var p tokenPayload
	if err := json.Unmarshal(raw, &p); err != nil || !validName(p.Player) || p.Expires <= 0 {
		return "", fmt.Errorf("%w: malformed token", ErrUnauthorized)
	}
	if !now.Before(time.Unix(p.Expires, 0)) {
		return "", fmt.Errorf("%w: token expired", ErrUnauthorized)
	}
	if p.Room != "" && p.Room != room {
		return "", fmt.Errorf("%w: token is for another room", ErrUnauthorized)
	}
	return p.Player, nil
}
