package doctor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// checkStores says which places for tokens work here besides the keyring
// (checked on its own): the password store and the environment of env
// entries. A store no entry uses is reported, never held against the user.
func (d *Doctor) checkStores(ctx context.Context, ix *store.Index) []Finding {
	uses := func(where string) bool {
		return slices.ContainsFunc(ix.Entries, func(e store.Entry) bool { return e.Store == where }) || ix.Settings["store"] == where
	}
	f := Finding{Check: "pass", Subject: "password store", Level: OK}
	p := d.Store.Pass
	var err error
	if p == nil {
		err = errors.New("no password store: HOME and PASSWORD_STORE_DIR are unset")
	} else {
		err = p.Usable(ctx)
	}
	switch {
	case err == nil:
		f.Message = fmt.Sprintf("%s: usable (gpg runs, %s/ has recipients)", p.Dir, passstore.Folder)
	case uses(store.StorePass):
		f.Level = Action
		f.Message, f.Fix = splitFix(err.Error())
		f.Fix = cmp.Or(f.Fix, "see the README, Sharing tokens in a team (pass)")
	default:
		f.Message = "not set up here (" + oneLine(err.Error()) + "): optional, for machines without a keyring or tokens a team shares"
	}
	out := []Finding{f}
	getenv := d.Getenv
	for _, e := range ix.Entries {
		if e.Store != store.StoreEnv || getenv == nil || getenv(e.Env) != "" {
			continue
		}
		out = append(out, Finding{
			Check: "env", Subject: entrySubject(e), Level: Warn,
			Message: fmt.Sprintf("reads its token from $%s, which is unset or empty here, so it is skipped", e.Env),
			Fix:     "set " + e.Env + " where git runs (e.g. a secured variable of the CI system), or " + Command + " remove " + e.ID,
		})
	}
	return out
}

// keyringNeeded reports whether a failing keyring matters here: an entry
// keeps its token there, or there are no entries yet and the store setting
// sends new ones there. A machine with only pass or env entries needs none.
func keyringNeeded(ix *store.Index) bool {
	if slices.ContainsFunc(ix.Entries, func(e store.Entry) bool { return e.InKeyring() }) {
		return true
	}
	s := ix.Settings["store"]
	return len(ix.Entries) == 0 && (s == "" || s == store.StoreKeyring)
}
