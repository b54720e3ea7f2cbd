package loadtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"
)

// Join tokens, as the server checks them (README, "Join tokens"):
//
//	v1.<payload>.<mac>
//
// payload is base64url (no padding) of {"p":"<player>","r":"<room>",
// "exp":<unix seconds>}, mac is base64url of HMAC-SHA256(secret,
// "v1." + payload). Without a secret the server is in dev mode and takes
// "dev:<player>".

type tokenPayload struct {
	Player  string `json:"p"`
	Room    string `json:"r,omitempty"`
	Expires int64  `json:"exp"`
}

// joinToken returns the token a bot sends in its hello.
func joinToken(secret []byte, player, room string, exp time.Time) string {
	if len(secret) == 0 {
		return "dev:" + player
	}
	// Marshal cannot fail on two strings and an int.
	payload, _ := json.Marshal(tokenPayload{Player: player, Room: room, Expires: exp.Unix()})
	signed := "v1." + base64.RawURLEncoding.EncodeToString(payload)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
