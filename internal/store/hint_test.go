package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

const (
	tokA = "ATCTT3xSecreZq8vR2mK9tW4xN7pL3sJ6hF1dG5tA00123456789abcdefgh"
	tokB = "ATCTT3xSecreZq8vR2mK9tW4xN7pL3sJ6hF1dG5tB00123456789abcdefgh"
	tokC = "ATCTT3xSecreZq8vR2mK9tW4xN7pL3sJ6hF1dG5tC00123456789abcdefgh"
)

// TestHintsRecordedAndChecked: a secret written through a Tx has the
// backend's hint recorded in its entry, and Store.Secret reads the right
// secret whether that hint is right, stale, another entry's, or bogus, and
// whatever the check says: a hint is only ever a shortcut.
func TestHintsRecordedAndChecked(t *testing.T) {
	for name, newBackend := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			sec := newBackend(t)
			st := &store.Store{Dir: filepath.Join(t.TempDir(), "bbtoken"), Secrets: sec}
			var a, b, c string
			require.NoError(t, st.Update(ctx, func(tx *store.Tx) error {
				var err error
				if a, err = addEntry(tx, "https://bitbucket.org/ws/a", tokA); err != nil {
					return err
				}
				if b, err = addEntry(tx, "https://bitbucket.org/ws/b", tokB); err != nil {
					return err
				}
				c, err = addEntry(tx, "https://bitbucket.org/ws/c", tokC)
				return err
			}))
			t.Cleanup(func() {
				for _, id := range []string{a, b, c} {
					_ = sec.Delete(ctx, id)
				}
			})
			ix, err := st.Load()
			require.NoError(t, err)
			ea, _ := ix.Find(a)
			eb, _ := ix.Find(b)
			_, _, wantHint := sec.Get(ctx, a, "", nil)
			require.NoError(t, wantHint)
			_, hintA, _ := sec.Get(ctx, a, "", nil)
			assert.Equal(t, hintA, ea.Hint, "the hint Set returned is recorded")
			if name != "memory" {
				require.NotEmpty(t, ea.Hint)
				assert.NotEqual(t, ea.Hint, eb.Hint)
			}
			staleCheck, err := store.NewCheck("ATCTT3xSecreZq8vR2mK9tW4xN7pL3sJ6hF1dGtA0before0123456789abc")
			require.NoError(t, err)
			for _, hint := range []string{ea.Hint, eb.Hint, "", "/org/freedesktop/secrets/collection/login/999999", "not a path"} {
				for _, check := range []string{"", ea.Check, staleCheck} {
					e := *ea
					e.Hint, e.Check = hint, check
					got, err := st.Secret(ctx, &e)
					require.NoError(t, err, "hint %q", hint)
					assert.Equal(t, tokA, got, "hint %q", hint)
				}
			}
			// Deleted: not found, even though the entry still names it.
			require.NoError(t, sec.Delete(ctx, b))
			_, err = st.Secret(ctx, eb)
			assert.ErrorIs(t, err, secrets.ErrNotFound)
		})
	}
}

// TestRepairIndexesOlderEntries: added tokens written by a version that
// kept no check or hint get both from repair (a dry run only counts them),
// and are then read directly; stored credentials get no check; an entry
// of the version before the secret backends (its hint under "item") is
// read as it was.
func TestRepairIndexesOlderEntries(t *testing.T) {
	for name, newBackend := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			sec := newBackend(t)
			st := &store.Store{Dir: filepath.Join(t.TempDir(), "bbtoken"), Secrets: sec}
			var added, stored string
			require.NoError(t, st.Update(ctx, func(tx *store.Tx) error {
				var err error
				if added, err = addEntry(tx, "https://bitbucket.org/ws/a", "ATCTT3xAddedZq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yTZq8vR2TokenValue"); err != nil {
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
			// As an older version wrote it: no hint, no check.
			require.NoError(t, st.Update(ctx, func(tx *store.Tx) error {
				for i := range tx.Index.Entries {
					tx.Index.Entries[i].Hint, tx.Index.Entries[i].Check = "", ""
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
			assert.True(t, e.CheckMatches("ATCTT3xAddedZq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yTZq8vR2TokenValue"))
			_, found, err := sec.Get(ctx, added, "", nil)
			require.NoError(t, err)
			assert.Equal(t, found, e.Hint, "the hint recorded is where the backend keeps it")
			got, err := st.Secret(ctx, e)
			require.NoError(t, err)
			assert.Equal(t, "ATCTT3xAddedZq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yTZq8vR2TokenValue", got)
			s, _ := ix.Find(stored)
			assert.Empty(t, s.Check, "a typed password gets no check")

			rep, err = st.Repair(ctx, store.RepairOptions{})
			require.NoError(t, err)
			assert.Empty(t, rep.Indexed, "once is enough")
		})
	}
}

// TestLegacyItemIsTheHint: the version before the secret backends wrote
// the hint as "item"; it is read as the hint, and written back as one.
func TestLegacyItemIsTheHint(t *testing.T) {
	st := &store.Store{Dir: t.TempDir(), Secrets: memory.New()}
	writeIndex(t, st, `{"version":1,"entries":[
{"id":"0000000a","url":"https://bitbucket.org/ws/a","kind":"repository","item":"/org/freedesktop/secrets/collection/login/7","created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}
]}
`, 0o600)
	for _, load := range []func() (*store.Index, error){st.Load, func() (*store.Index, error) { return st.LoadScopes([]string{"https://bitbucket.org/ws/a"}) }} {
		ix, err := load()
		require.NoError(t, err)
		require.Len(t, ix.Entries, 1)
		assert.Equal(t, "/org/freedesktop/secrets/collection/login/7", ix.Entries[0].Hint)
		assert.Empty(t, ix.Entries[0].LegacyItem)
	}
}
