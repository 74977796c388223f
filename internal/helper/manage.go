package helper

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Errors of add and remove that the CLI reports as user errors.
var (
	//lint:ignore ST1005 it starts with a proper noun, and the CLI prints it as a sentence
	ErrAppPassword = errors.New(bitbucket.AppPasswordsEnded + ": " + bitbucket.CreateAPIToken + " instead, then add it with --kind api --username YOUR_BITBUCKET_USERNAME")
	ErrBadToken    = errors.New("invalid token")
	ErrNeedKind    = errors.New("cannot tell the token's kind")
	ErrBadKind     = errors.New("kind does not fit")
	ErrBadUsername = errors.New("invalid username")
	ErrBadExpiry   = errors.New("invalid expiry")
	ErrBadLabel    = errors.New("invalid label")
)

// MaxTokenLength bounds what add accepts: far above any Bitbucket token,
// far below what a keyring can hold.
const MaxTokenLength = 2048

// AddOptions is what `add` was given.
type AddOptions struct {
	URL      string
	Kind     store.Kind // "" = infer
	Username string
	Expires  string // YYYY-MM-DD or ""
	Label    string
	Email    string // Cloud API tokens: the Atlassian e-mail, for verify's REST calls
	Token    credential.Secret
	// Store is where the token goes: store.StoreKeyring, store.StorePass,
	// or "" for the `store` setting.
	Store string
	// FromEnv makes an env entry: no token is stored, get reads it from
	// this variable when git asks.
	FromEnv string
}

// ErrBadEnvName is a --from-env that is not a variable name.
var ErrBadEnvName = errors.New("invalid environment variable name")

