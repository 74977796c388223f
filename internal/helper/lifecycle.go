package helper

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bbapi"
	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/crashpoint"
	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Data Center tokens the helper creates, rotates and revokes itself
// through the REST API (bbapi.TokenAPI). The index records each one's id
// on the server (Entry.Server), and a rotation records its progress there
// before each step that the server or the keyring could not undo:
//
//  1. Pending = the new token's (unique) name; then the server creates it.
//  2. The new token is checked against the REST API, then, in one write,
//     the entry serves it and records the old one's id as Retire.
//  3. After the grace period the old token is revoked; Retire is cleared.
//
// A rotation killed anywhere leaves the entry serving the old token
// (before 2) or the new one (after), and what it recorded lets the next
// rotate or repair finish: revoke every token named Pending that the
// entry does not serve, and revoke Retire once its grace has passed.

// Errors of create, rotate and revoke.
var (
	//lint:ignore ST1005 it starts with a proper noun
	ErrNoTokenAPI      = errors.New("Bitbucket Cloud has no API for creating or rotating tokens")
	ErrNotCreated      = errors.New("not a token this helper created")
	ErrNeedCredentials = errors.New("managing tokens needs a password or an OAuth login")
	ErrBadPermissions  = errors.New("invalid permissions")
	ErrAmbiguous       = errors.New("more than one token fits")
	ErrRotation        = errors.New("rotation stopped")
	ErrAlreadyCreated  = errors.New("already created")
	ErrBadName         = errors.New("invalid name")
)

// maxTokenName bounds --name: a rotation adds its mark, and the server
// keeps names of 255 characters.
const maxTokenName = 150

// DefaultRotateGrace is how long a rotated-out token keeps working: git
// processes that read it just before the switch finish with it.
const DefaultRotateGrace = 10 * time.Second

// Default permissions: read and write of the token's scope.
var (
	defaultRepoPermissions  = []string{"REPO_WRITE"}
	defaultGroupPermissions = []string{"PROJECT_READ", "REPO_WRITE"}
)

// APICredentials is how the token API is called: the password of
// Username, or, with no password, the host's OAuth login.
type APICredentials struct {
	Username string
	Password credential.Secret
}

// CreateOptions is what `create` was given.
type CreateOptions struct {
	URL         string
	Kind        store.Kind // "" = from the URL
	Permissions []string   // nil = read and write of the scope
	ExpiryDays  int        // 0 = none asked for (the server may enforce one)
	Name        string     // the token's name on the server
	Username    string
	// Store must be "" or keyring: created tokens live in the keyring.
	Store string
}

// CreatePlan is a checked create: what the server is asked for, and whose
// password it takes ("" when the host's OAuth login is used).
type CreatePlan struct {
	opts        CreateOptions
	scope       bitbucket.Scope
	kind        store.Kind
	owner       bbapi.TokenOwner
	base        string
	permissions []string
	login       *store.Entry
	// PasswordFor is the user whose password the CLI must read; "" when
	// the OAuth login of the host is used.
	PasswordFor string
	// Host names the instance in prompts.
	Host string
}

// PlanCreate checks a create without touching the network or a secret,
// so that a mistake is told before a password is asked for.
func (h *Helper) PlanCreate(o CreateOptions) (*CreatePlan, error) {
	if err := checkUsername(o.Username); err != nil {
		return nil, err
	}
	if err := checkText("name", o.Name, maxTokenName); err != nil {
		return nil, fmt.Errorf("%w: --name: %s", ErrBadName, strings.TrimPrefix(err.Error(), ErrBadLabel.Error()+": "))
	}
	if bitbucket.NameHasToken(o.Name) {
		return nil, fmt.Errorf("%w: the name looks like a token (names are shown in Bitbucket and kept in the index)", ErrBadName)
	}
	if o.Store != "" && o.Store != store.StoreKeyring {
		return nil, fmt.Errorf("%w: tokens create makes are kept in this machine's keyring: a rotation revokes the old token after %s, while machines sharing a password store would still serve it until they pull", ErrBadKind, DefaultRotateGrace)
	}
	if o.ExpiryDays < 0 || o.ExpiryDays > 36500 {
		return nil, fmt.Errorf("%w: --expiry-days %d: a number of days from 1 to 36500 (or none)", ErrBadExpiry, o.ExpiryDays)
	}
	ix, err := h.Store.Load()
	if err != nil {
		return nil, err
	}
	sc, f, err := bitbucket.ParseUserURL(o.URL, func(host string) bitbucket.Flavor { return flavorOf(ix, host) })
	if err != nil {
		return nil, err
	}
	if f == bitbucket.Cloud {
		return nil, fmt.Errorf("%w: make the token at %s, then `git-credential-bbtoken add %s`", ErrNoTokenAPI, cloudTokenPage(sc), sc)
	}
	p := &CreatePlan{opts: o, scope: sc, Host: sc.Host}
	if p.kind, p.owner, err = createKind(o, sc); err != nil {
		return nil, err
	}
	if p.permissions, err = checkPermissions(p.kind, o.Permissions); err != nil {
		return nil, err
	}
	if p.base, err = apiBase(ix, f, sc); err != nil {
		return nil, err
	}
	if p.opts.Name == "" {
		p.opts.Name = "git-credential-bbtoken"
	}
	if old := createdFor(ix, p); old != nil {
		return nil, fmt.Errorf("%w: %s holds a token created for %s: `git-credential-bbtoken rotate %s` renews it, `revoke %s` ends it", ErrAlreadyCreated, old.ID, old.URL, old.ID, old.ID)
	}
	p.login = loginOf(ix, f, sc)
	if p.login == nil {
		if o.Username == "" {
			return nil, fmt.Errorf("%w: pass --username NAME (the Bitbucket user whose password creates the token; it is read from stdin or prompted for), or log in first (`git-credential-bbtoken login https://%s%s --consumer KEY`)", ErrNeedCredentials, sc.Host, contextOf(f, sc))
		}
		p.PasswordFor = o.Username
	}
	return p, nil
}

