package store_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// dying ends the calling goroutine (runtime.Goexit) at a chosen keyring
// call, the way kill -9 ends a process: deferred unlocks run (the kernel
// drops a dead process's flock), nothing after the call does.
type dying struct {
	secrets.Backend
	onSet, onDelete bool
}

func (d *dying) Set(ctx context.Context, id, secret string) (string, error) {
	hint, err := d.Backend.Set(ctx, id, secret)
	if d.onSet {
		d.onSet = false
		runtime.Goexit()
	}
	return hint, err
}

func (d *dying) Delete(ctx context.Context, id string) error {
	if d.onDelete {
		d.onDelete = false
		runtime.Goexit()
	}
	return d.Backend.Delete(ctx, id)
}

// crashIn runs one Update in a goroutine that may die half-way.
func crashIn(st *store.Store, fn func(tx *store.Tx) error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = st.Update(context.Background(), fn)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		panic("Update did not return")
	}
}

func addRepoEntry(tx *store.Tx, id, url string) {
	tx.Index.Entries = append(tx.Index.Entries, store.Entry{ID: id, URL: url, Kind: store.KindRepository, State: store.StateActive})
	tx.Changed()
}

func runJournalSuite(t *testing.T, newSecrets func(t *testing.T) secrets.Backend) {
	ctx := context.Background()
	journal := func(st *store.Store) string { return filepath.Join(st.Dir, store.JournalFile) }

	t.Run("CrashAfterSecretWritten", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		d := &dying{Backend: e.sec}
		st := &store.Store{Dir: e.st.Dir, Secrets: d}
		require.NoError(t, st.Update(ctx, func(tx *store.Tx) error { addRepoEntry(tx, "00000001", "https://bitbucket.org/ws/a"); return nil }))
		before, err := os.ReadFile(st.Path())
		require.NoError(t, err)

		orphan := uniqueID(t)
		d.onSet = true
		crashIn(st, func(tx *store.Tx) error {
			if _, err := tx.SetSecret(orphan, "orphan-secret"); err != nil {
				return err
			}
			addRepoEntry(tx, orphan, "https://bitbucket.org/ws/b")
			return nil
		})
		after, err := os.ReadFile(st.Path())
		require.NoError(t, err)
		assert.Equal(t, string(before), string(after), "a crash before the commit changed the index")
		_, _, err = e.sec.Get(ctx, orphan, "", nil)
		require.NoError(t, err, "the secret should be left over by the crash")
		require.FileExists(t, journal(st))

		// The next write, whatever it is, deletes the orphan.
		require.NoError(t, st.Update(ctx, func(tx *store.Tx) error { return nil }))
		_, _, err = e.sec.Get(ctx, orphan, "", nil)
		require.ErrorIs(t, err, secrets.ErrNotFound)
		assert.NoFileExists(t, journal(st))
	})

	t.Run("CrashBeforeSecretDeleted", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		d := &dying{Backend: e.sec}
		st := &store.Store{Dir: e.st.Dir, Secrets: d}
		id := uniqueID(t)
		require.NoError(t, st.Update(ctx, func(tx *store.Tx) error {
			if _, err := tx.SetSecret(id, "doomed-secret"); err != nil {
				return err
			}
			addRepoEntry(tx, id, "https://bitbucket.org/ws/a")
			return nil
		}))
		assert.NoFileExists(t, journal(st), "a completed write leaves no journal")

		d.onDelete = true
		crashIn(st, func(tx *store.Tx) error {
			tx.Index.Remove(id)
			tx.DeleteSecretAfterCommit(id)
			tx.Changed()
			return nil
		})
		// Killed at the delete, before the commit: the index still names
		// the entry, the journal records its removal.
		ix, err := st.Load()
		require.NoError(t, err)
		require.Len(t, ix.Entries, 1)
		_, _, err = e.sec.Get(ctx, id, "", nil)
		require.NoError(t, err, "the secret should be left over by the crash")

		rep, err := st.Repair(ctx, store.RepairOptions{DryRun: true})
		require.NoError(t, err)
		assert.Contains(t, rep.Removals, id, "a dry run reports the interrupted removal")
		_, _, err = e.sec.Get(ctx, id, "", nil)
		require.NoError(t, err, "a dry run deletes nothing")

		rep, err = st.Repair(ctx, store.RepairOptions{})
		require.NoError(t, err)
		assert.Contains(t, rep.Removals, id)
		ix, err = st.Load()
		require.NoError(t, err)
		assert.Empty(t, ix.Entries, "repair completes the removal")
		_, _, err = e.sec.Get(ctx, id, "", nil)
		require.ErrorIs(t, err, secrets.ErrNotFound)
		assert.NoFileExists(t, journal(st))
	})

	t.Run("DeleteFaultChangesNothing", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		id := uniqueID(t)
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error {
			if _, err := tx.SetSecret(id, "kept-secret"); err != nil {
				return err
			}
			addRepoEntry(tx, id, "https://bitbucket.org/ws/a")
			return nil
		}))
		before, err := os.ReadFile(e.st.Path())
		require.NoError(t, err)
		broken := &store.Store{Dir: e.st.Dir, Secrets: failingDelete{e.sec}}
		newID := uniqueID(t)
		err = broken.Update(ctx, func(tx *store.Tx) error { // a replacement, as add does
			if _, err := tx.SetSecret(newID, "new-secret"); err != nil {
				return err
			}
			tx.Index.Remove(id)
			tx.DeleteSecretAfterCommit(id)
			addRepoEntry(tx, newID, "https://bitbucket.org/ws/a")
			return nil
		})
		require.ErrorIs(t, err, secrets.ErrUnavailable)
		after, err := os.ReadFile(e.st.Path())
		require.NoError(t, err)
		assert.Equal(t, string(before), string(after), "the index changed")
		v, _, err := e.sec.Get(ctx, id, "", nil)
		require.NoError(t, err)
		assert.Equal(t, "kept-secret", v)
		// The new secret could not be rolled back (deletes fail): it is
		// journaled, and the next healthy write deletes it.
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error { return nil }))
		_, _, err = e.sec.Get(ctx, newID, "", nil)
		require.ErrorIs(t, err, secrets.ErrNotFound)
		assert.NoFileExists(t, journal(e.st))
	})

	t.Run("KeyringDownLeavesIndexUnchanged", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error { addRepoEntry(tx, "00000001", "https://bitbucket.org/ws/a"); return nil }))
		before, err := os.ReadFile(e.st.Path())
		require.NoError(t, err)
		broken := &store.Store{Dir: e.st.Dir, Secrets: failing{}}
		err = broken.Update(ctx, func(tx *store.Tx) error {
			if _, err := tx.SetSecret(uniqueID(t), "x"); err != nil {
				return err
			}
			addRepoEntry(tx, "00000002", "https://bitbucket.org/ws/b")
			return nil
		})
		require.ErrorIs(t, err, secrets.ErrUnavailable)
		after, err := os.ReadFile(e.st.Path())
		require.NoError(t, err)
		assert.Equal(t, string(before), string(after))
	})

	t.Run("ListAndRepairByListing", func(t *testing.T) {
		backend := newSecrets(t)
		st := &store.Store{Dir: filepath.Join(t.TempDir(), "bbtoken"), Secrets: backend}
		kept, stray := uniqueID(t), uniqueID(t)
		t.Cleanup(func() {
			_ = backend.Delete(ctx, kept)
			_ = backend.Delete(ctx, stray)
		})
		require.NoError(t, st.Update(ctx, func(tx *store.Tx) error {
			if _, err := tx.SetSecret(kept, "kept"); err != nil {
				return err
			}
			addRepoEntry(tx, kept, "https://bitbucket.org/ws/a")
			return nil
		}))
		// A secret nobody journaled (say, the keyring was restored from a
		// backup): only listing finds it.
		_, err := backend.Set(ctx, stray, "stray")
		require.NoError(t, err)
		ids, err := backend.List(ctx)
		require.NoError(t, err)
		assert.Contains(t, ids, kept)
		assert.Contains(t, ids, stray)

		rep, err := st.Repair(ctx, store.RepairOptions{})
		require.NoError(t, err)
		assert.Contains(t, rep.Unknown, stray)
		assert.NotContains(t, rep.Unknown, kept)
		assert.False(t, rep.Consistent(store.RepairOptions{}), "an unknown item needs the user's word")
		_, _, err = backend.Get(ctx, stray, "", nil)
		require.NoError(t, err, "unknown items stay without DeleteUnknown")

		rep, err = st.Repair(ctx, store.RepairOptions{DeleteUnknown: true})
		require.NoError(t, err)
		assert.Empty(t, rep.Missing)
		assert.True(t, rep.Consistent(store.RepairOptions{DeleteUnknown: true}))
		_, _, err = backend.Get(ctx, stray, "", nil)
		require.ErrorIs(t, err, secrets.ErrNotFound)
		_, _, err = backend.Get(ctx, kept, "", nil)
		require.NoError(t, err)
	})

	t.Run("RepairFindsMissingSecrets", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		id := uniqueID(t)
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error { addRepoEntry(tx, id, "https://bitbucket.org/ws/a"); return nil }))
		rep, err := e.st.Repair(ctx, store.RepairOptions{})
		require.NoError(t, err)
		require.Len(t, rep.Missing, 1)
		assert.Equal(t, id, rep.Missing[0].ID)
	})
}

