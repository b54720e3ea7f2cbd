package gamestate

// FNV-1a, 64 bit, written inline so hashing a state never allocates.
const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

func fnvByte(h uint64, c byte) uint64 { return (h ^ uint64(c)) * fnvPrime }

func fnvInt(h uint64, v int64) uint64 {
	u := uint64(v)
	for i := 0; i < 8; i++ {
		h = fnvByte(h, byte(u>>(8*i)))
	}
	return h
}

func fnvBool(h uint64, v bool) uint64 {
	if v {
		return fnvByte(h, 1)
	}
	return fnvByte(h, 0)
}

// fnvString hashes the length first so ("ab","c") and ("a","bc") differ.
func fnvString(h uint64, s string) uint64 {
	h = fnvInt(h, int64(len(s)))
	for i := 0; i < len(s); i++ {
		h = fnvByte(h, s[i])
	}
	return h
}
