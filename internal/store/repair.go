package store

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
)

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
	// Removals are entries a killed process was removing (their secret may
	// already be gone): the removal is completed unless a dry run.
	Removals []string
	Unknown  []string // items nobody here knows (deleted only with DeleteUnknown)
	Missing  []Entry  // entries whose secret is not in the keyring
	Failed   []string // secrets the keyring would not delete
	// Indexed are added tokens whose entry lacked its check or keyring
	// item (written by an older version): recorded now, so get reads them
	// directly (only reported in a dry run).
	Indexed []string
	// Unchecked are entries that an older version gave a check of a value
	// that is not a token (a password): the check is dropped (only
	// reported in a dry run).
	Unchecked []string
}

// Consistent reports whether nothing is left for the user to act on.
func (r *RepairReport) Consistent(o RepairOptions) bool {
	if len(r.Missing) > 0 || len(r.Failed) > 0 || (len(r.Unknown) > 0 && (o.DryRun || !o.DeleteUnknown)) {
		return false
	}
	return !o.DryRun || len(r.Orphans)+len(r.Removals)+len(r.Unchecked) == 0
}

// Repair compares the index with the keyring under the lock: it deletes the
// secrets of interrupted writes (the journal's) and reports entries whose
// secret is gone and keyring items nobody knows.
func (s *Store) Repair(ctx context.Context, o RepairOptions) (*RepairReport, error) {
	dryRun := o.DryRun
	unlock, err := s.lockIn(LockFile, s.lockTimeout())
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
	before, err := s.list(ctx)
	canList := err == nil
	if err != nil && !errors.Is(err, secrets.ErrListUnsupported) {
		return nil, err
	}
	rep := &RepairReport{Secrets: -1}
	// Interrupted writes first: removals are completed, unreferenced
	// secrets deleted (a dry run only reports them).
	for _, j := range journal {
		id, removal := strings.CutPrefix(j, "-")
		switch {
		case removal && ix.HasID(id):
			rep.Removals = append(rep.Removals, id)
		case !ix.HasID(id) && (!canList || slices.Contains(before, id)):
			rep.Orphans = append(rep.Orphans, id)
		}
	}
	listed := before
	if !dryRun && len(journal) > 0 {
		left, err := s.finishJournal(ctx, ix, journal)
		for _, j := range left {
			rep.Failed = append(rep.Failed, strings.TrimPrefix(j, "-"))
		}
		if err != nil && len(left) == 0 {
			return nil, err
		}
		journal = left
		if canList {
			if listed, err = s.list(ctx); err != nil {
				return nil, err
			}
		}
	}
	rep.Entries = len(ix.Entries)
	if !canList {
		for _, e := range ix.Entries {
			if !e.InKeyring() {
				continue
			}
			_, _, err := s.Secrets.Get(ctx, e.ID, "", nil)
			switch {
			case errors.Is(err, secrets.ErrNotFound):
				if !slices.Contains(rep.Removals, e.ID) {
					rep.Missing = append(rep.Missing, e)
				}
			case err != nil:
				return nil, err
			}
		}
	} else {
		rep.Secrets = len(listed)
		for _, e := range ix.Entries {
			if e.InKeyring() && !slices.Contains(listed, e.ID) && !slices.Contains(rep.Removals, e.ID) {
				rep.Missing = append(rep.Missing, e)
			}
		}
		for _, id := range listed {
			if !ix.HasID(id) && !slices.Contains(journal, id) && !slices.Contains(journal, "-"+id) && !slices.Contains(rep.Unknown, id) {
				rep.Unknown = append(rep.Unknown, id)
			}
		}
	}
	if err := s.index(ctx, ix, rep, dryRun); err != nil {
		return nil, err
	}
	if dryRun || !o.DeleteUnknown {
		return rep, nil
	}
	for _, id := range rep.Unknown {
		if err := s.Secrets.Delete(ctx, id); err != nil && !errors.Is(err, secrets.ErrNotFound) {
			rep.Failed = append(rep.Failed, id)
		} else if rep.Secrets > 0 {
			rep.Secrets-- // what is left in the keyring
		}
	}
	return rep, nil
}

// index records the check and hint of tokens that lack them (entries of
// older versions), or whose hint went stale, so that get reads them
// directly; and it drops the checks an older version made of values that
// are not tokens (a password imported from a credential-store file): a
// dictionary could recover such a value from its check. Values are read
// even in a dry run, which only reports.
func (s *Store) index(ctx context.Context, ix *Index, rep *RepairReport, dryRun bool) error {
	changed := false
	for i := range ix.Entries {
		e := &ix.Entries[i]
		if !e.InKeyring() || !e.Added() && e.Check == "" || slices.ContainsFunc(rep.Missing, func(m Entry) bool { return m.ID == e.ID }) {
			continue
		}
		raw, found, err := s.Secrets.Get(ctx, e.ID, "", nil)
		if errors.Is(err, secrets.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		checkable := bitbucket.Checkable(raw)
		switch {
		case e.Check != "" && !checkable:
			rep.Unchecked = append(rep.Unchecked, e.ID)
			if !dryRun {
				e.Check = ""
				changed = true
			}
		case e.Added() && checkable && (e.Check == "" || !e.CheckMatches(raw) || found != e.Hint):
			rep.Indexed = append(rep.Indexed, e.ID)
			if dryRun {
				continue
			}
			if !e.CheckMatches(raw) {
				if e.Check, err = NewCheck(raw); err != nil {
					return err
				}
			}
			e.Hint = found
			changed = true
		}
	}
	if !changed {
		return nil
	}
	ix.Version = IndexVersion
	return s.save(ix)
}

func (s *Store) list(ctx context.Context) ([]string, error) {
	return s.Secrets.List(ctx)
}