// Add validates a token and its scope and stores it, replacing the token
// of the same slot (scope, kind, user) on this machine; in the password
// store, only an add to it replaces the slot's entry there, which the
// team shares.
func (h *Helper) Add(ctx context.Context, o AddOptions) (*store.Entry, error) {
	h.Redactor.Add(o.Token.Reveal())
	if o.FromEnv != "" {
		if err := CheckEnvName(o.FromEnv); err != nil {
			return nil, err
		}
	} else if err := checkToken(o.Token); err != nil {
		return nil, err
	}
	if err := h.CheckAddOptions(o); err != nil {
		return nil, err
	}
	expires, err := h.checkExpiry(o.Expires)
	if err != nil {
		return nil, err
	}
	var added *store.Entry
	err = h.Store.Update(ctx, func(tx *store.Tx) error {
		ix := tx.Index
		scope, flavor, err := bitbucket.ParseUserURL(o.URL, func(host string) bitbucket.Flavor { return flavorOf(ix, host) })
		if err != nil {
			return err
		}
		decide := o
		if o.FromEnv != "" {
			// The variable, if set now, only tells the kind.
			decide.Token = credential.Secret(h.Store.Env(o.FromEnv))
		}
		kind, username, authType, err := decideKind(decide, scope, flavor)
		if err != nil {
			return err
		}
		if err := checkEmailKind(o.Email, kind, flavor); err != nil {
			return err
		}
		now := h.now().UTC()
		e := store.Entry{
			URL: scope.String(), Kind: kind, Username: username, AuthType: authType, Email: o.Email,
			Label: o.Label, Expires: expires, State: store.StateActive, Created: now, Updated: now,
		}
		v := secretValue{Password: o.Token.Reveal()}
		if authType != "" {
			v = secretValue{Credential: o.Token.Reveal()}
		}
		if err := h.place(tx, flavor, &e, o.Store, o.FromEnv, v); err != nil {
			return err
		}
		for _, old := range slices.Clone(ix.Entries) {
			if !SameIdentity(flavor, &old, &e) || old.ID == e.ID && old.Store == e.Store {
				continue
			}
			if old.Store == store.StorePass && e.Store != store.StorePass {
				continue // the team's entry: this machine's token overrides it here
			}
			if err := tx.Forget(old); err != nil {
				return err
			}
			h.Trace.Printf("add: replaces %s", old.ID)
			h.forgetCreated(&old)
		}
		ix.Entries = slices.DeleteFunc(ix.Entries, func(old store.Entry) bool { return old.ID == e.ID })
		ix.Entries = append(ix.Entries, e)
		tx.Changed()
		added = &e
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.Trace.Printf("add: %s %s %s in %s token=%s", added.ID, added.Kind, added.URL, added.StoreName(), o.Token)
	return added, nil
}

// place writes v where says (a store, or "" for the `store` setting; an
// env entry when fromEnv names a variable) and records where in e: its
// id, and the keyring's hint or the password store's name and stamp.
func (h *Helper) place(tx *store.Tx, f bitbucket.Flavor, e *store.Entry, where, fromEnv string, v secretValue) error {
	if where == "" {
		where = Setting(tx.Index, SettingStore)
	}
	raw, format := encodeSecret(v)
	switch {
	case fromEnv != "":
		id, err := tx.NewID()
		if err != nil {
			return err
		}
		e.ID, e.Store, e.Env = id, store.StoreEnv, fromEnv
		return nil // nothing of the token is kept, not even a check
	case where == store.StorePass:
		if h.Store.Pass == nil {
			return h.Store.NoPassError()
		}
		name, err := passName(f, e)
		if err == nil {
			// Every machine must read the name back as this slot.
			_, err = h.passSlotEntry(tx.Index, name)
		}
		if err != nil {
			return fmt.Errorf("no name in the password store for this token: %w", err)
		}
		body, err := passBody(e, v)
		if err != nil {
			return err
		}
		stamp, err := h.Store.Pass.Write(tx.Context(), name, body, "") // pass's own commit message
		if errors.Is(err, passstore.ErrCommit) {
			h.notice("%v", err)
		} else if err != nil {
			return fmt.Errorf("saving the token in the password store: %w", err)
		}
		e.ID, e.Store, e.Name, e.Stamp = passID(name), store.StorePass, name, stamp
	default:
		id, err := tx.NewID()
		if err != nil {
			return err
		}
		if e.Hint, err = tx.SetSecret(id, raw); err != nil {
			return err
		}
		e.ID, e.Format = id, format
	}
	check, err := store.NewCheck(raw)
	if err != nil {
		return fmt.Errorf("making the token's check: %w", err)
	}
	e.Check = check
	return nil
}

// CheckEnvName refuses what cannot be an environment variable's name.
func CheckEnvName(name string) error {
	ok := name != "" && len(name) <= 256 && (name[0] < '0' || name[0] > '9')
	for _, r := range name {
		ok = ok && (r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}
	if !ok {
		return fmt.Errorf("%w: %q (letters, digits and '_', not starting with a digit, e.g. BITBUCKET_REPO_TOKEN)", ErrBadEnvName, name)
	}
	return nil
}

// SameIdentity reports whether two entries are the same token slot: the
// same scope, kind and user name (compared as the host's flavour compares
// user names). Adding a token replaces only the one in its slot: alice's
// and a build account's personal tokens for one host live side by side.
func SameIdentity(f bitbucket.Flavor, a, b *store.Entry) bool {
	if a.URL != b.URL || a.Kind != b.Kind {
		return false
	}
	if f == bitbucket.Cloud {
		return bitbucket.EqualFoldASCII(a.Username, b.Username)
	}
	return a.Username == b.Username
}

// AddedUsername is the user name an added token of kind k records when
// add was given username (possibly ""), as decideKind sets it.
func AddedUsername(f bitbucket.Flavor, k store.Kind, username string) string {
	switch {
	case f == bitbucket.Cloud && (k == store.KindRepository || k == store.KindProject || k == store.KindWorkspace):
		return UserAccessToken
	case f == bitbucket.Cloud && k == store.KindAPI:
		return cmp.Or(username, UserAPIToken)
	}
	return username
}

// CheckAddOptions checks what add was given besides the token, so that a
// person at a terminal learns of a mistake before typing the token.
func (h *Helper) CheckAddOptions(o AddOptions) error {
	if err := checkText("label", o.Label, 200); err != nil {
		return err
	}
	if err := checkUsername(o.Username); err != nil {
		return err
	}
	if err := checkEmail(o.Email); err != nil {
		return err
	}
	_, err := h.checkExpiry(o.Expires)
	return err
}

func checkToken(t credential.Secret) error {
	v := t.Reveal()
	switch {
	case v == "":
		return fmt.Errorf("%w: empty (pass the token on stdin)", ErrBadToken)
	case len(v) > MaxTokenLength:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadToken, MaxTokenLength)
	case bitbucket.IsAppPassword(v):
		return ErrAppPassword
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f || r > unicode.MaxASCII {
			return fmt.Errorf("%w: it contains spaces, control or non-ASCII characters (was more than the token pasted?)", ErrBadToken)
		}
	}
	return nil
}

func checkText(what, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadLabel, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s contains control characters", ErrBadLabel, what)
		}
	}
	return nil
}

