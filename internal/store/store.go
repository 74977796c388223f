package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/crashpoint"
	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/regfile"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
)

// Errors about the index file.
var (
	ErrIndexDamaged = errors.New("token index is damaged")
	ErrIndexNewer   = errors.New("token index was written by a newer git-credential-bbtoken")
	ErrIndexUnsafe  = errors.New("token index is writable by other users")
	// ErrIndexReadable is an index that other users can read while it
	// holds checks. It is unsafe too: errors.Is(err, ErrIndexUnsafe).
	ErrIndexReadable error = errReadable{}
	ErrLocked              = errors.New("token index is locked by another process")
	// ErrSecretDelete: an earlier write that was interrupted (killed, or
	// the keyring failed) left a secret to delete, which the keyring
	// still refuses; every write tries again first.
	ErrSecretDelete = errors.New("an interrupted earlier write left a secret to delete")
	// ErrCommitted: the index was saved, and what failed afterwards (the
	// journal's bookkeeping) is left for the next write: the change holds.
	ErrCommitted = errors.New("saved, but the journal could not be updated (the next write does it)")
)

// IndexFile and LockFile are the names inside the config directory.
const (
	IndexFile = "tokens.json"
	LockFile  = "tokens.lock"
	// LifecycleLockFile serialises create, rotate, revoke and repair's
	// finishing of them (see LockLifecycle).
	LifecycleLockFile = "tokens.lifecycle.lock"
)

// LockLifecycle takes the lock that create, rotate, revoke and repair
// hold across their REST calls and grace periods: one at a time, so that
// none takes another's work in progress for a crash's leftovers. It is
// not the index's lock, which git's own get and store need meanwhile; a
// killed holder's lock goes with it.
func (s *Store) LockLifecycle(timeout time.Duration) (func(), error) {
	return s.lockIn(LifecycleLockFile, timeout)
}

// lockIn takes the lock file name in the config directory, which it
// creates (private) if need be.
func (s *Store) lockIn(name string, timeout time.Duration) (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", s.Dir, err)
	}
	return lock(filepath.Join(s.Dir, name), timeout)
}

// Store combines the index file in Dir with the places that keep the
// secrets its entries name: the keyring (Secrets), the password store
// (Pass; nil when none is set up) and the environment (Getenv).
type Store struct {
	Dir         string
	Secrets     secrets.Backend
	Pass        *passstore.Store
	NoPass      error               // why Pass is nil, if it is
	Getenv      func(string) string // nil: os.Getenv
	LockTimeout time.Duration
	// Warn gets what went wrong without failing (a password store change
	// made but not committed to its git repository); nil drops it.
	Warn func(msg string)
}

// Env reads a variable of the environment env entries use.
func (s *Store) Env(name string) string {
	if s.Getenv != nil {
		return s.Getenv(name)
	}
	return os.Getenv(name)
}

// ErrEnvUnset: an env entry's variable is unset or empty here.
var ErrEnvUnset = errors.New("environment variable unset or empty")

// ErrNoPass: a pass entry, and no password store is set up here.
var ErrNoPass = errors.New("no password store here")

// NoPassError is ErrNoPass with the reason, if known.
func (s *Store) NoPassError() error {
	if s.NoPass != nil {
		return fmt.Errorf("%w: %w", ErrNoPass, s.NoPass)
	}
	return ErrNoPass
}

// DefaultDir is the per-user config directory ($XDG_CONFIG_HOME on Linux).
func DefaultDir() (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory: %w", err)
	}
	return filepath.Join(base, "git-credential-bbtoken"), nil
}

// Path is the index file's path.
func (s *Store) Path() string { return filepath.Join(s.Dir, IndexFile) }

// Target is where the index's content lives (see target).
func (s *Store) Target() (string, error) { return s.target() }

// target is where the index's content lives: Path, or, when a dotfile
// manager made Path a symbolic link, the file the link resolves to. Reads
// follow the link and writes replace that file, so the link stays; the
// file's directory is held to the same rules as Dir. A link that leads
// nowhere is an error, not an empty index: the file may be on a volume
// that is not mounted.
func (s *Store) target() (string, error) {
	if st, err := os.Stat(s.Dir); err == nil && !st.IsDir() {
		return "", fmt.Errorf("reading token index: %s is %s, not a directory: move it aside (e.g. mv %s %s.bad)", s.Dir, regfile.What(st.Mode()), s.Dir, s.Dir)
	}
	path := s.Path()
	st, err := os.Lstat(path)
	if err != nil || st.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	t, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("reading token index: %s is a symbolic link that does not resolve (%v): restore what it points to, or remove it to start a new index", path, linkError(err))
	}
	return t, nil
}