type failing struct{}

func (failing) Get(context.Context, string, string, func(string) bool) (string, string, error) {
	return "", "", secrets.ErrUnavailable
}
func (failing) Set(context.Context, string, string) (string, error) {
	return "", secrets.ErrUnavailable
}
func (failing) Delete(context.Context, string) error   { return secrets.ErrUnavailable }
func (failing) List(context.Context) ([]string, error) { return nil, secrets.ErrUnavailable }

// failingDelete is a keyring whose deletes fail, as when the service dies.
type failingDelete struct{ secrets.Backend }

func (failingDelete) Delete(context.Context, string) error { return secrets.ErrUnavailable }

// deleteThenTimeout deletes and then reports a timeout, as a call that
// completes after the caller stopped waiting does.
type deleteThenTimeout struct{ secrets.Backend }

func (d deleteThenTimeout) Delete(ctx context.Context, id string) error {
	_ = d.Backend.Delete(ctx, id)
	return secrets.ErrTimeout
}

func TestDeleteTimeoutCompletesTheRemoval(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	dir := filepath.Join(t.TempDir(), "bbtoken")
	ok := &store.Store{Dir: dir, Secrets: mem}
	require.NoError(t, ok.Update(ctx, func(tx *store.Tx) error {
		if _, err := tx.SetSecret("0000000a", "secret"); err != nil {
			return err
		}
		addRepoEntry(tx, "0000000a", "https://bitbucket.org/ws/a")
		return nil
	}))
	slow := &store.Store{Dir: dir, Secrets: deleteThenTimeout{mem}}
	err := slow.Update(ctx, func(tx *store.Tx) error {
		tx.Index.Remove("0000000a")
		tx.DeleteSecretAfterCommit("0000000a")
		tx.Changed()
		return nil
	})
	require.ErrorIs(t, err, secrets.ErrTimeout)
	require.Contains(t, err.Error(), "the next write completes its removal")
	// The entry is still named, its secret gone: the journal says so, and
	// the next write finishes the removal rather than keep a dead entry.
	require.NoError(t, ok.Update(ctx, func(tx *store.Tx) error { return nil }))
	ix, err := ok.Load()
	require.NoError(t, err)
	require.Empty(t, ix.Entries)
	require.Zero(t, mem.Len())
}