// createdFor is the entry a create already made for the plan's slot.
func createdFor(ix *store.Index, p *CreatePlan) *store.Entry {
	e := p.entry()
	f := flavorOf(ix, p.scope.Host)
	for i := range ix.Entries {
		if old := &ix.Entries[i]; old.Server != nil && SameIdentity(f, old, &e) {
			return old
		}
	}
	return nil
}

// createKind decides the kind from --kind or the URL, and whose tokens
// the server is asked to add to.
func createKind(o CreateOptions, sc bitbucket.Scope) (store.Kind, bbapi.TokenOwner, error) {
	project, repo := bbapi.DataCenterPath(sc)
	kind := o.Kind
	if kind == "" {
		switch {
		case repo != "" && !strings.HasPrefix(project, "~"):
			kind = store.KindRepository
		case project != "" && !strings.HasPrefix(project, "~") && repo == "":
			kind = store.KindProject
		default:
			kind = store.KindPersonal
		}
	}
	switch kind {
	case store.KindPersonal:
		if o.Username == "" {
			return "", "", fmt.Errorf("%w: a personal token needs --username (your Bitbucket username: git sends it with the token)", ErrBadUsername)
		}
		return kind, "", nil // users/SLUG: the slug is the server's to tell (Create asks)
	case store.KindProject:
		if project == "" || repo != "" || strings.HasPrefix(project, "~") {
			return "", "", fmt.Errorf("%w: a project token needs a project URL like https://%s%s/scm/PROJECT, not %s", ErrBadKind, sc.Host, contextOf(bitbucket.DataCenter, sc), sc)
		}
		return kind, bbapi.ProjectTokens(project), nil
	case store.KindRepository:
		if repo == "" || strings.HasPrefix(project, "~") {
			return "", "", fmt.Errorf("%w: a repository token needs a project repository's URL like https://%s%s/scm/PROJECT/REPO.git, not %s (personal repositories take personal tokens)", ErrBadKind, sc.Host, contextOf(bitbucket.DataCenter, sc), sc)
		}
		return kind, bbapi.RepoTokens(project, repo), nil
	}
	return "", "", fmt.Errorf("%w: create makes personal, project or repository tokens, not %q", ErrBadKind, kind)
}

