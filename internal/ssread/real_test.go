//go:build linux

package ssread_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"

	"github.com/bbtoken/git-credential-bbtoken/internal/ssread"
	"github.com/bbtoken/git-credential-bbtoken/internal/testkeyring"
)

// TestReadRealKeyring reads, with and without the item's path, what
// go-keyring wrote to the real Secret Service, and agrees with go-keyring's
// own Get.
func TestReadRealKeyring(t *testing.T) {
	testkeyring.Require(t)
	for _, secret := range []string{"ATCTT3xPlainToken0123", `{"password":"p","oauth_refresh_token":"r"}`, "ünïcode ✓", string(make([]byte, 3000))} {
		id := uniqueID(t)
		require.NoError(t, keyring.Set(service, id, secret))
		t.Cleanup(func() { _ = keyring.Delete(service, id) })
		want, err := keyring.Get(service, id)
		require.NoError(t, err)

		path, err := ssread.Find(ctx(t), service, id)
		require.NoError(t, err)
		for _, hint := range []string{"", string(path)} {
			got, item, err := ssread.Read(ctx(t), service, id, dbusPath(hint), is(secret))
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, secret, got)
			assert.Equal(t, path, item)
		}
	}
	// Another item's path as the hint: its value is not the one wanted.
	a, b := uniqueID(t), uniqueID(t)
	require.NoError(t, keyring.Set(service, a, "value-a"))
	t.Cleanup(func() { _ = keyring.Delete(service, a) })
	require.NoError(t, keyring.Set(service, b, "value-b"))
	t.Cleanup(func() { _ = keyring.Delete(service, b) })
	pathB, err := ssread.Find(ctx(t), service, b)
	require.NoError(t, err)
	got, _, err := ssread.Read(ctx(t), service, a, pathB, is("value-a"))
	require.NoError(t, err)
	assert.Equal(t, "value-a", got)

	// A deleted item's path: not found, never another item's secret.
	require.NoError(t, keyring.Delete(service, b))
	_, _, err = ssread.Read(ctx(t), service, b, pathB, is("value-b"))
	assert.ErrorIs(t, err, ssread.ErrNotFound)
	_, err = ssread.Find(ctx(t), service, b)
	assert.ErrorIs(t, err, ssread.ErrNotFound)
	// The same id under another service is not ours.
	c := uniqueID(t)
	require.NoError(t, keyring.Set(service+"-other", c, "other"))
	t.Cleanup(func() { _ = keyring.Delete(service+"-other", c) })
	_, _, err = ssread.Read(ctx(t), service, c, "", nil)
	assert.ErrorIs(t, err, ssread.ErrNotFound)
}
