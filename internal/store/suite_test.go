package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

func TestStoreWithMemory(t *testing.T) {
	runSuite(t, func(t *testing.T) secrets.Backend { return memory.New() })
}

// tracked wraps a Secrets backend: it remembers every ID written so the
// test can clean the keyring up, and runs hooks before each write and
// delete so tests can check what the index held at that moment.
type tracked struct {
	secrets.Backend
	mu                      sync.Mutex
	ids                     map[string]bool
	beforeSet, beforeDelete func(id string)
}

func (s *tracked) Set(ctx context.Context, id, secret string) (string, error) {
	s.mu.Lock()
	s.ids[id] = true
	hook := s.beforeSet
	s.mu.Unlock()
	if hook != nil {
		hook(id)
	}
	return s.Backend.Set(ctx, id, secret)
}

func (s *tracked) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	hook := s.beforeDelete
	s.mu.Unlock()
	if hook != nil {
		hook(id)
	}
	return s.Backend.Delete(ctx, id)
}

func (s *tracked) setHooks(beforeSet, beforeDelete func(string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beforeSet, s.beforeDelete = beforeSet, beforeDelete
}

// env is one test's store over a fresh directory.
type env struct {
	st  *store.Store
	sec *tracked
}

func newEnv(t *testing.T, newSecrets func(t *testing.T) secrets.Backend) *env {
	sec := &tracked{Backend: newSecrets(t), ids: map[string]bool{}}
	t.Cleanup(func() {
		for id := range sec.ids {
			_ = sec.Backend.Delete(context.Background(), id)
		}
	})
	return &env{st: &store.Store{Dir: filepath.Join(t.TempDir(), "bbtoken"), Secrets: sec}, sec: sec}
}

func uniqueID(t *testing.T) string {
	var b [6]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return "test-" + hex.EncodeToString(b[:])
}

// addEntry is the usual Tx: a secret first, then the entry naming it.
func addEntry(tx *store.Tx, url, secret string) (string, error) {
	id, err := tx.NewID()
	if err != nil {
		return "", err
	}
	hint, err := tx.SetSecret(id, secret)
	if err != nil {
		return "", err
	}
	check, err := store.NewCheck(secret)
	if err != nil {
		return "", err
	}
	now := time.Date(2026, 8, 15, 12, 0, 0, 0, time.UTC)
	tx.Index.Entries = append(tx.Index.Entries, store.Entry{
		ID: id, URL: url, Kind: store.KindAPI, State: store.StateActive, Created: now, Updated: now,
		Hint: hint, Check: check,
	})
	tx.Changed()
	return id, nil
}

func writeIndex(t *testing.T, st *store.Store, data string, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.MkdirAll(st.Dir, 0o700))
	require.NoError(t, os.WriteFile(st.Path(), []byte(data), 0o600))
	require.NoError(t, os.Chmod(st.Path(), mode))
}

