package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestAtFormat(t *testing.T) {
	var f atFormat
	base := time.Date(2025, 6, 1, 23, 59, 59, 999_999_998, time.UTC).UnixNano()
	for _, at := range []int64{
		base, base + 1, base + 2, base + 3, // across midnight
		base + int64(time.Hour), 0, 1, -1, -int64(time.Second), -int64(time.Second) - 1,
		time.Date(2024, 2, 29, 12, 0, 0, 5, time.UTC).UnixNano(),
	} {
		want := time.Unix(0, at).UTC().Format("2006-01-02T15:04:05.000000000Z")
		assert.Equal(t, want, string(f.append(nil, at)), "at %d", at)
	}
}

func TestPadAt(t *testing.T) {
	assert.Equal(t, "ab   |", string(padTo([]byte("ab"), 5))+"|")
	assert.Equal(t, "abcdef |", string(padTo([]byte("abcdef"), 5))+"|", "a long value keeps one space")
	assert.Len(t, padTo(nil, 200), 200)
	assert.Equal(t, "x\n  y  |", string(padAt([]byte("x\n  y"), 2, 5))+"|", "offsets count from the line's start")
}
