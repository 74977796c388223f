package importer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/regfile"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Options says what Run does.
type Options struct {
	File            string
	DryRun          bool // report only: no keyring write, no file change
	RemovePlaintext bool // remove the imported lines from File
}

// Result is what became of one Bitbucket line.
type Result struct {
	Item
	// Imported: the token is in the keyring, added now or found there
	// already (Already); ID names its entry.
	Imported bool
	Already  bool
	ID       string
	Err      error // the import failed (the line is kept)
}

// Report is the outcome of Run.
type Report struct {
	File    string
	Results []Result
	Lines   int // lines in the file
	Removed int // lines removed from the file
}

// Count returns how many results satisfy pred.
func (r *Report) Count(pred func(Result) bool) int {
	n := 0
	for _, res := range r.Results {
		if pred(res) {
			n++
		}
	}
	return n
}

// Run imports the tokens of a credential-store file through h (so every
// check of `add` applies and secrets go to the keyring), then, when asked,
// removes the imported lines from the file. A line that was not imported is
// never removed.
func Run(ctx context.Context, h *helper.Helper, o Options) (*Report, error) {
	data, err := regfile.ReadFile(o.File, regfile.FollowLinks)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", o.File, err)
	}
	ix, err := h.Store.Load()
	if err != nil {
		return nil, err
	}
	lines := Split(data)
	rep := &Report{File: o.File, Lines: len(lines)}
	var fatal error
	for _, it := range Plan(lines, ix) {
		res := Result{Item: it}
		if it.Verdict == Import {
			switch {
			case fatal != nil:
				res.Err = fmt.Errorf("not tried: %w", fatal)
			default:
				importOne(ctx, h, ix, &res, o)
				if isKeyringFault(res.Err) {
					fatal = res.Err
				}
			}
		}
		rep.Results = append(rep.Results, res)
	}
	if o.RemovePlaintext && !o.DryRun {
		var drop []string
		for _, res := range rep.Results {
			if res.Imported {
				drop = append(drop, res.Line.Text)
			}
		}
		if len(drop) > 0 {
			n, err := RemoveLines(o.File, drop)
			rep.Removed = n
			if err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

func isKeyringFault(err error) bool {
	return errors.Is(err, secrets.ErrUnavailable) || errors.Is(err, secrets.ErrTimeout)
}

// importOne adds one token, unless the same token is already stored in
// its slot (scope, kind and user name), or another token is (which import
// never replaces).
func importOne(ctx context.Context, h *helper.Helper, ix *store.Index, res *Result, o Options) {
	flavor := helper.FlavorOf(ix, bitbucket.ScopeHost(res.Scope))
	want := store.Entry{URL: res.Scope, Kind: res.Kind, Username: helper.AddedUsername(flavor, res.Kind, res.Username)}
	for _, e := range ix.Entries {
		if !helper.SameIdentity(flavor, &e, &want) {
			continue
		}
		raw, err := h.Store.Secret(ctx, &e)
		if errors.Is(err, store.ErrEnvUnset) {
			err = secrets.ErrNotFound // nothing to compare here: another token's slot
		}
		if err != nil && !errors.Is(err, secrets.ErrNotFound) {
			res.Err = err
			return
		}
		if err == nil && samePassword(e, raw, res.Entry.Password.Reveal()) {
			res.Imported, res.Already, res.ID = true, true, e.ID
			return
		}
		res.Verdict = Skip
		res.Note = fmt.Sprintf("another %s token for %s is already stored (%s), and import never replaces one: not imported", e.Kind, e.URL, e.ID)
		res.Fix = Command + " add " + res.URL + " --kind " + string(res.Kind) + " (replaces " + e.ID + ")"
		return
	}
	if o.DryRun {
		return
	}
	added, err := h.Add(ctx, helper.AddOptions{
		URL: res.URL, Kind: res.Kind, Username: res.Username, Email: res.Email, Token: res.Entry.Password,
		Label: "imported from " + filepath.Base(o.File),
	})
	if err != nil {
		res.Err = err
		return
	}
	res.Imported, res.ID = true, added.ID
}

func samePassword(e store.Entry, raw, pw string) bool {
	got, err := helper.WirePassword(&e, raw)
	return err == nil && got == pw
}

// ErrLocked means another process (git's store helper) holds the file's lock.
var ErrLocked = errors.New("the credential file is locked")

// RemoveLines rewrites path without the lines whose text is in drop and
// returns how many it removed. Every other byte stays as it was. It works
// the way git's store helper writes the file, so the two never lose each
// other's changes: under git's lock file (path.lock, created exclusively),
// reading the current content, writing the new one into the lock file with
// the old file's mode, and renaming it over the file. A symbolic link is
// followed, not replaced.
func RemoveLines(path string, drop []string) (int, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return 0, fmt.Errorf("removing imported lines: %w", err)
	}
	lock := real + ".lock"
	f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return 0, fmt.Errorf("%w: %s exists (git may be writing it; if no git is running, remove the lock file and run import again)", ErrLocked, lock)
	}
	if err != nil {
		return 0, fmt.Errorf("removing imported lines: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(lock)
		}
	}()
	data, err := regfile.ReadFile(real, regfile.NoLinks)
	if err != nil {
		return 0, fmt.Errorf("removing imported lines: %w", err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return 0, fmt.Errorf("removing imported lines: %w", err)
	}
	dropSet := map[string]bool{}
	for _, d := range drop {
		dropSet[d] = true
	}
	var kept []byte
	removed := 0
	for _, l := range Split(data) {
		if dropSet[l.Text] {
			removed++
			continue
		}
		kept = append(kept, l.Raw...)
	}
	if removed == 0 {
		return 0, nil
	}
	if _, err := f.Write(kept); err != nil {
		return 0, fmt.Errorf("removing imported lines: %w", err)
	}
	if err := f.Chmod(st.Mode().Perm()); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return 0, fmt.Errorf("removing imported lines: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("removing imported lines: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("removing imported lines: %w", err)
	}
	if err := os.Rename(lock, real); err != nil {
		return 0, fmt.Errorf("removing imported lines: %w", err)
	}
	committed = true
	syncDir(filepath.Dir(real))
	return removed, nil
}

// syncDir makes a rename durable where the platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