// sabotaging makes the journal unwritable (a non-empty directory in its
// place) at its first Delete: the one after the index is saved.
type sabotaging struct {
	secrets.Backend
	dir  string
	done bool
}

func (s *sabotaging) Delete(ctx context.Context, id string) error {
	if !s.done {
		s.done = true
		j := filepath.Join(s.dir, store.JournalFile)
		_ = os.Remove(j)
		_ = os.MkdirAll(filepath.Join(j, "x"), 0o700)
	}
	return s.Backend.Delete(ctx, id)
}

// TestUpdateCommittedButJournalFailed: a write whose index is saved but
// whose journal cannot be updated afterwards says so with ErrCommitted,
// so callers know the change holds (and undo nothing).
func TestUpdateCommittedButJournalFailed(t *testing.T) {
	dir := t.TempDir()
	back := &sabotaging{Backend: memory.New(), dir: dir}
	st := &store.Store{Dir: dir, Secrets: back}
	ctx := context.Background()
	require.NoError(t, st.Update(ctx, func(tx *store.Tx) error {
		if _, err := tx.SetSecret("aaaa0001", "old-secret-value-0001"); err != nil {
			return err
		}
		addRepoEntry(tx, "aaaa0001", "https://bitbucket.org/ws/repo")
		return nil
	}))
	err := st.Update(ctx, func(tx *store.Tx) error {
		if _, err := tx.SetSecret("bbbb0002", "new-secret-value-0002"); err != nil {
			return err
		}
		tx.Index.Remove("aaaa0001")
		if err := tx.ReleaseAfterCommit("aaaa0001"); err != nil {
			return err
		}
		addRepoEntry(tx, "bbbb0002", "https://bitbucket.org/ws/repo")
		return nil
	})
	require.ErrorIs(t, err, store.ErrCommitted)
	require.NoError(t, os.RemoveAll(filepath.Join(dir, store.JournalFile)))
	ix, err := st.Load()
	require.NoError(t, err)
	require.Len(t, ix.Entries, 1)
	assert.Equal(t, "bbbb0002", ix.Entries[0].ID, "the change did not hold")
	v, _, err := back.Get(ctx, "bbbb0002", "", nil)
	require.NoError(t, err)
	assert.Equal(t, "new-secret-value-0002", v)
}
