package store_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
	"github.com/bbtoken/git-credential-bbtoken/internal/testkeyring"
)

// TestLeanLookupReadsGoKeyringItems checks both lean Secret Service
// reads against go-keyring's own Get on the same items, in the real
// service: godbus's lookup (the general path), and the keyring's direct
// read (ssread) with and without the item's path.
func TestLeanLookupReadsGoKeyringItems(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the lean lookup is the Secret Service's")
	}
	k := testkeyring.Require(t)
	ctx := context.Background()
	const service = store.Service + "-lookuptest"
	kr := &store.Keyring{Service: service, Timeout: k.Timeout}
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

		item, err := locate(ctx, kr, id)
		require.NoError(t, err)
		require.NotEmpty(t, item)
		holds := func(v string) bool { return v == secret }
		for _, hint := range []string{"", item} {
			got, err := kr.GetItem(ctx, id, hint, holds)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, secret, got)
		}
	}
	_, ok, err := store.Lookup(service, uniqueID(t))
	assert.True(t, ok)
	assert.ErrorIs(t, err, keyring.ErrNotFound)
	_, err = kr.GetItem(ctx, uniqueID(t), "", nil)
	assert.ErrorIs(t, err, store.ErrSecretNotFound)
	_, err = locate(ctx, kr, uniqueID(t))
	assert.ErrorIs(t, err, store.ErrSecretNotFound)
	// Another service's item with the same id is not ours, even when its
	// path is given: its value is not the one our entry's check names.
	id := uniqueID(t)
	require.NoError(t, keyring.Set(service+"-other", id, "other"))
	t.Cleanup(func() { _ = keyring.Delete(service+"-other", id) })
	otherItem, err := locate(ctx, &store.Keyring{Service: service + "-other", Timeout: k.Timeout}, id)
	require.NoError(t, err)
	_, _, err = store.Lookup(service, id)
	assert.ErrorIs(t, err, keyring.ErrNotFound)
	_, err = kr.GetItem(ctx, id, otherItem, func(v string) bool { return v == "ours" })
	assert.ErrorIs(t, err, store.ErrSecretNotFound)
}

// locate is Keyring.Locate, which only the Secret Service's keyring has
// (the tests calling it skip elsewhere, but must compile everywhere).
func locate(ctx context.Context, k *store.Keyring, id string) (string, error) {
	return any(k).(store.Locator).Locate(ctx, id)
}

// TestIndexRecordsItems: a secret written through a Tx for an entry with
// a check has its keyring item recorded in its entry (one without a check
// has none: get could not trust what it found there), and Store.Secret
// reads the right secret whether that record is right, stale or another
// entry's.
func TestIndexRecordsItems(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("items have paths in the Secret Service")
	}
	k := testkeyring.Require(t)
	ctx := context.Background()
	kr := &store.Keyring{Service: store.Service + "-itemtest", Timeout: k.Timeout}
	st := &store.Store{Dir: filepath.Join(t.TempDir(), "bbtoken"), Secrets: kr}
	checkA, err := store.NewCheck("ATCTT3xSecretA00123456789abcdefgh")
	require.NoError(t, err)
	checkB, err := store.NewCheck("ATCTT3xSecretB00123456789abcdefgh")
	require.NoError(t, err)
	var a, b, c string
	require.NoError(t, st.Update(ctx, func(tx *store.Tx) error {
		var err error
		if a, err = addEntry(tx, "https://bitbucket.org/ws/a", "ATCTT3xSecretA00123456789abcdefgh"); err != nil {
			return err
		}
		if b, err = addEntry(tx, "https://bitbucket.org/ws/b", "ATCTT3xSecretB00123456789abcdefgh"); err != nil {
			return err
		}
		if c, err = addEntry(tx, "https://bitbucket.org/ws/c", "ATCTT3xSecretC00123456789abcdefgh"); err != nil {
			return err
		}
		ea, _ := tx.Index.Find(a)
		eb, _ := tx.Index.Find(b)
		ea.Check, eb.Check = checkA, checkB
		return nil
	}))
	t.Cleanup(func() {
		_ = kr.Delete(ctx, a)
		_ = kr.Delete(ctx, b)
		_ = kr.Delete(ctx, c)
	})
	ix, err := st.Load()
	require.NoError(t, err)
	ea, _ := ix.Find(a)
	eb, _ := ix.Find(b)
	ec, _ := ix.Find(c)
	require.NotEmpty(t, ea.Item)
	require.NotEmpty(t, eb.Item)
	assert.NotEqual(t, ea.Item, eb.Item)
	assert.Empty(t, ec.Item, "no check, no item")
	stale, err := store.NewCheck("ATCTT3xSecretA0before0123456789abc")
	require.NoError(t, err)
	for _, item := range []string{ea.Item, eb.Item, "", "/org/freedesktop/secrets/collection/login/999999", "not a path"} {
		for _, check := range []string{"", checkA, stale} {
			e := *ea
			e.Item, e.Check = item, check
			got, err := st.Secret(ctx, &e)
			require.NoError(t, err, "item %q", item)
			assert.Equal(t, "ATCTT3xSecretA00123456789abcdefgh", got, "item %q", item)
		}
	}
	// Deleted: not found, even though the entry still names the item.
	require.NoError(t, kr.Delete(ctx, b))
	_, err = st.Secret(ctx, eb)
	assert.ErrorIs(t, err, store.ErrSecretNotFound)
}