// Load reads a consistent snapshot of the index without locking: writers
// replace the file atomically, so readers (get, list) never wait. A missing
// file is an empty index.
func (s *Store) Load() (*Index, error) {
	ix, _, err := s.load()
	return ix, err
}

func (s *Store) load() (*Index, []byte, error) {
	path, err := s.target()
	if err != nil {
		return nil, nil, err
	}
	f, err := regfile.Open(path, regfile.FollowLinks)
	if errors.Is(err, fs.ErrNotExist) {
		return &Index{Version: IndexVersion}, nil, nil
	}
	if err != nil {
		return nil, nil, s.openError(path, err)
	}
	defer f.Close()
	st, err := s.checkPrivate(f, path)
	if err != nil {
		return nil, nil, err
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, nil, fmt.Errorf("reading token index %s: %w", path, err)
	}
	raw := buf.Bytes()
	var probe struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v (it was not replaced; move it aside to start over, secrets stay in the keyring)", ErrIndexDamaged, path, err)
	}
	newer := probe.Version > IndexVersion
	if probe.Version < 1 {
		return nil, nil, fmt.Errorf("%w: %s has no format version", ErrIndexDamaged, path)
	}
	var ix Index
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&ix); err != nil {
		if newer {
			return nil, nil, s.newerError(probe.Version)
		}
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrIndexDamaged, path, err)
	}
	if newer {
		// Read what we understand; never write it back (see Update).
		ix.newer = probe.Version
	}
	seen := make(map[string]int, len(ix.Entries))
	for i := range ix.Entries {
		e := &ix.Entries[i]
		e.upgrade()
		if e.ID == "" || e.URL == "" || e.Kind == "" {
			return nil, nil, fmt.Errorf("%w: %s: entry %d lacks id, url or kind", ErrIndexDamaged, path, i+1)
		}
		// One id names one keyring secret: two entries sharing it would
		// serve one scope's token for the other's, and removing either
		// would take the other's secret.
		if first, dup := seen[e.ID]; dup {
			return nil, nil, fmt.Errorf("%w: %s: entries %d and %d share the id %s (it was not rewritten: remove one of them by hand, then run repair)", ErrIndexDamaged, path, first, i+1, e.ID)
		}
		seen[e.ID] = i + 1
	}
	if err := checkReadable(st, path, ix.Entries); err != nil {
		return nil, nil, err
	}
	return &ix, raw, nil
}

// openError says why the index could not be opened, naming the link too
// when the index is one.
func (s *Store) openError(target string, err error) error {
	if target != s.Path() {
		return fmt.Errorf("reading token index %s, a link to %s: %w", s.Path(), target, err)
	}
	return fmt.Errorf("reading token index: %w", err)
}

func (s *Store) newerError(version int) error {
	return fmt.Errorf("%w: %s has format %d, this build knows up to %d, so it is read-only here: upgrade git-credential-bbtoken to change it", ErrIndexNewer, s.Path(), version, IndexVersion)
}

// checkPrivate refuses an index that someone else could have written: the
// file (target, where a link leads) must be writable by its owner alone
// and owned by us, and so must its directory and the config directory.
// It returns the file's mode for checkReadable.
func (s *Store) checkPrivate(f *os.File, target string) (fs.FileInfo, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading token index: %w", err)
	}
	if runtime.GOOS == "windows" {
		return st, nil // ACLs, not mode bits, guard files there
	}
	if st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; fix: chmod 600 %s", ErrIndexUnsafe, target, st.Mode().Perm(), target)
	}
	if err := checkOwner(st, target); err != nil {
		return nil, err
	}
	// Whoever can write a directory can replace the file (or the link).
	for _, dir := range uniq(filepath.Dir(target), s.Dir) {
		dst, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("reading token index: %w", err)
		}
		if dst.Mode().Perm()&0o022 != 0 {
			return nil, fmt.Errorf("%w: its directory %s has mode %04o; fix: chmod 700 %s", ErrIndexUnsafe, dir, dst.Mode().Perm(), dir)
		}
		if err := checkOwner(dst, dir); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// checkReadable refuses an index that other users can read when it holds