// checkPermissions normalises --permissions, or gives the default.
func checkPermissions(k store.Kind, given []string) ([]string, error) {
	if len(given) == 0 {
		if k == store.KindRepository {
			return slices.Clone(defaultRepoPermissions), nil
		}
		return slices.Clone(defaultGroupPermissions), nil
	}
	allowed := bbapi.RepoPermissions
	if k != store.KindRepository {
		allowed = slices.Concat(bbapi.ProjectPermissions, bbapi.RepoPermissions)
	}
	var out []string
	for _, p := range given {
		p = strings.ToUpper(strings.TrimSpace(p))
		if !slices.Contains(allowed, p) {
			return nil, fmt.Errorf("%w: %q: a %s token takes %s", ErrBadPermissions, p, k, strings.Join(allowed, ", "))
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (p *CreatePlan) entry() store.Entry {
	e := store.Entry{URL: p.scope.String(), Kind: p.kind, State: store.StateActive}
	if p.kind == store.KindPersonal {
		e.Username = p.opts.Username
	} else {
		e.AuthType = "Bearer" // project and repository tokens work only as Bearer
	}
	return e
}

// apiBase is the REST API of the scope's instance: what setup recorded,
// else the instance URL with its context path.
func apiBase(ix *store.Index, f bitbucket.Flavor, sc bitbucket.Scope) (string, error) {
	if b := ix.Hosts[sc.Host].APIURL; b != "" {
		return b, nil
	}
	return bbapi.DefaultBase(f, sc)
}

// loginOf is the host's OAuth login that can manage tokens, if any.
func loginOf(ix *store.Index, f bitbucket.Flavor, sc bitbucket.Scope) *store.Entry {
	host := strings.TrimRight("https://"+sc.Host+contextOf(f, sc), "/")
	for i := range ix.Entries {
		e := &ix.Entries[i]
		if e.Kind == store.KindOAuth && strings.TrimRight(e.URL, "/") == host && e.State != store.StateNeedsLogin {
			return e
		}
	}
	return nil
}

// cloudTokenPage is where Bitbucket Cloud makes tokens for a scope.
func cloudTokenPage(sc bitbucket.Scope) string {
	segs := sc.Segments()
	switch len(segs) {
	case 2:
		return "https://" + sc.Host + "/" + segs[0] + "/" + segs[1] + "/admin/access-tokens (the repository's settings, Access tokens)"
	case 1:
		return "https://" + sc.Host + "/" + segs[0] + "/workspace/settings/access-tokens (the workspace's settings, Access tokens; a project's are in its settings)"
	}
	return "https://id.atlassian.com/manage-profile/security/api-tokens (an API token)"
}

// tokenAPI is the token API of base, called with a password or, with
// none, the OAuth login (its access token renewed if needed).
func (h *Helper) tokenAPI(ctx context.Context, base string, login *store.Entry, creds APICredentials) (*bbapi.TokenAPI, error) {
	api := &bbapi.TokenAPI{HTTP: h.OAuthHTTP, Base: base}
	if creds.Password != "" {
		h.Redactor.Add(creds.Password.Reveal())
		api.Auth = bbapi.Auth{Username: creds.Username, Secret: creds.Password}
		return api, nil
	}
	if login == nil {
		return nil, ErrNeedCredentials
	}
	v, err := h.readSecret(h.keyring(ctx), login)
	if err != nil {
		return nil, fmt.Errorf("reading the login for %s: %w", login.URL, err)
	}
	_, v, err = h.fresh(ctx, login, v)
	if err != nil {
		return nil, err
	}
	api.Auth = bbapi.Auth{Bearer: true, Secret: credential.Secret(v.Credential + v.Password)}
	return api, nil
}

// update is Store.Update for the lifecycle's writes: one that saved the
// index but not the journal's bookkeeping (ErrCommitted) happened, and is
// treated so: reporting it as failed would undo, or leave for repair, a
// change that holds.
func (h *Helper) update(ctx context.Context, fn func(tx *store.Tx) error) error {
	err := h.Store.Update(ctx, fn)
	if errors.Is(err, store.ErrCommitted) {
		h.Trace.Printf("lifecycle: %v", err)
		return nil
	}
	return err
}

// lifecycleWait bounds the wait for another create, rotate, revoke or
// repair of this configuration (a rotation holds the lock for its grace
// period).
func (h *Helper) lifecycleWait() time.Duration { return time.Minute + h.grace() }

// lockLifecycle takes the lifecycle lock, saying in one line what to do
// when another command keeps it.
func (h *Helper) lockLifecycle() (func(), error) {
	unlock, err := h.Store.LockLifecycle(time.Millisecond)
	if !errors.Is(err, store.ErrLocked) {
		return unlock, err
	}
	h.notice("waiting (at most %s) for another create, rotate, revoke or repair of this configuration to end", h.lifecycleWait().Round(time.Second))
	unlock, err = h.Store.LockLifecycle(h.lifecycleWait())
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("another create, rotate, revoke or repair is running for this configuration (%w): try again when it ends", err)
	}
	return unlock, err
}

// Create asks the server for a token as planned and keeps it in the
// keyring, never showing it: the entry records the server's id,
// permissions and expiry. The request is recorded first (PendingCreate),
// so a token the server made but this process never kept (killed, no
// answer, the keyring refusing it) is revoked: at once where it can be,
// else by the next create, rotate or repair.
func (h *Helper) Create(ctx context.Context, p *CreatePlan, password credential.Secret) (*store.Entry, error) {
	unlock, err := h.lockLifecycle()
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Where the token will go must be there before the server makes one.
	if _, _, err := h.Store.Secrets.Get(ctx, "keyring-probe", "", nil); err != nil && !errors.Is(err, secrets.ErrNotFound) {
		return nil, fmt.Errorf("nothing created: the keyring, where the token would go: %w", err)
	}
	// Another create may have filled the slot while this one waited.
	if ix, err := h.Store.Load(); err != nil {
		return nil, err
	} else if old := createdFor(ix, p); old != nil {
		return nil, fmt.Errorf("%w: %s was created for %s meanwhile", ErrAlreadyCreated, old.ID, old.URL)
	}
	api, err := h.tokenAPI(ctx, p.base, p.login, APICredentials{Username: p.opts.Username, Password: password})
	if err != nil {
		return nil, err
	}
	by := ""
	if p.login == nil {
		by = p.opts.Username
	}
	if p.kind == store.KindPersonal {
		slug, err := api.UserSlug(ctx, p.opts.Username)
		if err != nil {
			return nil, err
		}
		p.owner = bbapi.UserTokens(slug)
	}
	h.finishCreates(ctx, api, p.base, string(p.owner), by)
	// The owner's tokens of that name now: never the ones to revoke.
	before, err := api.List(ctx, p.owner)
	if err != nil {
		return nil, err
	}
	name, err := markedName(p.opts.Name, "created", h.now())
	if err != nil {
		return nil, err
	}
	intent := store.PendingCreate{URL: p.scope.String(), API: p.base, Owner: string(p.owner), Name: name, By: by, Started: h.now().UTC()}
	for _, t := range before {
		if t.Name == intent.Name {
			intent.Existing = append(intent.Existing, t.ID)
		}
	}
	if err := h.update(ctx, func(tx *store.Tx) error {
		tx.Index.Creating = append(tx.Index.Creating, intent)
		tx.Changed()
		return nil
	}); err != nil {
		return nil, err
	}
	crashpoint.Reached(crashpoint.CreateIntent)
	tok, err := api.Create(ctx, p.owner, name, p.permissions, p.opts.ExpiryDays)
	if err != nil {
		if !errors.Is(err, bbapi.ErrNoAnswer) {
			h.dropCreate(ctx, intent) // a refusal made nothing
			return nil, err
		}
		// The server may have made it, or make it yet: what is there now
		// goes; the request stays recorded for repair to look again.
		if rerr := h.revokeCreated(ctx, api, intent); rerr != nil {
			return nil, fmt.Errorf("%w (if the server made a token anyway, `git-credential-bbtoken repair` revokes it)", err)
		}
		return nil, fmt.Errorf("%w (any token it made is revoked; `git-credential-bbtoken repair` looks once more later, in case the server makes one after all)", err)
	}
	h.Redactor.Add(tok.Secret)
	crashpoint.Reached(crashpoint.CreateCreated)
	h.Trace.Printf("create: the server made token %s for %s", tok.ID, p.owner)
	now := h.now().UTC()
	e := p.entry()
	e.Created, e.Updated = now, now
	e.Server = &store.ServerToken{
		ID: tok.ID, Name: tok.Name, API: p.base, Owner: string(p.owner), By: by,
		Permissions: slices.Clone(cmpSlices(tok.Permissions, p.permissions)), ExpiryDays: p.opts.ExpiryDays,
	}
	setExpiry(&e, tok)
	var added *store.Entry
	var replaced []store.Entry
	err = h.update(ctx, func(tx *store.Tx) error {
		replaced = nil
		if err := checkToken(credential.Secret(tok.Secret)); err != nil {
			return fmt.Errorf("the server's answer: %w", err)
		}
		f := flavorOf(tx.Index, p.scope.Host)
		if err := h.place(tx, f, &e, store.StoreKeyring, "", wireValue(&e, tok.Secret)); err != nil {
			return err
		}
		for _, old := range slices.Clone(tx.Index.Entries) {
			if !SameIdentity(f, &old, &e) || old.Store == store.StorePass {
				continue // the team's entry: this machine's token overrides it here
			}
			if old.Server != nil {
				return fmt.Errorf("%w: %s was created for this slot meanwhile", ErrAlreadyCreated, old.ID)
			}
			if err := tx.Forget(old); err != nil {
				return err
			}
			replaced = append(replaced, old)
		}
		tx.Index.Entries = append(tx.Index.Entries, e)
		tx.Index.Creating = slices.DeleteFunc(tx.Index.Creating, intent.Same)
		tx.Changed()
		added = &e
		return nil
	})
	if err != nil {
		err = h.undoCreate(ctx, api, p.owner, tok, fmt.Errorf("nothing stored: %w", err))
		if errors.Is(err, errRevokedAgain) {
			h.dropCreate(ctx, intent)
		}
		return nil, err
	}
	for _, old := range replaced {
		h.notice("the new token replaces %s (%s), which was added by hand: revoke that one in Bitbucket if nothing else uses it", old.ID, old.Kind)
	}
	return added, nil
}

// dropCreate forgets a create's intent.
func (h *Helper) dropCreate(ctx context.Context, intent store.PendingCreate) {
	err := h.update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		n := len(tx.Index.Creating)
		tx.Index.Creating = slices.DeleteFunc(tx.Index.Creating, intent.Same)
		if len(tx.Index.Creating) != n {
			tx.Changed()
		}
		return nil
	})
	if err != nil {
		h.Trace.Printf("create: could not forget the request for %q: %v", intent.Name, err)
	}
}

