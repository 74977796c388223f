package helper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// ErrBadEmail is an unusable `add --email`.
var ErrBadEmail = errors.New("invalid e-mail")

// checkEmail checks the shape of an Atlassian e-mail: it goes into a Basic
// authorization header (so no ':'), and is printed (so no control
// characters).
func checkEmail(e string) error {
	if e == "" {
		return nil
	}
	user, domain, ok := strings.Cut(e, "@")
	switch {
	case len(e) > 256:
		return fmt.Errorf("%w: longer than 256 bytes", ErrBadEmail)
	case !ok || user == "" || domain == "" || strings.Contains(domain, "@"):
		return fmt.Errorf("%w: %q is not an address like alice@example.com", ErrBadEmail, e)
	}
	for _, r := range e {
		if r <= ' ' || r == 0x7f || r == ':' {
			return fmt.Errorf("%w: it contains spaces, ':' or control characters", ErrBadEmail)
		}
	}
	return nil
}

// checkEmailKind: only Cloud API tokens take an e-mail (Basic with the
// Atlassian e-mail is how Bitbucket's REST API takes them; git never
// needs it).
func checkEmailKind(e string, k store.Kind, f bitbucket.Flavor) error {
	if e == "" || (f == bitbucket.Cloud && k == store.KindAPI) {
		return nil
	}
	return fmt.Errorf("%w: --email is for Bitbucket Cloud API tokens only (the REST API takes them with your Atlassian e-mail); a %s token does not use it", ErrBadEmail, k)
}

// WireSecret reads the token an entry sends (its password, or its Bearer
// credential), registering it for redaction first.
func (h *Helper) WireSecret(ctx context.Context, e *store.Entry) (credential.Secret, error) {
	v, err := h.readSecret(h.keyring(ctx), e)
	if err != nil {
		return "", err
	}
	if e.AuthType != "" {
		return credential.Secret(v.Credential), nil
	}
	return credential.Secret(v.Password), nil
}

// Verified is what `verify` learned about one token from the REST API.
type Verified struct {
	ID string
	// Secret is the token that was checked: the verdict is recorded only
	// when the entry still holds it.
	Secret credential.Secret
	// Accepted: the server accepted the token. Refused: it answered 401
	// for bad credentials. Neither: nothing to record.
	Accepted, Refused bool
	// Repository is the repository path (as in RejectedFor) the check
	// proved readable, when it was narrower than the token's scope.
	Repository string
}

// NeedsRecord reports whether v would change e: an accepted token marked
// rejected (or withdrawn from the checked repository) is revived; a
// refused one is marked rejected, or withdrawn from the repository when it
// was checked below its scope. Only tokens the user added are changed, and
// never env entries: credentials git stored are erased by git itself on
// its next 401.
func NeedsRecord(e *store.Entry, v Verified) bool {
	if !e.Added() || e.Store == store.StoreEnv {
		return false // an env entry's variable may hold another token next time
	}
	switch {
	case v.Accepted:
		return e.State == store.StateRejected || (v.Repository != "" && slices.Contains(e.RejectedFor, v.Repository))
	case v.Refused && v.Repository != "":
		return e.State != store.StateRejected && !slices.Contains(e.RejectedFor, v.Repository)
	case v.Refused:
		return e.State != store.StateRejected
	}
	return false
}

// RecordVerified applies verify's verdicts in one locked update and returns
// the entries it changed. An entry removed or replaced since it was checked
// is left alone.
func (h *Helper) RecordVerified(ctx context.Context, vs []Verified) (changed []store.Entry, err error) {
	err = h.Store.Update(ctx, func(tx *store.Tx) error {
		changed = nil
		for _, v := range vs {
			e, ok := tx.Index.Find(v.ID)
			if !ok || !NeedsRecord(e, v) {
				continue
			}
			var want secretValue
			if e.AuthType != "" {
				want.Credential = v.Secret.Reveal()
			} else {
				want.Password = v.Secret.Reveal()
			}
			same, err := h.keyringHolds(tx.Secret, e, want, false)
			if err != nil {
				return err
			}
			if !same {
				h.Trace.Printf("verify: %s changed since it was checked: not recorded", e.ID)
				continue
			}
			if v.Accepted {
				e.State = store.StateActive
				e.RejectedFor = slices.DeleteFunc(e.RejectedFor, func(p string) bool { return p == v.Repository })
				h.Trace.Printf("verify: revived %s (%s %s)", e.ID, e.Kind, e.URL)
			} else if v.Repository != "" {
				// Refused for one repository below its scope: like a 401
				// git sees there, it withdraws the token from that
				// repository only (see Erase).
				e.RejectedFor = append(e.RejectedFor, v.Repository)
				h.Trace.Printf("verify: %s (%s %s) refused for %s: no longer offered there", e.ID, e.Kind, e.URL, v.Repository)
			} else {
				e.State = store.StateRejected
				h.Trace.Printf("verify: marked %s (%s %s) rejected", e.ID, e.Kind, e.URL)
			}
			e.Updated = h.now().UTC()
			changed = append(changed, *e)
			tx.Changed()
		}
		return nil
	})
	return changed, err
}
