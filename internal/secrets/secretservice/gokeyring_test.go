//go:build linux

package secretservice_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/secretservice"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/secretstest"
)

// TestReadsWhatOlderVersionsWrote: versions before this client wrote
// through go-keyring (attributes service and username, the login
// collection); what they wrote is read, listed and deleted as it is, in
// the real Secret Service.
func TestReadsWhatOlderVersionsWrote(t *testing.T) {
	requireService(t)
	const svc = secrets.Service + "-gokeyring"
	b := &secretservice.Backend{Service: svc, Timeout: 10 * time.Second}
	t.Cleanup(func() { _ = b.Close() })
	for _, secret := range []string{"ATCTT3xPlainToken0123", `{"password":"p","oauth_refresh_token":"r"}`, "ünïcode ✓", strings.Repeat("long-", 600)} {
		id := secretstest.ID(t)
		require.NoError(t, keyring.Set(svc, id, secret))
		t.Cleanup(func() { _ = keyring.Delete(svc, id) })
		got, found, err := b.Get(ctx(t), id, "", nil)
		require.NoError(t, err)
		assert.Equal(t, secret, got)
		require.NotEmpty(t, found)
		got, _, err = b.Get(ctx(t), id, found, is(secret))
		require.NoError(t, err)
		assert.Equal(t, secret, got)
		ids, err := b.List(ctx(t))
		require.NoError(t, err)
		assert.True(t, slices.Contains(ids, id))
	}
	// The same id under another service is not ours, even at its path.
	id := secretstest.ID(t)
	require.NoError(t, keyring.Set(svc+"-other", id, "other"))
	t.Cleanup(func() { _ = keyring.Delete(svc+"-other", id) })
	_, _, err := b.Get(ctx(t), id, "", nil)
	assert.ErrorIs(t, err, secrets.ErrNotFound)
	// What this client writes, go-keyring reads (a downgrade keeps working).
	id = secretstest.ID(t)
	_, err = b.Set(ctx(t), id, "written here")
	require.NoError(t, err)
	v, err := keyring.Get(svc, id)
	require.NoError(t, err)
	assert.Equal(t, "written here", v)
	require.NoError(t, b.Delete(ctx(t), id))
	_, err = keyring.Get(svc, id)
	assert.ErrorIs(t, err, keyring.ErrNotFound)
}