// checks: a check reveals nothing about a token, but an index written by
// an older version may hold checks of passwords, which a dictionary could
// recover. The fix is the one for a writable index.
func checkReadable(st fs.FileInfo, path string, entries []Entry) error {
	if runtime.GOOS == "windows" || st.Mode().Perm()&0o044 == 0 {
		return nil
	}
	if !slices.ContainsFunc(entries, func(e Entry) bool { return e.Check != "" }) {
		return nil
	}
	return readableError(path, st.Mode())
}

func readableError(path string, m fs.FileMode) error {
	return fmt.Errorf("%w: %s has mode %04o and holds token checks, which only you may read; fix: chmod 600 %s", ErrIndexReadable, path, m.Perm(), path)
}

// errReadable is ErrIndexReadable: its own sentence, and unsafe.
type errReadable struct{}

func (errReadable) Error() string {
	return "token index is readable by other users while it holds checks"
}
func (errReadable) Is(target error) bool { return target == ErrIndexUnsafe }

// linkError is why a link does not resolve, without the path (the message
// names it already).
func linkError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// Tx is one locked read-modify-write of the index. Secrets written through
// it go to the keyring before the index refers to them, and secrets it
// deletes go only after the index stopped referring to them, so a crash
// leaves at worst an unreferenced secret, never an entry without one.
type Tx struct {
	Index       *Index
	ctx         context.Context
	store       *Store
	journal     []string // ids of secrets that may exist without an entry, as on disk
	changed     bool
	written     []string // secrets set in this Tx, deleted again if it fails
	deleteAfter []string
	release     []string // secrets to delete once the index no longer names them (ReleaseAfterCommit)
}

// Update runs fn on the locked index and saves it if fn called Changed.
//
// Crash safety: a journal file next to the index records, before the
// keyring is touched, every secret that may briefly exist without an entry
// (SetSecret: "ID") and every entry whose secret is about to be deleted
// ("-ID"). Secrets are deleted before the index stops naming them, so a
// keyring fault aborts with nothing changed; and each Update first finishes
// whatever a killed process left in the journal (deleting unreferenced
// secrets, completing interrupted removals). A process killed at any point
// thus leaves at worst a state the next write (or `repair`) completes, and
// get never serves a token for the wrong scope.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	unlock, err := s.lockIn(LockFile, s.lockTimeout())
	if err != nil {
		return err
	}
	defer unlock()
	s.removeStaleTemps()
	ix, _, err := s.load()
	if err != nil {
		return err
	}
	if ix.newer != 0 {
		return s.newerError(ix.newer)
	}
	journal, err := s.readJournal()
	if err != nil {
		return err
	}
	if len(journal) > 0 {
		// With no keyring to finish them (a headless machine that tried
		// one once, a keyring hanging or locked), the leftovers wait: they
		// are secrets no entry names, harmless until then, and writes to
		// the password store or env entries must not be held hostage.
		if journal, err = s.finishJournal(ctx, ix, journal); err != nil && !keyringAway(err) {
			return err
		}
	}
	tx := &Tx{Index: ix, ctx: ctx, store: s, journal: journal}
	if err := fn(tx); err != nil {
		tx.rollback()
		return err
	}
	if !tx.changed {
		tx.rollback() // secrets written for nothing
		return nil
	}
	var doomed []string
	for _, id := range tx.deleteAfter {
		if !ix.HasID(id) && !slices.Contains(doomed, id) {
			doomed = append(doomed, id)
		}
	}
	if len(doomed) > 0 {
		if err := tx.setJournal(append(slices.Clone(tx.journal), deleteIntents(doomed)...)); err != nil {
			tx.rollback()
			return err
		}
		crashpoint.Reached(crashpoint.DeleteJournaled)
		for i, id := range doomed {
			err := s.Secrets.Delete(ctx, id)
			if err == nil {
				crashpoint.Reached(crashpoint.SecretDeleted)
			}
			if err != nil && !errors.Is(err, secrets.ErrNotFound) {
				// Nothing is committed: undo this Tx. Secrets already
				// deleted keep their "-ID" so the next write finishes
				// removing their entries.
				undone := doomed[i:]
				if errors.Is(err, secrets.ErrTimeout) {
					// The call may still complete after we stopped
					// waiting: keep its removal journaled, so the next
					// write finishes it instead of leaving an entry
					// whose secret is gone.
					undone = doomed[i+1:]
				}
				tx.journal = slices.DeleteFunc(tx.journal, func(j string) bool {
					return slices.Contains(deleteIntents(undone), j)
				})
				tx.rollback()
				_ = s.writeJournal(tx.journal)
				if len(undone) < len(doomed[i:]) {
					return fmt.Errorf("deleting the secret of %s from the keyring (the next write completes its removal): %w", id, err)
				}
				return fmt.Errorf("deleting the secret of %s from the keyring: %w", id, err)
			}
		}
	}
	ix.Version = IndexVersion
	if err := s.save(ix); err != nil {
		tx.rollback()
		return err
	}
	crashpoint.Reached(crashpoint.IndexSaved)
	// Committed: this Tx's intents are done; secrets released by it are
	// deleted now, or, if that fails, by the next write (they stay in the
	// journal as secrets no entry names).
	done := append(slices.Clone(tx.written), deleteIntents(doomed)...)
	for _, id := range tx.release {
		if err := s.Secrets.Delete(ctx, id); err == nil || errors.Is(err, secrets.ErrNotFound) {
			done = append(done, id)
		}
	}
	left := slices.DeleteFunc(slices.Clone(tx.journal), func(j string) bool { return slices.Contains(done, j) })
	if len(left) != len(tx.journal) {
		if err := s.writeJournal(left); err != nil {
			return fmt.Errorf("%w: %w", ErrCommitted, err)
		}
	}
	return nil
}

