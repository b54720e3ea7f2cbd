package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/loadtest"
)

// The loadtest's secret comes from GAMESERVER_SECRET unless --secret is on
// the command line, in any form the flag package takes; an argument that
// only looks like the flag's name is not the flag.
func TestLoadtestSecretFromEnv(t *testing.T) {
	const good, wrong = "loadtest-cli-secret-0123456789", "not-the-servers-secret-0000"
	url := "ws://" + startServe(t, "--secret", good).addr + "/ws"
	base := []string{"loadtest", "--url", url, "--bots", "2", "--rooms", "1", "--rate", "10", "--duration", "200ms"}
	for _, tc := range []struct {
		name string
		env  string // GAMESERVER_SECRET; empty: unset
		args []string
		want int
	}{
		{"env used without the flag", good, nil, loadtest.ExitOK},
		{"a flag value equal to secret is not the flag", good, []string{"--run-id", "secret"}, loadtest.ExitOK},
		{"--secret x wins", good, []string{"--secret", wrong}, loadtest.ExitViolation},
		{"--secret=x wins", wrong, []string{"--secret=" + good}, loadtest.ExitOK},
		{"-secret x wins", wrong, []string{"-secret", good}, loadtest.ExitOK},
		{"neither: dev tokens", "", nil, loadtest.ExitViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) (string, bool) {
				if k == envName("secret") && tc.env != "" {
					return tc.env, true
				}
				return "", false
			}
			var stdout, stderr bytes.Buffer
			code := run(append(append([]string{}, base...), tc.args...), &stdout, &stderr, env)
			require.Equal(t, tc.want, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			if tc.want == loadtest.ExitOK {
				assert.Contains(t, stdout.String(), "violations  0: every invariant held")
			} else {
				assert.Contains(t, stderr.String(), "unauthorized", "the server refused the bots' tokens")
			}
		})
	}
}
