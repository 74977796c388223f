package doctor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProbeHelpersHaveNoTerminal: the helpers doctor's probe makes git run
// are in a session of their own, so they cannot reach the caller's
// terminal (its session's) to prompt.
func TestProbeHelpersHaveNoTerminal(t *testing.T) {
	t.Parallel()
	requireGit(t)
	home := t.TempDir()
	sidFile := filepath.Join(home, "sid")
	gitconfig := fmt.Sprintf("[credential]\n\thelper = \"!f() { cut -d' ' -f6 /proc/$$/stat > '%s'; }; f\"\n", sidFile)
	require.NoError(t, os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(gitconfig), 0o600))
	d := &Doctor{Env: gitEnv(home)}
	probe := d.probe(context.Background(), home, targetFor("bitbucket.org", probePath))
	require.NoError(t, probe.Err)
	data, err := os.ReadFile(sidFile)
	require.NoError(t, err, "the helper did not run")
	sid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	require.NoError(t, err)
	ours, err := unix.Getsid(0)
	require.NoError(t, err)
	assert.NotEqual(t, ours, sid, "the helper ran in the caller's session")
}

// TestProbeTimeoutEndsHelpers: when the probe gives up on git, the
// helpers git started are ended with it, not left running.
func TestProbeTimeoutEndsHelpers(t *testing.T) {
	t.Parallel()
	requireGit(t)
	home := t.TempDir()
	mark := fmt.Sprintf("bbtoken-probe-hold-%d", time.Now().UnixNano())
	gitconfig := "[credential]\n\thelper = \"!sleep 60 && : " + mark + "\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(gitconfig), 0o600))
	d := &Doctor{Env: gitEnv(home), ProbeTimeout: time.Second}
	probe := d.probe(context.Background(), home, targetFor("bitbucket.org", probePath))
	require.Error(t, probe.Err)
	running := func() []string {
		var found []string
		dirs, _ := os.ReadDir("/proc")
		for _, e := range dirs {
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err == nil && strings.Contains(string(cmdline), mark) {
				found = append(found, e.Name())
			}
		}
		return found
	}
	// SIGKILL is sent at once; the processes vanish when reaped.
	assert.Eventually(t, func() bool { return len(running()) == 0 }, 10*time.Second, 20*time.Millisecond,
		"helpers still running after the probe gave up: %v", running())
}