// UpdateCache changes the index under the lock when fn reports a change,
// touching no secret: it does not finish the journal, so a keyring that an
// earlier write left hanging cannot hold up what only caches (get keeping
// what it read from the password store).
func (s *Store) UpdateCache(fn func(ix *Index) bool) error {
	unlock, err := s.lockIn(LockFile, s.lockTimeout())
	if err != nil {
		return err
	}
	defer unlock()
	ix, _, err := s.load()
	if err != nil {
		return err
	}
	if ix.newer != 0 {
		return s.newerError(ix.newer)
	}
	if !fn(ix) {
		return nil
	}
	ix.Version = IndexVersion
	return s.save(ix)
}

// keyringAway reports a keyring that cannot finish the journal now: not
// reachable, not answering, or locked.
func keyringAway(err error) bool {
	return errors.Is(err, secrets.ErrUnavailable) || errors.Is(err, secrets.ErrTimeout) || errors.Is(err, secrets.ErrLocked)
}

// deleteIntents marks ids as entries being removed in the journal.
func deleteIntents(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "-" + id
	}
	return out
}

// finishJournal completes what the journal lists: it deletes secrets that
// no entry names ("ID") and finishes interrupted removals ("-ID": the entry
// goes, then its secret), saving the index if that changed it. What the
// keyring cannot do now stays listed for the next write.
func (s *Store) finishJournal(ctx context.Context, ix *Index, journal []string) ([]string, error) {
	var left []string
	var errs []error
	removed := false
	for _, j := range journal {
		id, removal := strings.CutPrefix(j, "-")
		if !removal && ix.HasID(id) {
			continue // the write completed: the entry owns its secret
		}
		if removal && ix.Remove(id) {
			removed = true
		}
		if err := s.Secrets.Delete(ctx, id); err != nil && !errors.Is(err, secrets.ErrNotFound) {
			errs = append(errs, fmt.Errorf("%w (that of %s): %w", ErrSecretDelete, id, err))
			left = append(left, j)
		}
	}
	crashpoint.Reached(crashpoint.JournalReplayed)
	if removed {
		if err := s.save(ix); err != nil {
			return journal, err
		}
	}
	if err := s.writeJournal(left); err != nil {
		errs = append(errs, err)
	}
	return left, errors.Join(errs...)
}