func runSuite(t *testing.T, newSecrets func(t *testing.T) secrets.Backend) {
	ctx := context.Background()
	t.Run("Journal", func(t *testing.T) { runJournalSuite(t, newSecrets) })

	t.Run("LoadMissingIndex", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		ix, err := e.st.Load()
		require.NoError(t, err)
		assert.Equal(t, &store.Index{Version: store.IndexVersion}, ix)
		_, err = os.Stat(e.st.Dir)
		assert.True(t, os.IsNotExist(err), "Load created the directory")
	})

	t.Run("UpdateWithoutChangeWritesNothing", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		called := false
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error {
			called = true
			assert.Equal(t, store.IndexVersion, tx.Index.Version)
			return nil
		}))
		assert.True(t, called)
		_, err := os.Stat(e.st.Path())
		assert.True(t, os.IsNotExist(err), "an unchanged index was written")
	})

	t.Run("PrivateFilesAndRoundTrip", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		e.st.Dir = filepath.Join(e.st.Dir, "nested", "config")
		created := time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC)
		want := store.Entry{
			ID: "0a1b2c3d", URL: "https://bitbucket.org/ws/repo", Kind: store.KindStored,
			Username: "", UsernameSet: true, Label: "l", Expires: "2026-09-01T00:00:00Z",
			State: store.StateRejected, RejectedFor: []string{"ws/a", "ws/b"}, AuthType: "Bearer",
			Format: store.SecretJSON, Created: created, Updated: created.Add(time.Hour),
		}
		hosts := map[string]store.HostConfig{"bb.example.com": {Flavor: "datacenter", HelperValue: "bbtoken", AddedUseHTTP: true, PrevUseHTTP: "false"}}
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error {
			tx.Index.Entries = append(tx.Index.Entries, want)
			tx.Index.Hosts = hosts
			tx.Changed()
			return nil
		}))

		ix, err := e.st.Load()
		require.NoError(t, err)
		assert.Equal(t, &store.Index{Version: store.IndexVersion, Hosts: hosts, Entries: []store.Entry{want}}, ix)

		if runtime.GOOS != "windows" {
			for path, mode := range map[string]os.FileMode{
				e.st.Dir:                                0o700 | os.ModeDir,
				filepath.Dir(e.st.Dir):                  0o700 | os.ModeDir,
				e.st.Path():                             0o600,
				filepath.Join(e.st.Dir, store.LockFile): 0o600,
			} {
				st, err := os.Stat(path)
				require.NoError(t, err)
				assert.Equal(t, mode, st.Mode(), path)
			}
		}
		// Nothing but the index and the lock: no temp file left behind.
		names, err := os.ReadDir(e.st.Dir)
		require.NoError(t, err)
		var got []string
		for _, n := range names {
			got = append(got, n.Name())
		}
		assert.ElementsMatch(t, []string{store.IndexFile, store.LockFile}, got)

		// A rewrite replaces the file atomically (a new inode) and keeps it private.
		before, err := os.Stat(e.st.Path())
		require.NoError(t, err)
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error { tx.Changed(); return nil }))
		after, err := os.Stat(e.st.Path())
		require.NoError(t, err)
		assert.False(t, os.SameFile(before, after), "the index was rewritten in place")
		if runtime.GOOS != "windows" {
			assert.Equal(t, os.FileMode(0o600), after.Mode())
		}
	})

	t.Run("SecretsBeforeIndexAndDeletesAfter", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		var violations []string
		referenced := func(id string) bool {
			ix, err := e.st.Load()
			if err != nil {
				violations = append(violations, err.Error())
				return false
			}
			return ix.HasID(id)
		}
		e.sec.setHooks(
			func(id string) {
				if referenced(id) {
					violations = append(violations, "set "+id+" while the index already names it")
				}
			},
			func(id string) {
				// A secret may go before the index stops naming its entry
				// (a keyring fault then changes nothing), but only once the
				// journal records the removal, so a crash in between is
				// completed by the next write.
				journal, _ := os.ReadFile(filepath.Join(e.st.Dir, store.JournalFile))
				if referenced(id) && !strings.Contains(string(journal), `"-`+id+`"`) {
					violations = append(violations, "deleted "+id+" while the index names it and the journal does not record its removal")
				}
			})

		var id string
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error {
			var err error
			id, err = addEntry(tx, "https://bitbucket.org", "secret-one")
			if err != nil {
				return err
			}
			v, err := tx.Secret(&store.Entry{ID: id})
			require.NoError(t, err)
			assert.Equal(t, "secret-one", v)
			return nil
		}))
		v, err := e.st.Secret(ctx, &store.Entry{ID: id})
		require.NoError(t, err)
		assert.Equal(t, "secret-one", v)

		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error {
			assert.True(t, tx.Index.Remove(id))
			tx.DeleteSecretAfterCommit(id)
			_, err := tx.Secret(&store.Entry{ID: id})
			require.NoError(t, err, "deleted before the commit")
			tx.Changed()
			return nil
		}))
		_, err = e.st.Secret(ctx, &store.Entry{ID: id})
		require.ErrorIs(t, err, secrets.ErrNotFound)
		assert.Empty(t, violations)
	})

	t.Run("NoDeleteWithoutCommit", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		var a, b string
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error {
			var err error
			if a, err = addEntry(tx, "https://bitbucket.org/a", "secret-a"); err != nil {
				return err
			}
			b, err = addEntry(tx, "https://bitbucket.org/b", "secret-b")
			return err
		}))
		// A Tx that saves nothing deletes nothing; one that saves an index
		// still naming an entry keeps that entry's secret.
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error {
			tx.DeleteSecretAfterCommit(a)
			return nil
		}))
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error {
			tx.DeleteSecretAfterCommit(b)
			tx.Changed()
			return nil
		}))
		for id, want := range map[string]string{a: "secret-a", b: "secret-b"} {
			v, err := e.st.Secret(ctx, &store.Entry{ID: id})
			require.NoError(t, err, "an entry lost its secret")
			assert.Equal(t, want, v)
		}
	})

	t.Run("RollbackOnError", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		var kept string
		require.NoError(t, e.st.Update(ctx, func(tx *store.Tx) error {
			var err error
			kept, err = addEntry(tx, "https://bitbucket.org", "kept-secret")
			return err
		}))
		before, err := os.ReadFile(e.st.Path())
		require.NoError(t, err)

		errBoom := errors.New("boom")
		var written string
		err = e.st.Update(ctx, func(tx *store.Tx) error {
			var err error
			written, err = addEntry(tx, "https://bitbucket.org/ws", "rolled-back-secret")
			if err != nil {
				return err
			}
			tx.Index.Remove(kept)
			tx.DeleteSecretAfterCommit(kept)
			return fmt.Errorf("wrapped: %w", errBoom)
		})
		require.ErrorIs(t, err, errBoom)

		after, err := os.ReadFile(e.st.Path())
		require.NoError(t, err)
		assert.Equal(t, string(before), string(after), "the index changed")
		_, err = e.st.Secret(ctx, &store.Entry{ID: written})
		require.ErrorIs(t, err, secrets.ErrNotFound, "the secret written by the failed Tx is left over")
		v, err := e.st.Secret(ctx, &store.Entry{ID: kept})
		require.NoError(t, err, "a secret scheduled for deletion went although the Tx failed")
		assert.Equal(t, "kept-secret", v)
	})

	t.Run("IndexNewer", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		const data = `{"version": 2, "entries": [{"id": "0a0b0c0d", "url": "https://bitbucket.org/ws", "kind": "workspace", "something_new": 1}], "something_new": true}`
		writeIndex(t, e.st, data, 0o600)
		// Read-only: what we understand is read, for get and list.
		ix, err := e.st.Load()
		require.NoError(t, err)
		assert.Equal(t, 2, ix.Newer())
		require.Len(t, ix.Entries, 1)
		assert.Equal(t, "0a0b0c0d", ix.Entries[0].ID)
		called := false
		err = e.st.Update(ctx, func(tx *store.Tx) error { called = true; tx.Changed(); return nil })
		require.ErrorIs(t, err, store.ErrIndexNewer)
		assert.Contains(t, err.Error(), e.st.Path())
		assert.Contains(t, err.Error(), "read-only")
		assert.False(t, called)
		got, err := os.ReadFile(e.st.Path())
		require.NoError(t, err)
		assert.Equal(t, data, string(got), "a newer index was rewritten")
	})

	t.Run("IndexDamaged", func(t *testing.T) {
		for name, data := range map[string]string{
			"empty":                 "",
			"not JSON":              "tokens go here",
			"truncated":             `{"version": 1, "entries": [`,
			"array":                 `[]`,
			"no version":            `{"entries": []}`,
			"version zero":          `{"version": 0, "entries": []}`,
			"version as string":     `{"version": "1"}`,
			"negative version":      `{"version": -1}`,
			"trailing garbage":      `{"version": 1} {}`,
			"entries not a list":    `{"version": 1, "entries": {}}`,
			"entry without id":      `{"version": 1, "entries": [{"url": "https://bitbucket.org", "kind": "api"}]}`,
			"entry without url":     `{"version": 1, "entries": [{"id": "a", "kind": "api"}]}`,
			"entry without kind":    `{"version": 1, "entries": [{"id": "a", "url": "https://bitbucket.org"}]}`,
			"entry with bad fields": `{"version": 1, "entries": [{"id": 1, "url": "https://bitbucket.org", "kind": "api"}]}`,
		} {
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, newSecrets)
				writeIndex(t, e.st, data, 0o600)
				_, err := e.st.Load()
				require.ErrorIs(t, err, store.ErrIndexDamaged)
				assert.Contains(t, err.Error(), e.st.Path())
				err = e.st.Update(ctx, func(tx *store.Tx) error { tx.Changed(); return nil })
				require.ErrorIs(t, err, store.ErrIndexDamaged)
				got, err := os.ReadFile(e.st.Path())
				require.NoError(t, err)
				assert.Equal(t, data, string(got), "a damaged index was replaced")
			})
		}
	})

	t.Run("IndexUnsafe", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("mode bits do not guard files on Windows")
		}
		const data = `{"version": 1, "entries": []}`
		for _, tt := range []struct {
			mode os.FileMode
			safe bool
		}{
			{0o600, true}, {0o400, true}, {0o640, true}, {0o644, true},
			{0o620, false}, {0o602, false}, {0o622, false}, {0o666, false}, {0o660, false}, {0o606, false},
		} {
			t.Run(tt.mode.String(), func(t *testing.T) {
				e := newEnv(t, newSecrets)
				writeIndex(t, e.st, data, tt.mode)
				_, err := e.st.Load()
				uerr := e.st.Update(ctx, func(tx *store.Tx) error { return nil })
				if tt.safe {
					require.NoError(t, err)
					require.NoError(t, uerr)
					return
				}
				require.ErrorIs(t, err, store.ErrIndexUnsafe)
				assert.Contains(t, err.Error(), e.st.Path())
				assert.Contains(t, err.Error(), "chmod 600")
				require.ErrorIs(t, uerr, store.ErrIndexUnsafe)
			})
		}
	})

	t.Run("ConcurrentUpdates", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		const workers, each = 16, 4
		stop := make(chan struct{})
		readerErr := make(chan error, 1)
		go func() { // readers never see a half-written index
			defer close(readerErr)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := e.st.Load(); err != nil {
					readerErr <- err
					return
				}
			}
		}()
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					err := e.st.Update(ctx, func(tx *store.Tx) error {
						_, err := addEntry(tx, fmt.Sprintf("https://bitbucket.org/w%d/r%d", w, i), fmt.Sprintf("secret-%d-%d", w, i))
						return err
					})
					if err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.NoError(t, <-readerErr)

		ix, err := e.st.Load()
		require.NoError(t, err)
		require.Len(t, ix.Entries, workers*each, "lost updates")
		seen := map[string]bool{}
		for _, en := range ix.Entries {
			assert.False(t, seen[en.ID], "duplicate id %s", en.ID)
			seen[en.ID] = true
			var w, i int
			_, err := fmt.Sscanf(en.URL, "https://bitbucket.org/w%d/r%d", &w, &i)
			require.NoError(t, err)
			v, err := e.st.Secret(ctx, &en)
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprintf("secret-%d-%d", w, i), v)
		}
	})

	t.Run("LockTimeout", func(t *testing.T) {
		e := newEnv(t, newSecrets)
		locked, release := make(chan struct{}), make(chan struct{})
		done := make(chan error)
		go func() {
			done <- e.st.Update(ctx, func(tx *store.Tx) error {
				close(locked)
				<-release
				return nil
			})
		}()
		<-locked
		other := &store.Store{Dir: e.st.Dir, Secrets: e.sec, LockTimeout: 100 * time.Millisecond}
		start := time.Now()
		called := false
		err := other.Update(ctx, func(tx *store.Tx) error { called = true; return nil })
		require.ErrorIs(t, err, store.ErrLocked)
		assert.False(t, called)
		assert.Less(t, time.Since(start), 2*time.Second)
		// Readers are not blocked by a writer.
		_, err = other.Load()
		require.NoError(t, err)
		close(release)
		require.NoError(t, <-done)
		require.NoError(t, other.Update(ctx, func(tx *store.Tx) error { return nil }))
	})
}
