package store_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// childEnv marks the process that runs the body of TestKeyringTimeout.
const childEnv = "BBTOKEN_STORE_TEST_KEYRING_TIMEOUT_CHILD"

// TestKeyringTimeout points the Secret Service client at a D-Bus socket that
// accepts connections and never answers: every Keyring call must give up
// with ErrKeyringTimeout within about twice its timeout.
//
// The body runs in a child process: godbus keeps one session-bus connection
// per process (and go-keyring uses it), so in the test binary that also
// talks to the real keyring the call would either reuse that connection or,
// stuck in the handshake, hold the lock every later call needs.
func TestKeyringTimeout(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the Secret Service (D-Bus) is the Linux keyring")
	}
	if os.Getenv(childEnv) != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKeyringTimeout$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "child test failed:\n%s", out)
		require.Contains(t, string(out), "--- PASS: TestKeyringTimeout", "child output:\n%s", out)
		return
	}

	sock := filepath.Join(t.TempDir(), "bus")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	// Neither the fake bus nor the variable is put back: this child exits
	// right after, and the abandoned calls must never reach a real bus
	// (they would write "timeout-test" items into the user's keyring).
	if err := os.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+sock); err != nil {
		t.Fatal(err)
	}

	const timeout = 500 * time.Millisecond
	k := &store.Keyring{Service: store.Service + "-timeouttest", Timeout: timeout}
	ctx := context.Background()
	calls := map[string]func() error{
		"get":    func() error { _, err := k.Get(ctx, "timeout-test"); return err },
		"set":    func() error { return k.Set(ctx, "timeout-test", "value") },
		"delete": func() error { return k.Delete(ctx, "timeout-test") },
	}
	for _, op := range []string{"get", "set", "delete"} {
		start := time.Now()
		err := calls[op]()
		elapsed := time.Since(start)
		require.ErrorIs(t, err, store.ErrKeyringTimeout, op)
		assert.GreaterOrEqual(t, elapsed, timeout, op)
		assert.Less(t, elapsed, 2*timeout, op)
		assert.Contains(t, err.Error(), "fix:", op)
		assert.NotContains(t, err.Error(), "value", op)
	}
	mu.Lock()
	n := len(conns)
	mu.Unlock()
	assert.Positive(t, n, "the client never connected to the fake bus")

	// A caller's own deadline is honoured too.
	k = &store.Keyring{Service: store.Service + "-timeouttest", Timeout: time.Minute}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = k.Get(cctx, "timeout-test")
	require.ErrorIs(t, err, store.ErrKeyringTimeout)
	assert.Less(t, time.Since(start), time.Second)
}