func (h *Helper) checkExpiry(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a date like 2027-01-31", ErrBadExpiry, s)
	}
	if !h.now().Before(t) {
		return "", fmt.Errorf("%w: %s is in the past (tokens are treated as expired from 00:00 UTC on their expiry date)", ErrBadExpiry, s)
	}
	return t.Format(time.DateOnly), nil
}

// decideKind applies the defaults and checks that kind, scope depth and
// username fit together.
func decideKind(o AddOptions, sc bitbucket.Scope, f bitbucket.Flavor) (kind store.Kind, username, authType string, err error) {
	level := sc.Level(f)
	tok := o.Token.Reveal()
	kind = o.Kind
	if err := checkUsername(o.Username); err != nil {
		return "", "", "", err
	}
	if f == bitbucket.Cloud {
		if kind == "" {
			switch {
			case strings.HasPrefix(tok, bitbucket.PrefixAPIToken):
				kind = store.KindAPI
			case strings.HasPrefix(tok, bitbucket.PrefixAccessToken) && level == bitbucket.LevelRepository:
				kind = store.KindRepository
			case strings.HasPrefix(tok, bitbucket.PrefixAccessToken) && level == bitbucket.LevelGroup:
				return "", "", "", fmt.Errorf("%w: a workspace URL can hold a workspace or a project access token: pass --kind workspace or --kind project", ErrNeedKind)
			case strings.HasPrefix(tok, bitbucket.PrefixAccessToken):
				return "", "", "", fmt.Errorf("%w: an access token needs a workspace or repository URL, e.g. https://bitbucket.org/WORKSPACE/REPO", ErrBadKind)
			default:
				return "", "", "", fmt.Errorf("%w from its prefix: pass --kind repository, project, workspace or api", ErrNeedKind)
			}
		}
		switch kind {
		case store.KindRepository, store.KindProject, store.KindWorkspace:
			if o.Username != "" && o.Username != UserAccessToken {
				return "", "", "", fmt.Errorf("%w: Bitbucket Cloud access tokens always use the username %s: drop --username", ErrBadUsername, UserAccessToken)
			}
			username = AddedUsername(f, kind, "")
		case store.KindAPI:
			if strings.Contains(o.Username, "@") {
				return "", "", "", fmt.Errorf("%w: git needs your Bitbucket username, not your Atlassian e-mail (see Personal settings > Account settings), or no --username at all", ErrBadUsername)
			}
			username = AddedUsername(f, kind, o.Username)
		case store.KindPersonal:
			return "", "", "", fmt.Errorf("%w: personal HTTP access tokens are a Data Center kind; on Bitbucket Cloud use an API token (--kind api)", ErrBadKind)
		default:
			return "", "", "", fmt.Errorf("%w: unknown kind %q", ErrBadKind, kind)
		}
	} else {
		if kind == "" {
			switch {
			case o.Username != "":
				kind = store.KindPersonal
			case level == bitbucket.LevelRepository:
				kind = store.KindRepository
			case level == bitbucket.LevelGroup && !isPersonalSpace(sc):
				kind = store.KindProject
			default:
				return "", "", "", fmt.Errorf("%w: pass --kind personal --username NAME for a personal token, or a project or repository URL", ErrNeedKind)
			}
		}
		switch kind {
		case store.KindPersonal:
			if o.Username == "" {
				return "", "", "", fmt.Errorf("%w: a personal HTTP access token needs --username (your Bitbucket username)", ErrBadUsername)
			}
			username = o.Username
		case store.KindProject, store.KindRepository:
			if o.Username != "" {
				return "", "", "", fmt.Errorf("%w: project and repository HTTP access tokens work only as Bearer tokens: drop --username", ErrBadUsername)
			}
			authType = "Bearer"
		case store.KindWorkspace, store.KindAPI:
			return "", "", "", fmt.Errorf("%w: %s tokens are a Bitbucket Cloud kind and %s is Data Center (run `git-credential-bbtoken setup --host https://%s --flavor cloud` if it is Cloud)", ErrBadKind, kind, sc.Host, sc.Host)
		default:
			return "", "", "", fmt.Errorf("%w: unknown kind %q", ErrBadKind, kind)
		}
	}
	if kind == store.KindRepository && level != bitbucket.LevelRepository {
		return "", "", "", fmt.Errorf("%w: a repository token needs a repository URL, not %s", ErrBadKind, sc)
	}
	if (kind == store.KindProject || kind == store.KindWorkspace) && level == bitbucket.LevelHost {
		return "", "", "", fmt.Errorf("%w: a %s token needs a %s URL, not %s", ErrBadKind, kind, groupWord(f, kind), sc)
	}
	return kind, username, authType, nil
}