// TestMemoryHasNoItems: backends without item paths leave Item empty.
func TestMemoryHasNoItems(t *testing.T) {
	st := &store.Store{Dir: filepath.Join(t.TempDir(), "bbtoken"), Secrets: store.NewMemory()}
	var id string
	require.NoError(t, st.Update(context.Background(), func(tx *store.Tx) error {
		var err error
		id, err = addEntry(tx, "https://bitbucket.org/ws/a", "ATCTT3xSecretA00123456789abcdefgh")
		return err
	}))
	ix, err := st.Load()
	require.NoError(t, err)
	e, _ := ix.Find(id)
	assert.Empty(t, e.Item)
	got, err := st.Secret(context.Background(), e)
	require.NoError(t, err)
	assert.Equal(t, "ATCTT3xSecretA00123456789abcdefgh", got)
}

// TestRepairIndexesOlderEntries: added tokens written by a version that
// kept no check or item get both from repair (a dry run only counts them),
// and are then read directly; stored credentials get no check.
func TestRepairIndexesOlderEntries(t *testing.T) {
	backends := map[string]func(t *testing.T) store.Secrets{
		"memory": func(*testing.T) store.Secrets { return store.NewMemory() },
	}
	if runtime.GOOS == "linux" {
		backends["keyring"] = func(t *testing.T) store.Secrets {
			k := testkeyring.Require(t)
			return &store.Keyring{Service: store.Service + "-repairtest", Timeout: k.Timeout}
		}
	}
	for name, newSecrets := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			sec := newSecrets(t)
			st := &store.Store{Dir: filepath.Join(t.TempDir(), "bbtoken"), Secrets: sec}
			var added, stored string
			require.NoError(t, st.Update(ctx, func(tx *store.Tx) error {
				var err error
				if added, err = addEntry(tx, "https://bitbucket.org/ws/a", "ATCTT3xAddedTokenValue"); err != nil {
					return err
				}
				if stored, err = addEntry(tx, "https://bitbucket.org/ws/b", "typed-password"); err != nil {
					return err
				}
				e, _ := tx.Index.Find(stored)
				e.Kind = store.KindStored
				return nil
			}))
			t.Cleanup(func() {
				_ = sec.Delete(ctx, added)
				_ = sec.Delete(ctx, stored)
			})
			// As an older version wrote it: no item, no check.
			require.NoError(t, st.Update(ctx, func(tx *store.Tx) error {
				for i := range tx.Index.Entries {
					tx.Index.Entries[i].Item, tx.Index.Entries[i].Check = "", ""
				}
				tx.Changed()
				return nil
			}))

			rep, err := st.Repair(ctx, store.RepairOptions{DryRun: true})
			require.NoError(t, err)
			assert.Equal(t, []string{added}, rep.Indexed)
			ix, err := st.Load()
			require.NoError(t, err)
			e, _ := ix.Find(added)
			assert.Empty(t, e.Check, "a dry run changes nothing")

			rep, err = st.Repair(ctx, store.RepairOptions{})
			require.NoError(t, err)
			assert.Equal(t, []string{added}, rep.Indexed)
			assert.True(t, rep.Consistent(store.RepairOptions{}))
			ix, err = st.Load()
			require.NoError(t, err)
			e, _ = ix.Find(added)
			assert.True(t, e.Holds("ATCTT3xAddedTokenValue"))
			_, canLocate := sec.(store.Locator)
			assert.Equal(t, canLocate, e.Item != "", "item recorded where the keyring has paths")
			got, err := st.Secret(ctx, e)
			require.NoError(t, err)
			assert.Equal(t, "ATCTT3xAddedTokenValue", got)
			s, _ := ix.Find(stored)
			assert.Empty(t, s.Check, "a typed password gets no check")

			rep, err = st.Repair(ctx, store.RepairOptions{})
			require.NoError(t, err)
			assert.Empty(t, rep.Indexed, "once is enough")
		})
	}
}

// TestLocateUnreachableBus: on a bus ssread cannot reach (here a TCP
// address), Locate knows no item and says so without an error, so that a
// write is not undone for it (get then searches through godbus).
func TestLocateUnreachableBus(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("items have paths in the Secret Service")
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "tcp:host=127.0.0.1,port=9")
	item, err := locate(context.Background(), store.NewKeyring(time.Second), "someid")
	require.NoError(t, err)
	assert.Empty(t, item)
}
