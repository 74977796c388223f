package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Lister is implemented by backends that can enumerate the ids they hold.
type Lister interface {
	List(ctx context.Context) ([]string, error)
}

// ErrListUnsupported: this platform's keyring cannot be enumerated.
var ErrListUnsupported = errors.New("this keyring cannot list its items")

// RepairOptions says what Repair may change.
type RepairOptions struct {
	DryRun bool
	// DeleteUnknown also deletes keyring items under our service that
	// neither the index nor its journal knows. They are usually leftovers,
	// but another config directory sharing the keyring may own them, so
	// only on request.
	DeleteUnknown bool
}

// RepairReport is what Repair found (and, unless a dry run, fixed).
type RepairReport struct {
	Entries int
	Secrets int      // items listed in the keyring; -1 when it cannot list
	Orphans []string // secrets of interrupted writes (deleted unless a dry run)
	Unknown []string // items nobody here knows (deleted only with DeleteUnknown)
	Missing []Entry  // entries whose secret is not in the keyring
	Failed  []string // secrets the keyring would not delete
}

// Consistent reports whether nothing is left for the user to act on.
func (r *RepairReport) Consistent(o RepairOptions) bool {
	if len(r.Missing) > 0 || len(r.Failed) > 0 || (len(r.Unknown) > 0 && (o.DryRun || !o.DeleteUnknown)) {
		return false
	}
	return !o.DryRun || len(r.Orphans) == 0
}

// Repair compares the index with the keyring under the lock: it deletes the
// secrets of interrupted writes (the journal's) and reports entries whose
// secret is gone and keyring items nobody knows.
func (s *Store) Repair(ctx context.Context, o RepairOptions) (*RepairReport, error) {
	dryRun := o.DryRun
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", s.Dir, err)
	}
	unlock, err := lock(filepath.Join(s.Dir, LockFile), s.lockTimeout())
	if err != nil {
		return nil, err
	}
	defer unlock()
	ix, _, err := s.load()
	if err != nil {
		return nil, err
	}
	if ix.newer != 0 && !dryRun {
		return nil, s.newerError(ix.newer)
	}
	journal, err := s.readJournal()
	if err != nil {
		return nil, err
	}
	rep := &RepairReport{Entries: len(ix.Entries), Secrets: -1}
	listed, err := s.list(ctx)
	switch {
	case errors.Is(err, ErrListUnsupported):
		for _, e := range ix.Entries {
			if _, err := s.Secrets.Get(ctx, e.ID); errors.Is(err, ErrSecretNotFound) {
				rep.Missing = append(rep.Missing, e)
			} else if err != nil {
				return nil, err
			}
		}
	case err != nil:
		return nil, err
	default:
		rep.Secrets = len(listed)
		for _, e := range ix.Entries {
			if !slices.Contains(listed, e.ID) {
				rep.Missing = append(rep.Missing, e)
			}
		}
		for _, id := range listed {
			if !ix.HasID(id) && !slices.Contains(journal, id) && !slices.Contains(rep.Unknown, id) {
				rep.Unknown = append(rep.Unknown, id)
			}
		}
	}
	for _, id := range journal {
		// Listed or not, the journal's ids are ours to delete (one that is
		// already gone costs nothing).
		if !ix.HasID(id) && !slices.Contains(rep.Orphans, id) && (rep.Secrets < 0 || slices.Contains(listed, id)) {
			rep.Orphans = append(rep.Orphans, id)
		}
	}
	if dryRun {
		return rep, nil
	}
	doomed := slices.Clone(rep.Orphans)
	if o.DeleteUnknown {
		doomed = append(doomed, rep.Unknown...)
	}
	for _, id := range doomed {
		if err := s.Secrets.Delete(ctx, id); err != nil && !errors.Is(err, ErrSecretNotFound) {
			rep.Failed = append(rep.Failed, id)
		} else if rep.Secrets > 0 && slices.Contains(listed, id) {
			rep.Secrets-- // what is left in the keyring
		}
	}
	var left []string
	for _, id := range rep.Failed {
		if slices.Contains(rep.Orphans, id) {
			left = append(left, id)
		}
	}
	if err := s.writeJournal(left); err != nil {
		return rep, err
	}
	return rep, nil
}

func (s *Store) list(ctx context.Context) ([]string, error) {
	l, ok := s.Secrets.(Lister)
	if !ok {
		return nil, ErrListUnsupported
	}
	return l.List(ctx)
}
