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
	"time"
)

// Errors about the index file.
var (
	ErrIndexDamaged = errors.New("token index is damaged")
	ErrIndexNewer   = errors.New("token index was written by a newer git-credential-bbtoken")
	ErrIndexUnsafe  = errors.New("token index is writable by other users")
	ErrLocked       = errors.New("token index is locked by another process")
	// ErrSecretDelete: the index was saved, but a secret it no longer
	// names could not be deleted from the keyring.
	ErrSecretDelete = errors.New("the index was updated but the keyring kept the secret")
)

// IndexFile and LockFile are the names inside the config directory.
const (
	IndexFile = "tokens.json"
	LockFile  = "tokens.lock"
)

// Store combines the index file in Dir with a Secrets backend.
type Store struct {
	Dir         string
	Secrets     Secrets
	LockTimeout time.Duration
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

// Load reads a consistent snapshot of the index without locking: writers
// replace the file atomically, so readers (get, list) never wait. A missing
// file is an empty index.
func (s *Store) Load() (*Index, error) {
	ix, _, err := s.load()
	return ix, err
}

func (s *Store) load() (*Index, []byte, error) {
	path := s.Path()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Index{Version: IndexVersion}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading token index: %w", err)
	}
	defer f.Close()
	if err := checkPrivate(f, path); err != nil {
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
	if probe.Version > IndexVersion {
		return nil, nil, fmt.Errorf("%w: %s has format %d, this build reads up to %d: upgrade git-credential-bbtoken", ErrIndexNewer, path, probe.Version, IndexVersion)
	}
	if probe.Version < 1 {
		return nil, nil, fmt.Errorf("%w: %s has no format version", ErrIndexDamaged, path)
	}
	var ix Index
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&ix); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrIndexDamaged, path, err)
	}
	for i := range ix.Entries {
		e := &ix.Entries[i]
		if e.ID == "" || e.URL == "" || e.Kind == "" {
			return nil, nil, fmt.Errorf("%w: %s: entry %d lacks id, url or kind", ErrIndexDamaged, path, i+1)
		}
	}
	return &ix, raw, nil
}

func checkPrivate(f *os.File, path string) error {
	if runtime.GOOS == "windows" {
		return nil // ACLs, not mode bits, guard files there
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading token index: %w", err)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; fix: chmod 600 %s", ErrIndexUnsafe, path, st.Mode().Perm(), path)
	}
	return nil
}

// Tx is one locked read-modify-write of the index. Secrets written through
// it go to the keyring before the index refers to them, and secrets it
// deletes go only after the index stopped referring to them, so a crash
// leaves at worst an unreferenced secret, never an entry without one.
type Tx struct {
	Index       *Index
	ctx         context.Context
	store       *Store
	changed     bool
	written     []string // secrets set in this Tx, deleted again if it fails
	deleteAfter []string
}

// Update runs fn on the locked index and saves it if fn called Changed.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", s.Dir, err)
	}
	unlock, err := lock(filepath.Join(s.Dir, LockFile), s.lockTimeout())
	if err != nil {
		return err
	}
	defer unlock()
	ix, _, err := s.load()
	if err != nil {
		return err
	}
	tx := &Tx{Index: ix, ctx: ctx, store: s}
	if err := fn(tx); err != nil {
		tx.rollback()
		return err
	}
	if tx.changed {
		ix.Version = IndexVersion
		if err := s.save(ix); err != nil {
			tx.rollback()
			return err
		}
	}
	var errs []error
	for _, id := range tx.deleteAfter {
		if !tx.changed || ix.HasID(id) {
			continue // the index on disk may still name it: never leave an entry without its secret
		}
		if err := s.Secrets.Delete(ctx, id); err != nil && !errors.Is(err, ErrSecretNotFound) {
			errs = append(errs, fmt.Errorf("%w of %s: %w", ErrSecretDelete, id, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Store) lockTimeout() time.Duration {
	if s.LockTimeout > 0 {
		return s.LockTimeout
	}
	return 10 * time.Second
}

// Changed marks the index as modified.
func (tx *Tx) Changed() { tx.changed = true }

// SetSecret writes a secret to the keyring now, under a fresh ID.
func (tx *Tx) SetSecret(id, secret string) error {
	if err := tx.store.Secrets.Set(tx.ctx, id, secret); err != nil {
		return fmt.Errorf("saving the token in the keyring: %w", err)
	}
	tx.written = append(tx.written, id)
	return nil
}

// DeleteSecretAfterCommit deletes a secret once the index no longer names it.
func (tx *Tx) DeleteSecretAfterCommit(id string) {
	tx.deleteAfter = append(tx.deleteAfter, id)
}

// Context is the transaction's context.
func (tx *Tx) Context() context.Context { return tx.ctx }

// Secret reads a secret inside the transaction.
func (tx *Tx) Secret(id string) (string, error) {
	return tx.store.Secrets.Get(tx.ctx, id)
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

func (tx *Tx) rollback() {
	for _, id := range tx.written {
		_ = tx.store.Secrets.Delete(tx.ctx, id) // best effort; a leftover is an orphan, never served
	}
}

// save writes the index atomically: a private temp file, fsync, rename.
func (s *Store) save(ix *Index) error {
	data, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding token index: %w", err)
	}
	data = append(data, '\n')
	tmp, err := os.CreateTemp(s.Dir, ".tokens-*.tmp") // created 0600
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
	if err := os.Rename(name, s.Path()); err != nil {
		os.Remove(name)
		return fmt.Errorf("writing token index: %w", err)
	}
	syncDir(s.Dir)
	return nil
}

// Secret reads an entry's secret outside a transaction (get's path).
func (s *Store) Secret(ctx context.Context, id string) (string, error) {
	return s.Secrets.Get(ctx, id)
}
