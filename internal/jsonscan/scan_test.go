package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStr(t *testing.T) {
	for in, want := range map[string]string{
		`"plain"`:               "plain",
		` "a\"b\\c\/d"`:         `a"b\c/d`,
		`"\b\f\n\r\t"`:          "\b\f\n\r\t",
		`"caf\u00e9"`:           "café",
		`"\ud83d\ude00"`:        "😀",
		`"lone \udc00"`:         "lone \ufffd",
		`"Tab\u0009and\u0041Z"`: "Tab\tandAZ",
	} {
		var s Scanner
		s.Reset([]byte(in))
		got, err := s.Str()
		require.NoError(t, err, in)
		assert.Equal(t, want, string(got), in)
		var ref string
		require.NoError(t, json.Unmarshal([]byte(in), &ref))
		assert.Equal(t, ref, string(got), "as encoding/json: %s", in)
	}
	for _, in := range []string{`"open`, `"bad \x"`, `"short \u12"`, "\"ctl \x01\"", `x`, ``} {
		var s Scanner
		s.Reset([]byte(in))
		_, err := s.Str()
		assert.ErrorIs(t, err, ErrSyntax, "%q", in)
	}
}

func TestNumbers(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, " 42": 42, "18446744073709551615": 1<<64 - 1} {
		var s Scanner
		s.Reset([]byte(in))
		got, err := s.Uint()
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"18446744073709551616", "01", "-1", "1.5", "1e3", "", "x"} {
		var s Scanner
		s.Reset([]byte(in))
		_, err := s.Uint()
		assert.ErrorIs(t, err, ErrSyntax, "%q", in)
	}
	for in, want := range map[string]int64{"-9223372036854775808": -1 << 63, "9223372036854775807": 1<<63 - 1, "-7": -7} {
		var s Scanner
		s.Reset([]byte(in))
		got, err := s.Int()
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"9223372036854775808", "-9223372036854775809", "--1"} {
		var s Scanner
		s.Reset([]byte(in))
		_, err := s.Int()
		assert.ErrorIs(t, err, ErrSyntax, "%q", in)
	}
}

func TestSkipAndPunctuation(t *testing.T) {
	var s Scanner
	s.Reset([]byte(` {"a":[1,{"b":null},"x"],"c":true} , 7 `))
	raw, err := s.Skip()
	require.NoError(t, err)
	assert.Equal(t, `{"a":[1,{"b":null},"x"],"c":true}`, string(raw))
	assert.False(t, s.Accept(';'))
	assert.True(t, s.Accept(','))
	c, ok := s.Peek()
	assert.True(t, ok)
	assert.Equal(t, byte('7'), c)
	_, err = s.Uint()
	require.NoError(t, err)
	assert.True(t, s.AtEnd())
	_, ok = s.Peek()
	assert.False(t, ok)

	for _, in := range []string{`{"a":1`, `[1,2`, `{"a" 1}`, `{1:2}`, `[1;2]`, `nul`, `}`} {
		s.Reset([]byte(in))
		_, err := s.Skip()
		assert.ErrorIs(t, err, ErrSyntax, "%q", in)
	}
}

// Skip passes over nesting up to MaxDepth and refuses deeper input with an
// error instead of recursing until the stack overflows (a tampered log
// line of a few megabytes of '[').
func TestSkipDepth(t *testing.T) {
	var s Scanner
	nested := func(n int) []byte {
		return []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
	}
	s.Reset(nested(MaxDepth))
	_, err := s.Skip()
	require.NoError(t, err)
	assert.True(t, s.AtEnd())

	s.Reset(nested(MaxDepth + 1))
	_, err = s.Skip()
	require.ErrorIs(t, err, ErrSyntax)
	assert.Contains(t, err.Error(), "nested more than")

	s.Reset(nested(2_000_000))
	_, err = s.Skip()
	require.ErrorIs(t, err, ErrSyntax)

	// The count starts again with each Reset and each value.
	s.Reset([]byte(`[[1]] [[2]]`))
	for range 2 {
		_, err = s.Skip()
		require.NoError(t, err)
	}
}