// removeStaleTemps deletes temp files that writers killed mid-write left
// behind, next to the index and next to the file it links to. Only old
// ones: MarkWarned writes without the lock.
func (s *Store) removeStaleTemps() {
	dirs := []string{s.Dir}
	if t, err := s.target(); err == nil {
		dirs = uniq(s.Dir, filepath.Dir(t))
	}
	for _, dir := range dirs {
		matches, _ := filepath.Glob(filepath.Join(dir, ".tokens-*.tmp"))
		for _, m := range matches {
			if st, err := os.Lstat(m); err == nil && time.Since(st.ModTime()) > time.Minute {
				_ = os.Remove(m)
			}
		}
	}
}

func (s *Store) lockTimeout() time.Duration {
	if s.LockTimeout > 0 {
		return s.LockTimeout
	}
	return 10 * time.Second
}

// Context is the context the Tx runs under.
func (tx *Tx) Context() context.Context { return tx.ctx }

// Changed marks the index as modified.
func (tx *Tx) Changed() { tx.changed = true }

// SetSecret writes a secret to the backend now, under a fresh ID, and
// returns the backend's hint for it (Entry.Hint).
func (tx *Tx) SetSecret(id, secret string) (hint string, err error) {
	// Record the intent first, so a crash between here and the commit
	// leaves a secret the next write knows to delete.
	if err := tx.setJournal(append(slices.Clone(tx.journal), id)); err != nil {
		return "", err
	}
	crashpoint.Reached(crashpoint.Journaled)
	if hint, err = tx.store.Secrets.Set(tx.ctx, id, secret); err != nil {
		return "", fmt.Errorf("saving the token in the keyring: %w", err)
	}
	tx.written = append(tx.written, id)
	crashpoint.Reached(crashpoint.SecretWritten)
	return hint, nil
}

// DeleteSecretAfterCommit deletes a keyring secret once the index no
// longer names it.
func (tx *Tx) DeleteSecretAfterCommit(id string) {
	tx.deleteAfter = append(tx.deleteAfter, id)
}

// ReleaseAfterCommit deletes a keyring secret only after the index that
// no longer names it is saved: for a secret replaced by one the index must
// keep whatever happens (an OAuth refresh: the server has already spent
// the old refresh token). It is journaled first, so a crash, or a delete
// that fails, leaves it for the next write to delete.
func (tx *Tx) ReleaseAfterCommit(id string) error {
	if err := tx.setJournal(append(slices.Clone(tx.journal), id)); err != nil {
		return err
	}
	tx.release = append(tx.release, id)
	return nil
}

// Replace puts next where old was, rolling forward: a keyring secret of
// old that next no longer names goes only after the commit
// (ReleaseAfterCommit), so that whatever happens the index names a secret
// that exists (for secrets the server has already replaced: an OAuth
// refresh, a rotation).
func (tx *Tx) Replace(old, next Entry) error {
	tx.Index.Remove(old.ID)
	if old.InKeyring() && next.ID != old.ID {
		if err := tx.ReleaseAfterCommit(old.ID); err != nil {
			return err
		}
	}
	tx.Index.Entries = append(tx.Index.Entries, next)
	tx.changed = true
	return nil
}

// Forget removes an entry from the index and its secret once the index
// no longer names it: a keyring secret after the commit; an entry in the
// password store (the record every machine reads) before it, so that a
// failure leaves the entry served as it was. An env entry has nothing to
// delete.
func (tx *Tx) Forget(e Entry) error {
	switch {
	case e.InKeyring():
		tx.DeleteSecretAfterCommit(e.ID)
	case e.Store == StorePass:
		if tx.store.Pass == nil {
			return fmt.Errorf("removing %s: %w", e.Name, tx.store.NoPassError())
		}
		err := tx.store.Pass.Remove(tx.ctx, e.Name, "") // pass's own commit message
		if err != nil && !errors.Is(err, passstore.ErrNotFound) && !errors.Is(err, passstore.ErrCommit) {
			return fmt.Errorf("removing %s from the password store: %w", e.Name, err)
		}
		if errors.Is(err, passstore.ErrCommit) && tx.store.Warn != nil {
			tx.store.Warn(err.Error())
		}
	}
	tx.Index.Remove(e.ID)
	tx.changed = true
	return nil
}

