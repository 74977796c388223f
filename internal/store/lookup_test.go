package store_test

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
	"github.com/bbtoken/git-credential-bbtoken/internal/testkeyring"
)

// TestLeanLookupReadsGoKeyringItems checks the three-call Secret Service
// read against go-keyring's own Get on the same items, in the real service.
func TestLeanLookupReadsGoKeyringItems(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the lean lookup is the Secret Service's")
	}
	testkeyring.Require(t)
	const service = store.Service + "-lookuptest"
	for _, secret := range []string{"ATCTT3xPlainToken0123", `{"password":"p","oauth_refresh_token":"r"}`, "ünïcode ✓", string(make([]byte, 3000))} {
		id := uniqueID(t)
		require.NoError(t, keyring.Set(service, id, secret))
		t.Cleanup(func() { _ = keyring.Delete(service, id) })

		want, err := keyring.Get(service, id)
		require.NoError(t, err)
		got, ok, err := store.Lookup(service, id)
		require.NoError(t, err)
		require.True(t, ok, "an unlocked item must be read on the lean path")
		assert.Equal(t, want, got)
		assert.Equal(t, secret, got)
	}
	_, ok, err := store.Lookup(service, uniqueID(t))
	assert.True(t, ok)
	assert.ErrorIs(t, err, keyring.ErrNotFound)
	// Another service's item with the same id is not ours.
	id := uniqueID(t)
	require.NoError(t, keyring.Set(service+"-other", id, "other"))
	t.Cleanup(func() { _ = keyring.Delete(service+"-other", id) })
	_, _, err = store.Lookup(service, id)
	assert.ErrorIs(t, err, keyring.ErrNotFound)
}