// finishCreate revokes what an unfinished create may have made: the
// owner's tokens of its name that were not there before and that no entry
// serves; then forgets it.
func (h *Helper) finishCreate(ctx context.Context, api *bbapi.TokenAPI, intent store.PendingCreate) error {
	if err := h.revokeCreated(ctx, api, intent); err != nil {
		return err
	}
	h.dropCreate(ctx, intent)
	return nil
}

// revokeCreated revokes the tokens an unfinished create made that no
// entry serves (none, when the owner itself is gone).
func (h *Helper) revokeCreated(ctx context.Context, api *bbapi.TokenAPI, intent store.PendingCreate) error {
	list, err := api.List(ctx, bbapi.TokenOwner(intent.Owner))
	if err != nil {
		return err
	}
	ix, err := h.Store.Load()
	if err != nil {
		return err
	}
	for _, t := range list {
		if t.Name != intent.Name || slices.Contains(intent.Existing, t.ID) || servesToken(ix, intent.Owner, t.ID) {
			continue
		}
		if err := api.Delete(ctx, bbapi.TokenOwner(intent.Owner), t.ID); err != nil && !errors.Is(err, bbapi.ErrNoSuchToken) {
			return err
		}
		h.Trace.Printf("create: revoked token %s (%q), made by a create that did not finish", t.ID, t.Name)
	}
	return nil
}

// finishCreates finishes the unfinished creates for owner at base made
// with the same credentials (best effort: repair reports the rest).
func (h *Helper) finishCreates(ctx context.Context, api *bbapi.TokenAPI, base, owner, by string) {
	ix, err := h.Store.Load()
	if err != nil {
		return
	}
	for _, c := range ix.Creating {
		if c.API == base && c.Owner == owner && c.By == by {
			if err := h.finishCreate(ctx, api, c); err != nil {
				h.Trace.Printf("create: an unfinished create of %q: %v", c.Name, err)
			}
		}
	}
}

// servesToken reports whether an entry serves (or is rotating from or
// to) the owner's token id.
func servesToken(ix *store.Index, owner, id string) bool {
	return slices.ContainsFunc(ix.Entries, func(e store.Entry) bool {
		return e.Server != nil && e.Server.Owner == owner && (e.Server.ID == id || e.Server.Retire == id)
	})
}

// errRevokedAgain marks a create undone on the server.
var errRevokedAgain = errors.New("the new token was revoked again")

// undoCreate revokes a token that could not be kept, and says so.
func (h *Helper) undoCreate(ctx context.Context, api *bbapi.TokenAPI, owner bbapi.TokenOwner, tok bbapi.AccessToken, cause error) error {
	if ix, err := h.Store.Load(); err != nil || servesToken(ix, string(owner), tok.ID) {
		// Saved after all (or unknown): revoking could leave git nothing.
		return fmt.Errorf("%w (the new token %s may be in use: see `git-credential-bbtoken list`)", cause, tok.ID)
	}
	if err := api.Delete(context.WithoutCancel(ctx), owner, tok.ID); err != nil && !errors.Is(err, bbapi.ErrNoSuchToken) {
		return fmt.Errorf("%w; revoking the new token %s failed too (%v): `git-credential-bbtoken repair` revokes it", cause, tok.ID, err)
	}
	return fmt.Errorf("%w (%w: %s)", cause, errRevokedAgain, tok.ID)
}