// Secret reads an entry's secret inside the transaction.
func (tx *Tx) Secret(e *Entry) (string, error) {
	return tx.store.Secret(tx.ctx, e)
}

// NewID returns an ID not used in the index.
func (tx *Tx) NewID() (string, error) {
	for range 10 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("making an id: %w", err)
		}
		id := hex.EncodeToString(b[:])
		if !tx.Index.HasID(id) {
			return id, nil
		}
	}
	return "", errors.New("making an id: too many collisions")
}

// rollback deletes the secrets this Tx wrote (the index on disk never
// named them) and takes them off the journal when that worked.
func (tx *Tx) rollback() {
	if len(tx.written) == 0 {
		_ = tx.store.writeJournal(tx.journal)
		return
	}
	left := slices.Clone(tx.journal)
	for _, id := range tx.written {
		err := tx.store.Secrets.Delete(tx.ctx, id)
		if err == nil || errors.Is(err, secrets.ErrNotFound) {
			left = slices.DeleteFunc(left, func(p string) bool { return p == id })
		}
	}
	_ = tx.setJournal(left) // best effort: a leftover is finished by the next write
}

func (tx *Tx) setJournal(ids []string) error {
	if err := tx.store.writeJournal(ids); err != nil {
		return err
	}
	tx.journal = ids
	return nil
}

// save writes the index atomically.
//
// The file is one JSON document laid out one entry per line (see
// LoadScopes): any JSON reader reads it, and get can skip the entries of
// other scopes without decoding them.
func (s *Store) save(ix *Index) error {
	data, err := encodeIndex(ix)
	if err != nil {
		return fmt.Errorf("encoding token index: %w", err)
	}
	target, err := s.target()
	if err != nil {
		return err
	}
	return writeFile(target, data)
}

// JournalFile lists secrets that may exist without an entry.
const JournalFile = "tokens.pending"

func (s *Store) readJournal() ([]string, error) {
	data, err := regfile.ReadFile(filepath.Join(s.Dir, JournalFile), regfile.NoLinks)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the write journal: %w", err)
	}
	var ids []string
	if err := json.Unmarshal(data, &ids); err != nil {
		// Its own crash mid-write cannot cause this (atomic rename); an
		// unreadable journal only loses orphans to `repair`.
		return nil, nil
	}
	return ids, nil
}

func (s *Store) writeJournal(ids []string) error {
	path := filepath.Join(s.Dir, JournalFile)
	if len(ids) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clearing the write journal: %w", err)
		}
		return nil
	}
	data, _ := json.Marshal(ids) // strings only
	return writeFile(path, append(data, '\n'))
}

// writeFile replaces path atomically: a private temp file in its
// directory, fsync, rename.
func writeFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tokens-*.tmp") // created 0600
	if err != nil {
		return fmt.Errorf("writing token index: %w", err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("writing token index: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("writing token index: %w", err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("writing token index: %w", err)
	}
	syncDir(dir)
	return nil
}

// Secret reads an entry's secret (get's path): from the keyring at the
// entry's hint, when its check can tell the value read there is the one
// written; from the password store, the whole entry (token first, then
// its lines), when it is still the one the cache describes; from the
// environment.
func (s *Store) Secret(ctx context.Context, e *Entry) (string, error) {
	switch e.Store {
	case StoreEnv:
		if v := s.Env(e.Env); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("$%s: %w", e.Env, ErrEnvUnset)
	case StorePass:
		if s.Pass == nil {
			return "", s.NoPassError()
		}
		pt, stamp, err := s.Pass.Read(ctx, e.Name)
		if err != nil {
			if errors.Is(err, passstore.ErrNotFound) {
				return "", fmt.Errorf("%s: %w", e.Name, secrets.ErrNotFound)
			}
			return "", err
		}
		if e.Stamp != "" && stamp != e.Stamp {
			// Changed since it was read: its fields may have too.
			return "", fmt.Errorf("%s changed in the password store: %w", e.Name, secrets.ErrNotFound)
		}
		return pt, nil // the whole entry: the token and its lines (helper decodes it)
	}
	var want func(string) bool
	if e.Check != "" {
		want = e.CheckMatches
	}
	v, _, err := s.Secrets.Get(ctx, e.ID, e.Hint, want)
	return v, err
}