func groupWord(f bitbucket.Flavor, k store.Kind) string {
	if f == bitbucket.Cloud {
		return "workspace or repository"
	}
	return string(k)
}

func isPersonalSpace(sc bitbucket.Scope) bool {
	segs := sc.Segments()
	return len(segs) > 0 && strings.HasPrefix(segs[len(segs)-1], "~")
}

func checkUsername(u string) error {
	if len(u) > 256 {
		return fmt.Errorf("%w: longer than 256 bytes", ErrBadUsername)
	}
	// The index is a plain file, and usernames are shown: a token pasted
	// where the name goes must stay out of both.
	if bitbucket.NameHasToken(u) {
		return fmt.Errorf("%w: it looks like a token, not a user name (tokens are read from stdin)", ErrBadUsername)
	}
	for _, r := range u {
		if r <= ' ' || r == 0x7f || r == ':' {
			return fmt.Errorf("%w: it contains spaces, ':' or control characters", ErrBadUsername)
		}
	}
	return nil
}

// Remove deletes entries by ID, or every entry whose scope is the URL.
func (h *Helper) Remove(ctx context.Context, idOrURL string) ([]store.Entry, error) {
	var removed []store.Entry
	err := h.Store.Update(ctx, func(tx *store.Tx) error {
		ix := tx.Index
		// What the password store holds now (a teammate's entry pulled
		// since) can be removed by its URL.
		if _, _, err := h.passUsed(ctx, ix, nil, false); err != nil {
			h.Trace.Printf("remove: %v", err)
		}
		if e, ok := ix.Find(idOrURL); ok {
			removed = append(removed, *e)
		} else if e, ok := lookupCreated(ix, idOrURL); ok {
			removed = append(removed, *e) // an id a rotation replaced
		} else {
			sc, _, err := bitbucket.ParseUserURL(idOrURL, func(host string) bitbucket.Flavor { return flavorOf(ix, host) })
			if err != nil {
				return fmt.Errorf("%w: %q is neither an id nor a URL (%v)", store.ErrNoEntry, idOrURL, err)
			}
			for _, e := range ix.Entries {
				if e.URL == sc.String() {
					removed = append(removed, e)
				}
			}
			if len(removed) == 0 {
				return fmt.Errorf("%w for %s (see `git-credential-bbtoken list`)", store.ErrNoEntry, sc)
			}
		}
		for _, e := range removed {
			if err := tx.Forget(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// The keyring is touched before the index: a failure changed nothing.
		return nil, fmt.Errorf("nothing removed: %w", err)
	}
	for i := range removed {
		h.forgetCreated(&removed[i])
	}
	return removed, err
}

// forgetCreated says what a created token that remove or add dropped
// leaves on the server: its token, and whatever its unfinished rotation
// made, stay valid there until they expire (remove is also the way out
// when the server cannot be asked: a project renamed or deleted).
func (h *Helper) forgetCreated(e *store.Entry) {
	s := e.Server
	switch {
	case s == nil:
	case s.Unfinished():
		h.notice("%s was made by create and its rotation was unfinished: its token %s%s stay valid on the server (until revoked, or they expire): revoke them in Bitbucket if nothing else uses them", e.ID, s.ID, leftovers(s))
	default:
		h.notice("%s was made by create: its token %s stays valid on the server (until revoked, or it expires): revoke it in Bitbucket if nothing else uses it", e.ID, s.ID)
	}
}

func leftovers(s *store.ServerToken) string {
	out := ""
	if s.Retire != "" {
		out += ", " + s.Retire
	}
	if s.Pending != "" {
		out += fmt.Sprintf(" and any named %q", s.Pending)
	}
	return out
}

// FlavorOf is the flavour of a host as recorded by setup (or its default).
func FlavorOf(ix *store.Index, host string) bitbucket.Flavor { return flavorOf(ix, host) }