func cmpSlices(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// setExpiry records the server's expiry of tok in e.
func setExpiry(e *store.Entry, tok bbapi.AccessToken) {
	e.Expires = ""
	if !tok.Expiry.IsZero() {
		e.Expires = store.FormatExpiry(tok.Expiry.Unix())
	}
}

// wireValue is the secret of an entry that sends tok.
func wireValue(e *store.Entry, tok string) secretValue {
	if e.AuthType != "" {
		return secretValue{Credential: tok}
	}
	return secretValue{Password: tok}
}

// Created is an entry create made, and whose password manages it.
type Created struct {
	Entry store.Entry
	// PasswordFor: the user whose password the CLI must read ("" when
	// the host's OAuth login is used).
	PasswordFor string
	Host        string
}

// FindCreated finds the created token that rotate or revoke names: by
// id, or the one created for a URL; with served (rotate, which harms
// nothing), else the one that serves the URL.
func (h *Helper) FindCreated(idOrURL string, served bool) (*Created, error) {
	ix, err := h.Store.Load()
	if err != nil {
		return nil, err
	}
	e, err := findCreated(ix, idOrURL, served)
	if err != nil {
		return nil, err
	}
	sc, err := bitbucket.ParseScope(e.URL)
	if err != nil {
		return nil, err
	}
	// Whoever made it manages it: the user whose password made it (a
	// login of the host may be someone else's), or the host's login.
	c := &Created{Entry: *e, Host: sc.Host, PasswordFor: e.Server.By}
	if e.Server.By == "" && loginOf(ix, bitbucket.DataCenter, sc) == nil {
		return nil, fmt.Errorf("%w: %s was created with an OAuth login of %s, which is gone: log in again (`git-credential-bbtoken login https://%s%s --consumer KEY`)", ErrNeedCredentials, e.ID, sc.Host, sc.Host, contextOf(bitbucket.DataCenter, sc))
	}
	return c, nil
}

// lookupCreated finds a created entry by its id, or by an id an earlier
// rotation gave it.
func lookupCreated(ix *store.Index, id string) (*store.Entry, bool) {
	for i := range ix.Entries {
		e := &ix.Entries[i]
		if e.Server != nil && (e.ID == id || slices.Contains(e.Server.Formerly, id)) {
			return e, true
		}
	}
	return nil, false
}

func findCreated(ix *store.Index, idOrURL string, served bool) (*store.Entry, error) {
	if e, ok := lookupCreated(ix, idOrURL); ok {
		return e, nil
	}
	if e, ok := ix.Find(idOrURL); ok {
		return nil, notCreated(ix, e)
	}
	if !strings.ContainsAny(idOrURL, "/.:") {
		return nil, fmt.Errorf("%w with id %q (see `git-credential-bbtoken list`)", store.ErrNoEntry, idOrURL)
	}
	sc, _, err := bitbucket.ParseUserURL(idOrURL, func(host string) bitbucket.Flavor { return flavorOf(ix, host) })
	if err != nil {
		return nil, fmt.Errorf("%w: %q is neither an id nor a URL (%v)", store.ErrNoEntry, idOrURL, err)
	}
	var found, byHand []*store.Entry
	for i := range ix.Entries {
		e := &ix.Entries[i]
		switch {
		case e.URL != sc.String():
		case e.Server != nil:
			found = append(found, e)
		default:
			byHand = append(byHand, e)
		}
	}
	if len(found) == 0 && len(byHand) == 0 && served {
		// No entry for that very scope: the tokens that serve it, the
		// most specific first (as get prefers them): a created one is
		// it; one added by hand cannot be rotated.
		f := flavorOf(ix, sc.Host)
		best := -1
		var winners []*store.Entry
		for i := range ix.Entries {
			e := &ix.Entries[i]
			own, err := bitbucket.ParseScope(e.URL)
			if err != nil || !e.Added() || e.Kind == store.KindOAuth || !own.Covers(f, sc.Host, sc.Segments()) {
				continue
			}
			switch n := len(own.Segments()); {
			case n > best:
				best, winners = n, []*store.Entry{e}
			case n == best:
				winners = append(winners, e)
			}
		}
		for _, e := range winners {
			if e.Server != nil {
				found = append(found, e)
			} else {
				byHand = append(byHand, e)
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		var ids []string
		for _, e := range found {
			ids = append(ids, e.ID+" ("+string(e.Kind)+" "+e.Username+")")
		}
		return nil, fmt.Errorf("%w for %s: name one by its id: %s", ErrAmbiguous, sc, strings.Join(ids, ", "))
	case len(byHand) > 0:
		return nil, notCreated(ix, byHand[0])
	}
	if flavorOf(ix, sc.Host) == bitbucket.Cloud {
		return nil, fmt.Errorf("%w: make a new token at %s", ErrNoTokenAPI, cloudTokenPage(sc))
	}
	return nil, fmt.Errorf("%w for %s (see `git-credential-bbtoken list`)", store.ErrNoEntry, sc)
}

func notCreated(ix *store.Index, e *store.Entry) error {
	if sc, err := bitbucket.ParseScope(e.URL); err == nil && flavorOf(ix, sc.Host) == bitbucket.Cloud {
		return fmt.Errorf("%w: make a new token at %s, `git-credential-bbtoken add` it, then revoke %s's there", ErrNoTokenAPI, cloudTokenPage(sc), e.ID)
	}
	return fmt.Errorf("%w: %s (%s %s) was added by hand, so its id on the server is unknown: `git-credential-bbtoken create %s` makes one the helper can rotate, then `remove %s` (and revoke the old token in Bitbucket)", ErrNotCreated, e.ID, e.Kind, e.URL, e.URL, e.ID)
}

// rotationName is the unique name of a rotation's new token: the token's
// name without an earlier rotation's mark, then this rotation's.
func rotationName(name string, now time.Time) (string, error) {
	return markedName(name, "rotated", now)
}

// nameMark is the mark markedName adds, at the end of a name.
var nameMark = regexp.MustCompile(` \((created|rotated) \d{4}-\d{2}-\d{2} [0-9a-f]{8}\)$`)

// markedName is name with what made it and a random mark, so that a
// token this helper asked for is found by its name alone (after a kill or
// a lost answer) and never confused with anyone else's: an earlier mark
// is replaced.
func markedName(name, verb string, now time.Time) (string, error) {
	name = nameMark.ReplaceAllString(name, "")
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (%s %s %s)", name, verb, now.UTC().Format(time.DateOnly), hex.EncodeToString(b[:])), nil
}

func (h *Helper) grace() time.Duration {
	if h.RotateGrace > 0 {
		return h.RotateGrace
	}
	return DefaultRotateGrace
}

// Rotate replaces the created token c with a new one of the same
// permissions (and expiry policy, or expiryDays when not 0): it finishes
// an earlier rotation first, then creates, checks, switches and, after the
// grace period, revokes the old token. It returns the entry serving the
// new token.
func (h *Helper) Rotate(ctx context.Context, c *Created, expiryDays int, password credential.Secret) (*store.Entry, error) {
	if expiryDays < 0 || expiryDays > 36500 {
		return nil, fmt.Errorf("%w: --expiry-days %d: a number of days from 1 to 36500", ErrBadExpiry, expiryDays)
	}
	if c.Entry.Store == store.StoreEnv {
		return nil, fmt.Errorf("%w: %s is read from $%s: rotate it where that variable is set", ErrNotCreated, c.Entry.ID, c.Entry.Env)
	}
	unlock, err := h.lockLifecycle()
	if err != nil {
		return nil, err
	}
	defer unlock()
	api, sc, err := h.createdAPI(ctx, &c.Entry, password)
	if err != nil {
		return nil, err
	}
	// The credentials must be able to manage the owner's tokens before
	// anything is recorded.
	if _, err := api.List(ctx, bbapi.TokenOwner(c.Entry.Server.Owner)); err != nil {
		return nil, err
	}
	cur, err := h.finishRotation(ctx, api, c.Entry.ID)
	if err != nil {
		return nil, err
	}
	now := h.now()
	name, err := rotationName(cur.Server.Name, now)
	if err != nil {
		return nil, err
	}
	// 1. The intent: a token of this name may exist from now on.
	busy := false
	if _, err := h.updateServer(ctx, cur.ID, cur.Server.ID, func(s *store.ServerToken) bool {
		if busy = s.Pending != "" || s.Retire != ""; busy {
			return false
		}
		s.Pending = name
		return true
	}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRotation, err)
	}
	if busy {
		return nil, fmt.Errorf("%w: another rotation of %s started meanwhile", ErrRotation, cur.ID)
	}
	crashpoint.Reached(crashpoint.RotateIntent)
	days := cur.Server.ExpiryDays
	if expiryDays > 0 {
		days = expiryDays
	}
	owner := bbapi.TokenOwner(cur.Server.Owner)
	tok, err := api.Create(ctx, owner, name, cur.Server.Permissions, days)
	if err != nil {
		return nil, h.abandon(ctx, api, cur, name, nil, fmt.Errorf("%w: %w", ErrRotation, err))
	}
	h.Redactor.Add(tok.Secret)
	crashpoint.Reached(crashpoint.RotateCreated)
	// 2. The new token must work before anything serves it.
	if err := h.checkNewToken(ctx, cur, sc, tok.Secret); err != nil {
		return nil, h.abandon(ctx, api, cur, name, &tok, fmt.Errorf("%w: the new token %s did not pass its check: %w", ErrRotation, tok.ID, err))
	}
	next, err := h.switchTo(ctx, cur, name, days, tok)
	if err != nil {
		return nil, h.abandon(ctx, api, cur, name, &tok, fmt.Errorf("%w: %w", ErrRotation, err))
	}
	crashpoint.Reached(crashpoint.RotateSwitched)
	h.notice("%s now serves the new token %s; the token it replaced (%s) is revoked in %s, once git processes that read it have finished (if interrupted, `git-credential-bbtoken repair` revokes it)", next.ID, tok.ID, cur.Server.ID, h.grace().Round(time.Millisecond))
	// 3. The old token goes once the grace has passed.
	done, err := h.finishRotation(ctx, api, next.ID)
	if err != nil {
		return next, fmt.Errorf("%s serves the new token, but the old one is not revoked yet (%w): `git-credential-bbtoken repair` or the next rotate revokes it", next.ID, err)
	}
	return done, nil
}

// createdAPI is the token API that manages e, with its scope.
func (h *Helper) createdAPI(ctx context.Context, e *store.Entry, password credential.Secret) (*bbapi.TokenAPI, bitbucket.Scope, error) {
	return h.managerAPI(ctx, e.URL, e.Server.API, e.Server.By, password)
}

// managerAPI is the token API at base for the scope scopeURL, called as
// whoever manages the tokens there: by's password, or, when by is "", the
// host's OAuth login.
func (h *Helper) managerAPI(ctx context.Context, scopeURL, base, by string, password credential.Secret) (*bbapi.TokenAPI, bitbucket.Scope, error) {
	sc, err := bitbucket.ParseScope(scopeURL)
	if err != nil {
		return nil, sc, err
	}
	ix, err := h.Store.Load()
	if err != nil {
		return nil, sc, err
	}
	var login *store.Entry
	if by == "" {
		login = loginOf(ix, bitbucket.DataCenter, sc)
	}
	api, err := h.tokenAPI(ctx, base, login, APICredentials{Username: by, Password: password})
	return api, sc, err
}

// checkNewToken asks the REST API whether the new token authenticates for
// the entry's scope, presented as git will present it.
func (h *Helper) checkNewToken(ctx context.Context, e *store.Entry, sc bitbucket.Scope, tok string) error {
	ep, err := bbapi.CheckEndpoint(bitbucket.DataCenter, e.Server.API, sc)
	if err != nil {
		return err
	}
	auth := bbapi.Auth{Bearer: e.AuthType != "", Username: e.Username, Secret: credential.Secret(tok)}
	res := h.OAuthHTTP.Check(ctx, ep, auth)
	switch res.Status {
	case bbapi.StatusValid, bbapi.StatusLackingScope:
		return nil // it authenticates (what it may see is its permissions' business)
	}
	return errors.New(res.Detail)
}

// switchTo makes the entry serve tok in one write, recording the old
// token as Retire; it refuses if the entry changed since the rotation
// recorded its intent.
func (h *Helper) switchTo(ctx context.Context, cur *store.Entry, pending string, days int, tok bbapi.AccessToken) (*store.Entry, error) {
	var out *store.Entry
	err := h.update(ctx, func(tx *store.Tx) error {
		e, ok := tx.Index.Find(cur.ID)
		if !ok || e.Server == nil || e.Server.ID != cur.Server.ID || e.Server.Pending != pending {
			return fmt.Errorf("%s changed meanwhile (removed, revoked, or rotated by another process)", cur.ID)
		}
		old := *e
		next := old
		srv := *old.Server
		srv.ID, srv.Name, srv.ExpiryDays, srv.Pending = tok.ID, tok.Name, days, ""
		srv.Retire, srv.RetireAfter = old.Server.ID, h.now().UTC().Add(h.grace())
		srv.PrevCheck = old.Check
		if len(tok.Permissions) > 0 {
			srv.Permissions = slices.Clone(tok.Permissions)
		}
		next.Server = &srv
		setExpiry(&next, tok)
		next.State, next.RejectedFor = store.StateActive, nil
		next.Updated = h.now().UTC()
		f := flavorOf(tx.Index, bitbucket.ScopeHost(old.URL))
		if err := h.place(tx, f, &next, old.StoreName(), "", wireValue(&next, tok.Secret)); err != nil {
			return err
		}
		if next.ID != old.ID {
			// The id create printed (the first) always, and the last few.
			f := append(slices.Clone(srv.Formerly), old.ID)
			if len(f) > 10 {
				f = append(f[:1:1], f[len(f)-9:]...)
			}
			srv.Formerly = f
		}
		if err := tx.Replace(old, next); err != nil {
			return err
		}
		out = &next
		return nil
	})
	return out, err
}

// abandon undoes a rotation that did not switch: the new token (if it is
// known) is revoked, and the intent cleared once nothing of that name is
// left on the server. What cannot be undone now stays recorded for the
// next rotate or repair.
func (h *Helper) abandon(ctx context.Context, api *bbapi.TokenAPI, cur *store.Entry, pending string, tok *bbapi.AccessToken, cause error) error {
	ctx = context.WithoutCancel(ctx)
	if tok != nil {
		if ix, err := h.Store.Load(); err != nil || servesToken(ix, cur.Server.Owner, tok.ID) {
			// The switch was saved after all (or that is unknown): the
			// new token may be all git has; the next repair sorts it out.
			return fmt.Errorf("%w (the new token %s may be in use: run `git-credential-bbtoken repair`)", cause, tok.ID)
		}
		if err := api.Delete(ctx, bbapi.TokenOwner(cur.Server.Owner), tok.ID); err != nil && !errors.Is(err, bbapi.ErrNoSuchToken) {
			return fmt.Errorf("%w; revoking the new token failed too (%v): `git-credential-bbtoken repair` revokes it later", cause, err)
		}
	}
	// A server that answered no to the create made nothing; after no
	// answer, a token of that name may exist, or appear later still: the
	// intent stays recorded for the next rotate or repair to look again.
	noAnswer := tok == nil && errors.Is(cause, bbapi.ErrNoAnswer)
	if tok != nil || noAnswer {
		if _, err := h.revokePending(ctx, api, cur.Server.Owner, pending, cur.Server.ID); err != nil || noAnswer {
			return fmt.Errorf("%w; a token of that name may be left on the server: `git-credential-bbtoken repair` revokes it later (%s still serves token %s)", cause, cur.ID, cur.Server.ID)
		}
	}
	if _, err := h.updateServer(ctx, cur.ID, cur.Server.ID, func(s *store.ServerToken) bool {
		if s.Pending != pending {
			return false
		}
		s.Pending = ""
		return true
	}); err != nil {
		return fmt.Errorf("%w; %v", cause, err)
	}
	return fmt.Errorf("%w (nothing changed: %s still serves token %s)", cause, cur.ID, cur.Server.ID)
}

// ownerHint says what to do when the owner of an entry's tokens is not
// found: renamed (the tokens live on under the new name) or deleted.
func ownerHint(err error, srv *store.ServerToken, id string) error {
	if !errors.Is(err, bbapi.ErrOwnerGone) {
		return err
	}
	return fmt.Errorf("%w (renamed or deleted? if renamed, revoke token %s in Bitbucket under its new name, then `git-credential-bbtoken remove %s`)", err, srv.ID, id)
}

// revokePending revokes every token named pending on the server but the
// one the entry serves, and counts them.
func (h *Helper) revokePending(ctx context.Context, api *bbapi.TokenAPI, owner, pending, serving string) (int, error) {
	list, err := api.List(ctx, bbapi.TokenOwner(owner))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range list {
		if t.Name != pending || t.ID == serving {
			continue
		}
		if err := api.Delete(ctx, bbapi.TokenOwner(owner), t.ID); err != nil && !errors.Is(err, bbapi.ErrNoSuchToken) {
			return n, err
		}
		h.Trace.Printf("rotate: revoked %s, made by an interrupted rotation", t.ID)
		n++
	}
	return n, nil
}

// updateServer changes an entry's Server record under the lock, if the
// entry still serves token serving; change reports whether it changed
// anything. It returns the entry as saved.
func (h *Helper) updateServer(ctx context.Context, id, serving string, change func(*store.ServerToken) bool) (*store.Entry, error) {
	var out *store.Entry
	err := h.update(ctx, func(tx *store.Tx) error {
		e, ok := tx.Index.Find(id)
		if !ok || e.Server == nil || e.Server.ID != serving {
			return fmt.Errorf("%s changed meanwhile (removed, revoked, or rotated by another process)", id)
		}
		s := *e.Server
		if change(&s) {
			e.Server = &s
			e.Updated = h.now().UTC()
			tx.Changed()
		}
		c := *e
		out = &c
		return nil
	})
	return out, err
}

// finishRotation completes what an interrupted (or just switched)
// rotation of entry id left: tokens named Pending that the entry does not
// serve are revoked; Retire is revoked once its grace has passed (waiting
// for what is left of it). It returns the entry as it is afterwards.
func (h *Helper) finishRotation(ctx context.Context, api *bbapi.TokenAPI, id string) (*store.Entry, error) {
	ix, err := h.Store.Load()
	if err != nil {
		return nil, err
	}
	e, ok := lookupCreated(ix, id)
	if !ok {
		return nil, fmt.Errorf("%w: %s (removed meanwhile?)", store.ErrNoEntry, id)
	}
	cur := *e
	id = cur.ID
	if p := cur.Server.Pending; p != "" {
		n, err := h.revokePending(ctx, api, cur.Server.Owner, p, cur.Server.ID)
		if err != nil {
			return nil, fmt.Errorf("finishing the interrupted rotation of %s: %w", id, ownerHint(err, cur.Server, id))
		}
		if n > 0 {
			h.notice("revoked %d token(s) an interrupted rotation of %s had made", n, id)
		}
		next, err := h.updateServer(ctx, id, cur.Server.ID, func(s *store.ServerToken) bool {
			if s.Pending != p {
				return false
			}
			s.Pending = ""
			return true
		})
		if err != nil {
			return nil, err
		}
		cur = *next
	}
	if r := cur.Server.Retire; r != "" {
		// At most one grace period, whatever the clock did meanwhile.
		if err := bbapi.Sleep(ctx, min(cur.Server.RetireAfter.Sub(h.now()), h.grace())); err != nil {
			return nil, err
		}
		err := api.Delete(ctx, bbapi.TokenOwner(cur.Server.Owner), r)
		if err != nil && !errors.Is(err, bbapi.ErrNoSuchToken) {
			return nil, ownerHint(err, cur.Server, cur.ID)
		}
		crashpoint.Reached(crashpoint.RotateRevoked)
		h.Trace.Printf("rotate: revoked the replaced token %s", r)
		next, err := h.updateServer(ctx, id, cur.Server.ID, func(s *store.ServerToken) bool {
			if s.Retire != r {
				return false
			}
			s.Retire, s.RetireAfter = "", time.Time{}
			return true
		})
		if err != nil {
			return nil, err
		}
		cur = *next
	}
	return &cur, nil
}

// Unfinished is work an interrupted create or rotation left, for repair.
type Unfinished struct {
	// Subject says what it is, for people.
	Subject string
	// PasswordFor: the user whose password finishing it takes ("" when
	// the host's OAuth login is used); Host is where.
	PasswordFor, Host string
	// Err says why it cannot be finished here (no credentials).
	Err error

	rotation string // the entry's id, for a rotation
	create   *store.PendingCreate
}

// Unfinished lists interrupted (or running) creates and rotations.
func (h *Helper) Unfinished() ([]Unfinished, error) {
	ix, err := h.Store.Load()
	if err != nil {
		return nil, err
	}
	var out []Unfinished
	for _, e := range ix.Entries {
		if !e.Server.Unfinished() {
			continue
		}
		u := Unfinished{Subject: fmt.Sprintf("the rotation of %s (%s %s)", e.ID, e.Kind, e.URL), rotation: e.ID}
		if c, err := h.FindCreated(e.ID, false); err != nil {
			u.Err = err
		} else {
			u.PasswordFor, u.Host = c.PasswordFor, c.Host
		}
		out = append(out, u)
	}
	for _, c := range ix.Creating {
		u := Unfinished{Subject: fmt.Sprintf("the create of %q for %s", c.Name, c.URL), create: &c, PasswordFor: c.By}
		if sc, err := bitbucket.ParseScope(c.URL); err != nil {
			u.Err = err
		} else {
			u.Host = sc.Host
			if c.By == "" && loginOf(ix, bitbucket.DataCenter, sc) == nil {
				u.Err = fmt.Errorf("%w: it was asked with an OAuth login of %s, which is gone: log in again", ErrNeedCredentials, sc.Host)
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// Finish completes what an interrupted create or rotation left (repair):
// it revokes the tokens it made that no entry serves, and the token a
// rotation replaced, after what is left of its grace period.
func (h *Helper) Finish(ctx context.Context, u Unfinished, password credential.Secret) error {
	unlock, err := h.lockLifecycle()
	if err != nil {
		return err
	}
	defer unlock()
	if u.create != nil {
		api, _, err := h.managerAPI(ctx, u.create.URL, u.create.API, u.create.By, password)
		if err != nil {
			return err
		}
		return h.finishCreate(ctx, api, *u.create)
	}
	ix, err := h.Store.Load()
	if err != nil {
		return err
	}
	e, ok := lookupCreated(ix, u.rotation)
	if !ok {
		return nil // removed meanwhile: nothing left here
	}
	api, _, err := h.createdAPI(ctx, e, password)
	if err != nil {
		return err
	}
	_, err = h.finishRotation(ctx, api, e.ID)
	return err
}

// Revoke revokes the created token c on the server (with whatever an
// unfinished rotation left), then removes it locally. gone reports that
// the server no longer knew the token.
func (h *Helper) Revoke(ctx context.Context, c *Created, password credential.Secret) (e *store.Entry, gone bool, err error) {
	unlock, err := h.lockLifecycle()
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	// The entry as it is now: a rotation may have run since c was found.
	ix, err := h.Store.Load()
	if err != nil {
		return nil, false, err
	}
	cur, ok := lookupCreated(ix, c.Entry.ID)
	if !ok {
		return nil, false, fmt.Errorf("%w: %s was removed meanwhile", store.ErrNoEntry, c.Entry.ID)
	}
	api, _, err := h.createdAPI(ctx, cur, password)
	if err != nil {
		return nil, false, err
	}
	srv := cur.Server
	owner := bbapi.TokenOwner(srv.Owner)
	if srv.Pending != "" {
		if _, err := h.revokePending(ctx, api, srv.Owner, srv.Pending, ""); err != nil {
			return nil, false, ownerHint(err, srv, cur.ID)
		}
	}
	if srv.Retire != "" {
		if err := api.Delete(ctx, owner, srv.Retire); err != nil && !errors.Is(err, bbapi.ErrNoSuchToken) {
			return nil, false, ownerHint(err, srv, cur.ID)
		}
	}
	err = api.Delete(ctx, owner, srv.ID)
	gone = errors.Is(err, bbapi.ErrNoSuchToken)
	if err != nil && !gone {
		return nil, false, ownerHint(err, srv, cur.ID)
	}
	removed := *cur
	err = h.update(ctx, func(tx *store.Tx) error {
		now, ok := tx.Index.Find(removed.ID)
		if !ok {
			return nil // removed meanwhile: nothing left to do
		}
		return tx.Forget(*now)
	})
	if err != nil {
		// Never serve a revoked token: at least mark it so (the index only).
		marked := h.Store.UpdateCache(func(ix *store.Index) bool {
			e, ok := ix.Find(removed.ID)
			if ok {
				e.State = store.StateRejected
			}
			return ok
		}) == nil
		if marked {
			return nil, gone, fmt.Errorf("revoked on the server, and no longer served, but not removed here (%w): `git-credential-bbtoken remove %s` when that works", err, removed.ID)
		}
		return nil, gone, fmt.Errorf("revoked on the server, but not removed here: %w (`git-credential-bbtoken remove %s`)", err, removed.ID)
	}
	return &removed, gone, nil
}
