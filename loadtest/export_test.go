package loadtest

import "time"

// JoinTokenForTest exposes joinToken to the external tests, which check it
// against the server's verification.
func JoinTokenForTest(secret []byte, player, room string, exp time.Time) string {
	return joinToken(secret, player, room, exp)
}
