package helper

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bbapi"
	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/redact"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
	"github.com/bbtoken/git-credential-bbtoken/internal/trace"
)

// Helper answers git's get, store and erase.
type Helper struct {
	Store *store.Store
	Now   func() time.Time
	Trace *trace.Logger // nil: silent
	// Redactor learns every secret the helper reads, so that no message
	// or trace line shows one (nil: none learnt; tests).
	Redactor *redact.Redactor
	// Notices gets one-line messages for the user (git shows the helper's
	// stderr). Nil discards them.
	Notices io.Writer
	// OAuthHTTP makes the HTTPS calls of OAuth logins (refresh) and of
	// the token API (create, rotate, revoke).
	OAuthHTTP *bbapi.Client
	// RotateGrace is how long a rotated-out token keeps working before it
	// is revoked (0: DefaultRotateGrace).
	RotateGrace time.Duration
}

func (h *Helper) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Helper) notice(format string, args ...any) {
	if h.Notices != nil {
		fmt.Fprintf(h.Notices, "git-credential-bbtoken: "+format+"\n", args...)
	}
}

// secretValue is what one keyring item holds.
type secretValue struct {
	Password          string `json:"password,omitempty"`
	Credential        string `json:"credential,omitempty"`
	OAuthRefreshToken string `json:"oauth_refresh_token,omitempty"`
	// ConsumerSecret: an OAuth login's consumer secret (refresh needs it).
	ConsumerSecret string `json:"consumer_secret,omitempty"`
}

func decodeSecret(e *store.Entry, raw string) (secretValue, error) {
	if e.Store == store.StorePass {
		return passSecret(e, raw), nil
	}
	if e.Format != store.SecretJSON {
		if e.AuthType != "" {
			return secretValue{Credential: raw}, nil
		}
		return secretValue{Password: raw}, nil
	}
	var v secretValue
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return v, fmt.Errorf("entry %s: keyring value is not in the expected format", e.ID)
	}
	return v, nil
}

// WirePassword is the password (or Bearer credential) an entry's raw
// keyring value holds, whatever its encoding: for callers that already read
// the value (doctor, import).
func WirePassword(e *store.Entry, raw string) (string, error) {
	v, err := decodeSecret(e, raw)
	if err != nil {
		return "", err
	}
	return v.Password + v.Credential, nil
}

func encodeSecret(v secretValue) (string, store.SecretFormat) {
	if v.OAuthRefreshToken == "" && (v.Password == "") != (v.Credential == "") {
		return v.Password + v.Credential, store.SecretRaw
	}
	b, _ := json.Marshal(v) // strings only: cannot fail
	return string(b), store.SecretJSON
}

// readSecret loads and decodes an entry's secret, registering it for
// redaction before anything can print it.
func (h *Helper) readSecret(get func(*store.Entry) (string, error), e *store.Entry) (secretValue, error) {
	raw, err := get(e)
	if err != nil {
		return secretValue{}, err
	}
	if e.Store != store.StorePass { // a pass entry's lines (kind: …) are no secret: its values are added below
		h.Redactor.Add(raw)
	}
	v, err := decodeSecret(e, raw)
	if err != nil {
		return v, err
	}
	h.Redactor.Add(v.Password, v.Credential, v.OAuthRefreshToken, v.ConsumerSecret)
	return v, nil
}

func (h *Helper) traceQuery(op string, q *credential.Credential) {
	h.Redactor.Add(q.Password.Reveal(), q.Credential.Reveal(), q.OAuthRefreshToken.Reveal())
	if !h.Trace.Enabled() {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: protocol=%q host=%q path=%q", op, q.Protocol, q.Host, q.Path)
	if q.HasUsername {
		fmt.Fprintf(&b, " username=%q", q.Username)
	}
	if q.HasPassword {
		fmt.Fprintf(&b, " password=%s", q.Password)
	}
	if q.AuthType != "" {
		fmt.Fprintf(&b, " authtype=%q credential=%s", q.AuthType, q.Credential)
	}
	if len(q.Capabilities) > 0 {
		fmt.Fprintf(&b, " capabilities=%v", q.Capabilities)
	}
	if q.Ephemeral {
		b.WriteString(" ephemeral")
	}
	if len(q.WWWAuth) > 0 {
		fmt.Fprintf(&b, " wwwauth=%d header(s)", len(q.WWWAuth))
	}
	h.Trace.Printf("%s", b.String())
}

// Get answers git's get: the most specific usable token for the request, or
// nil when nothing matches (git then asks the next helper or prompts).
func (h *Helper) Get(ctx context.Context, q *credential.Credential) (*credential.Credential, error) {
	h.traceQuery("get", q)
	r, err := parseRequest(q)
	if err != nil {
		return nil, err
	}
	// A secret that vanished under us usually means a parallel `add`
	// replaced the token: read the index once more to serve the new one.
	for attempt := 0; ; attempt++ {
		a, missing, err := h.get(ctx, r)
		if err != nil || a != nil || !missing || attempt > 0 {
			return a, err
		}
		h.Trace.Printf("get: a secret was missing: reading the index again")
	}
}

func (h *Helper) get(ctx context.Context, r *request) (a *credential.Credential, missing bool, err error) {
	if r.skip != "" {
		h.Trace.Printf("get: no answer: %s", r.skip)
		return nil, false, nil
	}
	ix, err := h.Store.LoadScopes(r.scopeURLs())
	if err != nil {
		return nil, false, err
	}
	r.bind(ix)
	q := r.q
	if r.hasPath && !r.safe {
		h.Trace.Printf("get: path %q has '.', '..', empty or escaped segments: only host-wide tokens apply", q.Path)
	}
	var pass passReads
	pass.read, _, pass.err = h.passFor(ctx, ix, r, true)
	defer func() { h.passRemember(ctx, ix, pass.read) }()
	// gpg is bounded per run; this bounds them all together.
	passCtx, cancel := context.WithTimeout(ctx, passBudget)
	defer cancel()
	cands := candidates(ix, r, h.now())
	if h.Trace.Enabled() {
		h.Trace.Printf("get: %d candidate(s) for %s/%s, most specific first", len(cands), r.host, strings.Join(r.segs, "/"))
		for i, c := range cands {
			h.Trace.Printf("get:   %d. %s %s %s %s", i+1, c.e.ID, c.e.Kind, c.e.URL, cmp.Or(c.reason, "usable"))
		}
	}
	warnedBearer := false
	for _, c := range cands {
		if c.reason != "" {
			h.Trace.Printf("get: skip %s (%s %s): %s", c.e.ID, c.e.Kind, c.e.URL, c.reason)
			if c.e.State == store.StateNeedsLogin {
				h.notice("%s: %s", c.e.URL, c.reason)
			}
			if c.reason == reasonNeedsAuthtype && c.e.Added() && !warnedBearer {
				warnedBearer = true
				h.notice("%s has a Data Center %s token, which works only as a Bearer token: git 2.46 or newer is needed to send it", c.e.URL, c.e.Kind)
			}
			continue
		}
		v, skip, err := h.candidateSecret(ctx, passCtx, ix, r, &c, &pass, nil)
		if err != nil {
			return nil, false, err
		}
		if skip != "" {
			h.Trace.Printf("get: skip %s (%s %s): %s", c.e.ID, c.e.Kind, c.e.URL, skip)
			missing = missing || skip == skipMissing
			continue
		}
		h.warnExpiry(ix, c.e)
		a := h.answer(q, c.e, v)
		if a.AuthType != "" {
			h.Trace.Printf("get: answer with %s (%s %s) authtype=%q credential=%s", c.e.ID, c.e.Kind, c.e.URL, a.AuthType, a.Credential)
		} else {
			h.Trace.Printf("get: answer with %s (%s %s) username=%q password=%s", c.e.ID, c.e.Kind, c.e.URL, a.Username, a.Password)
		}
		return a, false, nil
	}
	h.Trace.Printf("get: no answer: %d candidate(s), none usable", len(cands))
	if pass.err != nil {
		// An entry that may have answered could not be read: say why.
		return nil, false, pass.err
	}
	return nil, missing, nil
}

// passBudget bounds what one get spends decrypting pass entries.
const passBudget = 15 * time.Second

// loginIssued reports whether a login on the request's host issued the
// token git hands back (it may have been renewed since).
func (h *Helper) loginIssued(ix *store.Index, r *request, g secretValue) bool {
	for i := range ix.Entries {
		e := &ix.Entries[i]
		if e.Kind == store.KindOAuth && bitbucket.ScopeHost(e.URL) == r.host && e.OAuth.Issued(g.Password+g.Credential) {
			return true
		}
	}
	return false
}

// rotatedOut names the created entry whose last rotation replaced the
// token git hands back ("" when none did).
func rotatedOut(ix *store.Index, g secretValue) string {
	for _, e := range ix.Entries {
		if e.Server != nil && store.CheckMatches(e.Server.PrevCheck, g.Password+g.Credential) {
			return e.ID
		}
	}
	return ""
}

// passReads is what one command decrypted from the password store (by
// entry id) and the first entry it could not read.
type passReads struct {
	read map[string]secretValue
	err  error
}

// skipMissing is candidateSecret's reason for a secret that vanished
// (get then reads the index once more).
const skipMissing = "its secret is missing (being replaced, or `repair` reports it)"

// candidateSecret reads a usable candidate's secret for get and store, or
// says why to skip it: an entry known only by its name in the password
// store is read and judged again first; a pass entry that cannot be read,
// a vanished secret and an unset variable are skipped (the next candidate
// may answer). spare, when it holds for the entry, spares the read (store's
// check): v is then empty. Other errors (the keyring's) end the command.
func (h *Helper) candidateSecret(ctx, passCtx context.Context, ix *store.Index, r *request, c *candidate, pass *passReads, spare func(*store.Entry) bool) (v secretValue, skip string, err error) {
	v, skip, err = h.readCandidate(ctx, passCtx, ix, r, c, pass, spare)
	if err != nil || skip != "" || c.e.Kind != store.KindOAuth {
		return v, skip, err
	}
	// A login whose access token is about to die: renewed first.
	e, nv, ferr := h.fresh(ctx, c.e, v)
	if ferr != nil {
		// A login that ended, or a refresh that got no answer: one
		// line, nothing served, git goes on (and the next get tries
		// again unless the login ended).
		h.notice("%s: %v", c.e.URL, ferr)
		return v, ferr.Error(), nil
	}
	*c.e = *e
	return nv, "", nil
}

// readCandidate is candidateSecret without renewing a login.
func (h *Helper) readCandidate(ctx, passCtx context.Context, ix *store.Index, r *request, c *candidate, pass *passReads, spare func(*store.Entry) bool) (v secretValue, skip string, err error) {
	if c.e.Store == store.StorePass && c.e.Stamp == "" {
		if pass.read, err = h.passChosen(passCtx, ix, c.e, pass.read); err != nil {
			pass.err = cmp.Or(pass.err, err)
			return v, err.Error(), nil
		}
		c.bearer = c.e.AuthType != ""
		if c.reason = unusable(r, *c, h.now()); c.reason != "" {
			return v, c.reason, nil
		}
	}
	if v, ok := pass.read[c.e.ID]; ok {
		return v, "", nil
	}
	if spare != nil && spare(c.e) {
		return v, "", nil
	}
	v, err = h.readSecret(h.keyring(ctx), c.e)
	switch {
	case errors.Is(err, store.ErrEnvUnset):
		return v, err.Error(), nil
	case errors.Is(err, secrets.ErrNotFound):
		return v, skipMissing, nil
	case err != nil && c.e.Store == store.StorePass:
		pass.err = cmp.Or(pass.err, err)
		return v, err.Error(), nil
	}
	return v, "", err
}

// ExpiryWarningDays is how close to its expiry a served token starts
// drawing a warning.
const ExpiryWarningDays = 7

// SettingExpiryWarnings is the `config` key that silences the warning.
const SettingExpiryWarnings = "expiry-warnings"

// warnExpiry tells the user, at most once a day per token, that a token it
// just served expires within a week: git shows our stderr, and a warning
// beats a clone failing next week.
func (h *Helper) warnExpiry(ix *store.Index, e *store.Entry) {
	if !e.Added() || ix.Settings[SettingExpiryWarnings] == "off" {
		return
	}
	t, ok, err := e.ExpiresAt()
	if !ok || err != nil {
		return
	}
	now := h.now()
	left := t.Sub(now)
	if left > ExpiryWarningDays*24*time.Hour {
		return
	}
	today := now.UTC().Format(time.DateOnly)
	last, err := h.Store.WarnedOn(e.ID)
	if err != nil {
		// Better no warning than one on every fetch: say why instead.
		h.notice("not warning that %s expires on %s: %v", e.ID, e.Expires, err)
		return
	}
	if last == today {
		return
	}
	days := int(left.Hours() / 24)
	when := fmt.Sprintf("in %d days", days)
	if days == 0 {
		when = "within a day"
	}
	fix := "create a new one and `git-credential-bbtoken add` it"
	if e.Server != nil {
		fix = "renew it with `git-credential-bbtoken rotate " + e.ID + "`"
	}
	h.notice("the %s token for %s (%s) expires on %s, %s: %s (silence this: git-credential-bbtoken config %s off)",
		e.Kind, e.URL, e.ID, t.UTC().Format(time.DateOnly), when, fix, SettingExpiryWarnings)
	if err := h.Store.MarkWarned(e.ID, today); err != nil {
		h.Trace.Printf("get: could not record the expiry warning: %v", err)
	}
}

// answer builds get's output: only attributes we own, and authtype or state
// only when git offered the matching capability.
func (h *Helper) answer(q *credential.Credential, e *store.Entry, v secretValue) *credential.Credential {
	a := &credential.Credential{}
	if q.HasCapability("authtype") {
		a.Capabilities = append(a.Capabilities, "authtype")
	}
	if q.HasCapability("state") {
		a.Capabilities = append(a.Capabilities, "state")
		a.State = []string{StatePrefix + e.ID}
		if e.Kind == store.KindOAuth {
			// git's store then knows, whatever became of the login
			// meanwhile (logout, a new login), that this is no
			// credential to keep.
			a.State = append(a.State, StateLogin)
		}
	}
	if e.AuthType != "" {
		a.AuthType = e.AuthType
		a.Credential = credential.Secret(v.Credential)
	} else {
		a.Username, a.HasUsername = wireUsername(e)
		a.Password, a.HasPassword = credential.Secret(v.Password), true
	}
	if t, ok, err := e.ExpiresAt(); ok && err == nil {
		a.PasswordExpiryUTC = t.Unix()
	}
	if e.Kind == store.KindOAuth {
		// The access token's expiry; the refresh token is ours to spend.
		if e.OAuth != nil && !e.OAuth.AccessExpiry.IsZero() {
			a.PasswordExpiryUTC = e.OAuth.AccessExpiry.Unix()
		}
		return a
	}
	a.OAuthRefreshToken = credential.Secret(v.OAuthRefreshToken)
	return a
}

// ourState returns the entry ID git echoed back in state[], if any.
func ourState(q *credential.Credential) string {
	for _, s := range q.State {
		if id, ok := strings.CutPrefix(s, StatePrefix); ok {
			return id
		}
	}
	return ""
}

// secretFromGit is the secret git approved or rejected. An empty password
// is one: behind single sign-on git approves username= and password=
// (with http.emptyAuth) and expects them back.
func secretFromGit(q *credential.Credential) (secretValue, bool) {
	if q.AuthType != "" && q.Credential != "" {
		return secretValue{Credential: q.Credential.Reveal(), OAuthRefreshToken: q.OAuthRefreshToken.Reveal()}, true
	}
	if q.HasPassword {
		return secretValue{Password: q.Password.Reveal(), OAuthRefreshToken: q.OAuthRefreshToken.Reveal()}, true
	}
	return secretValue{}, false
}

// sameToken compares what goes on the wire, ignoring the refresh token.
func sameToken(a, b secretValue) bool {
	return a.Password == b.Password && a.Credential == b.Credential
}

// StoreCredential handles git's store. git calls it after every successful
// request on every helper, so the common case (we supplied this very
// token) must not write anything.
func (h *Helper) StoreCredential(ctx context.Context, q *credential.Credential) error {
	h.traceQuery("store", q)
	r, err := parseRequest(q)
	if err != nil {
		return err
	}
	skip := r.skip
	var ix *store.Index
	if skip == "" {
		if ix, err = h.Store.LoadScopes(r.scopeURLs()); err != nil {
			return err
		}
		r.bind(ix)
		if _, _, err := h.passFor(ctx, ix, r, true); err != nil {
			h.Trace.Printf("store: %v", err)
		}
	}
	switch {
	case skip != "":
	case slices.Contains(q.State, StateLogin):
		skip = "a token a login issued (the login renews its own)"
	case q.Ephemeral:
		skip = "ephemeral credential"
	case q.PasswordExpiryUTC != 0 && store.ClampExpiry(q.PasswordExpiryUTC) <= h.now().Unix():
		skip = "already expired"
	case r.hasPath && !r.safe:
		skip = "path has '.', '..', empty or escaped segments"
	}
	g, ok := secretFromGit(q)
	switch {
	case skip != "":
	case !ok:
		skip = "no password or credential to store"
	case bitbucket.IsAppPassword(g.Password):
		// Dead since July 2026 (410): remembering one would only hide tokens.
		skip = "an app password (they stopped working in July 2026)"
	case bitbucket.NameHasToken(q.Username):
		// The index is a plain file: a token must not sit in it as a name.
		skip = "the username looks like a token, and the index, where usernames go, is no place for one"
	}
	if skip != "" {
		h.Trace.Printf("store: nothing stored: %s", skip)
		return nil
	}
	unchanged, err := h.alreadyServed(ctx, ix, r, g)
	if err != nil || unchanged {
		return err
	}
	if h.loginIssued(ix, r, g) {
		h.Trace.Printf("store: nothing stored: a token a login issued (the login renews its own)")
		return nil
	}
	if id := rotatedOut(ix, g); id != "" {
		h.Trace.Printf("store: nothing stored: the token a rotation of %s replaced (it is revoked after the grace period)", id)
		return nil
	}
	return h.Store.Update(ctx, func(tx *store.Tx) error {
		r.bind(tx.Index) // the index as it is now, under the lock
		if _, changed, err := h.passFor(ctx, tx.Index, r, false); err != nil {
			h.Trace.Printf("store: %v", err)
		} else if changed {
			tx.Changed()
		}
		return h.storeLocked(tx, r, g)
	})
}

// alreadyServed reports whether get would answer this request with this
// very credential, with one keyring read and no lock.
func (h *Helper) alreadyServed(ctx context.Context, ix *store.Index, r *request, g secretValue) (bool, error) {
	read := h.keyring(ctx)
	if id := ourState(r.q); id != "" {
		if e, ok := ix.Find(id); ok {
			if e.Kind == store.KindOAuth {
				return e.OAuth.Issued(g.Password + g.Credential), nil
			}
			if h.checked(e, g) {
				return true, nil
			}
			return h.keyringHolds(read, e, g, true)
		}
	}
	var pass passReads
	defer func() { h.passRemember(ctx, ix, pass.read) }()
	for _, c := range candidates(ix, r, h.now()) {
		if c.reason != "" {
			continue
		}
		// Only the first usable candidate is what get answers; like get,
		// skip one whose secret is missing or cannot be read.
		if c.e.Kind == store.KindOAuth {
			// The login renews its own tokens: what it issued is no copy
			// to keep, and store never refreshes (get does).
			if c.e.Store == store.StorePass && c.e.Stamp == "" {
				if _, skip, err := h.readCandidate(ctx, ctx, ix, r, &c, &pass, nil); err != nil || skip != "" {
					// Cannot tell whether the login issued it: keep nothing.
					h.Trace.Printf("store: nothing stored: the login %s could not be read (%s%v)", c.e.ID, skip, err)
					return true, nil
				}
			}
			return c.e.OAuth.Issued(g.Password + g.Credential), nil
		}
		spared := false
		v, skip, err := h.readCandidate(ctx, ctx, ix, r, &c, &pass, func(e *store.Entry) bool {
			spared = h.checked(e, g)
			return spared
		})
		if err != nil {
			return false, err
		}
		if skip != "" {
			continue
		}
		if spared {
			v = g
		}
		if c.bearer != (r.q.AuthType != "") {
			return false, nil
		}
		if user, ok := wireUsername(c.e); !c.bearer && r.q.HasUsername && (!ok || user != r.q.Username) {
			return false, nil // git used another username: remember that one
		}
		if c.e.Kind == store.KindStored && !sameExpiry(c.e, r.q) {
			return false, nil
		}
		// A login's refresh token is its own, never git's to hand back.
		if !sameToken(v, g) || c.e.Kind != store.KindOAuth && v.OAuthRefreshToken != g.OAuthRefreshToken {
			return false, nil
		}
		h.Trace.Printf("store: unchanged: %s already holds this credential", c.e.ID)
		return true, nil
	}
	return false, nil
}

// checked reports whether e's check proves its secret is g, sparing the
// keyring read.
func (h *Helper) checked(e *store.Entry, g secretValue) bool {
	if e.Check == "" {
		return false
	}
	raw, _ := encodeSecret(g)
	if !e.CheckMatches(raw) {
		return false
	}
	h.Trace.Printf("store: %s's check matches the credential: no keyring read", e.ID)
	return true
}

// wireUsername is the username get sends with an entry, if any.
func wireUsername(e *store.Entry) (string, bool) {
	return e.Username, e.Added() || e.UsernameSet
}

func (h *Helper) keyring(ctx context.Context) func(*store.Entry) (string, error) {
	return func(e *store.Entry) (string, error) { return h.Store.Secret(ctx, e) }
}

func sameExpiry(e *store.Entry, q *credential.Credential) bool {
	t, ok, _ := e.ExpiresAt()
	if q.PasswordExpiryUTC == 0 {
		return !ok
	}
	return ok && t.Unix() == store.ClampExpiry(q.PasswordExpiryUTC)
}

// keyringHolds reports whether the keyring holds g as e's secret: the
// wire token, plus the refresh token when withRefresh (store must keep a
// rotated refresh token).
func (h *Helper) keyringHolds(get func(*store.Entry) (string, error), e *store.Entry, g secretValue, withRefresh bool) (bool, error) {
	v, err := h.readSecret(get, e)
	if errors.Is(err, secrets.ErrNotFound) || errors.Is(err, store.ErrEnvUnset) {
		return false, nil // an orphan entry holds nothing, nor an unset variable
	}
	if err != nil {
		return false, err
	}
	return sameToken(v, g) && (!withRefresh || v.OAuthRefreshToken == g.OAuthRefreshToken), nil
}

func (h *Helper) storeLocked(tx *store.Tx, r *request, g secretValue) error {
	q := r.q
	// A token we hold but had stopped offering here worked after all
	// (typed again at the prompt): revive it instead of keeping a copy.
	for _, c := range candidates(tx.Index, r, h.now()) {
		if !c.e.Added() || (c.e.State != store.StateRejected && !rejectedFor(r, c.e)) {
			continue
		}
		v, err := h.readSecret(tx.Secret, c.e)
		if err != nil || !sameToken(v, g) {
			continue
		}
		if c.e.State == store.StateRejected {
			c.e.State = store.StateActive
		}
		c.e.RejectedFor = slices.DeleteFunc(c.e.RejectedFor, func(p string) bool {
			segs, _ := bitbucket.CleanPath(p)
			return bitbucket.SamePath(r.flavor, segs, r.repo)
		})
		c.e.Updated = h.now().UTC()
		tx.Changed()
		h.Trace.Printf("store: revived %s (%s %s): git accepted it here", c.e.ID, c.e.Kind, c.e.URL)
		return nil
	}

	// authtype labels the secret only when what we keep is a credential,
	// never a password (get would otherwise send a password as Bearer).
	authType := ""
	if g.Credential != "" {
		authType = q.AuthType
	}
	scope := bitbucket.Scope{Host: r.host, Path: bitbucket.CanonicalPath(r.flavor, r.repo)}
	url := scope.String()
	now := h.now().UTC()
	var old *store.Entry
	for i := range tx.Index.Entries {
		e := &tx.Index.Entries[i]
		if e.Kind == store.KindStored && e.URL == url && e.UsernameSet == q.HasUsername && e.Username == q.Username && e.AuthType == authType {
			old = e
			break
		}
	}
	if old != nil {
		if eq, err := h.keyringHolds(tx.Secret, old, g, true); err != nil {
			return err
		} else if eq && sameExpiry(old, q) {
			h.Trace.Printf("store: unchanged: %s already holds this credential", old.ID)
			return nil
		}
	}
	e := store.Entry{
		URL: url, Kind: store.KindStored,
		Username: q.Username, UsernameSet: q.HasUsername,
		AuthType: authType, State: store.StateActive,
		Created: now, Updated: now,
	}
	if q.PasswordExpiryUTC != 0 {
		e.Expires = store.FormatExpiry(q.PasswordExpiryUTC)
	}
	if old != nil {
		e.Created = old.Created
	}
	if err := h.place(tx, r.flavor, &e, "", "", g); err != nil {
		return err
	}
	if old != nil && !(old.ID == e.ID && old.Store == e.Store) && (old.Store != store.StorePass || e.Store == store.StorePass) {
		if err := tx.Forget(*old); err != nil {
			return err
		}
	}
	tx.Index.Entries = slices.DeleteFunc(tx.Index.Entries, func(o store.Entry) bool { return o.ID == e.ID })
	tx.Index.Entries = append(tx.Index.Entries, e)
	tx.Changed()
	id := e.ID
	h.Trace.Printf("store: stored %s for %s username=%q", id, url, q.Username)
	return nil
}

// Erase handles git's erase (after a 401). It follows git 2.42: every
// matching entry goes, except one whose secret differs from the one git
// rejected. Tokens the user added are not deleted: a token rejected for its
// own scope is marked rejected; a broader token is only withdrawn from the
// repository that refused it.
func (h *Helper) Erase(ctx context.Context, q *credential.Credential) error {
	h.traceQuery("erase", q)
	r, err := parseRequest(q)
	if err != nil {
		return err
	}
	if r.skip != "" {
		h.Trace.Printf("erase: nothing to do: %s", r.skip)
		return nil
	}
	ix, err := h.Store.Load()
	if err != nil {
		return err
	}
	r.bind(ix)
	if !h.anyOnHost(ix, r.host) && !h.passInUse() {
		h.Trace.Printf("erase: nothing stored for %s", r.host)
		return nil
	}
	return h.Store.Update(ctx, func(tx *store.Tx) error {
		r.bind(tx.Index)
		if _, changed, err := h.passFor(ctx, tx.Index, r, false); err != nil {
			h.Trace.Printf("erase: %v", err)
		} else if changed {
			tx.Changed()
		}
		return h.eraseLocked(tx, r)
	})
}

func (h *Helper) anyOnHost(ix *store.Index, host string) bool {
	for i := range ix.Entries {
		if bitbucket.ScopeHost(ix.Entries[i].URL) == host {
			return true
		}
	}
	return false
}

func (h *Helper) eraseLocked(tx *store.Tx, r *request) error {
	q := r.q
	g, hasSecret := secretFromGit(q)
	onlyID := ourState(q)
	now := h.now().UTC()

	// git's own entries: wildcard semantics for a missing path or username.
	var drop []store.Entry
	for i := range tx.Index.Entries {
		e := &tx.Index.Entries[i]
		if e.Kind != store.KindStored || (onlyID != "" && e.ID != onlyID) {
			continue
		}
		sc, err := bitbucket.ParseScope(e.URL)
		if err != nil || sc.Host != r.host {
			continue
		}
		if r.hasPath && (!r.safe || !sc.Covers(r.flavor, r.host, r.segs)) {
			continue
		}
		// Without a password to compare, a broader entry that merely
		// covers the path is not the one git meant: only an exact match.
		if r.hasPath && !hasSecret && !bitbucket.SamePath(r.flavor, sc.Segments(), r.repo) {
			continue
		}
		if q.HasUsername && (!e.UsernameSet || e.Username != q.Username) {
			continue
		}
		if e.Store == store.StorePass && !hasSecret {
			// Shared with a team, maybe: only the very password git rejected.
			h.Trace.Printf("erase: keep %s: a password store entry goes only with the password git rejected", e.ID)
			continue
		}
		if hasSecret {
			eq, err := h.keyringHolds(tx.Secret, e, g, false)
			if err != nil {
				return err
			}
			if !eq {
				h.Trace.Printf("erase: keep %s: its secret differs from the rejected one", e.ID)
				continue
			}
		}
		drop = append(drop, *e)
	}
	for _, e := range drop {
		if err := tx.Forget(e); err != nil {
			return err
		}
		h.Trace.Printf("erase: deleted stored credential %s", e.ID)
	}

	// Tokens the user added: only the very token git rejected, and only
	// where get would have offered it.
	if !hasSecret {
		h.Trace.Printf("erase: no password given: added tokens are kept (use `git-credential-bbtoken remove`)")
		return nil
	}
	if r.hasPath && !r.safe {
		h.Trace.Printf("erase: path is ambiguous: added tokens are kept")
		return nil
	}
	for _, c := range candidates(tx.Index, r, h.now()) {
		if !c.e.Added() || (onlyID != "" && c.e.ID != onlyID) || c.reason != "" {
			continue
		}
		if c.e.Store == store.StoreEnv {
			// The variable may hold a new token next time.
			h.Trace.Printf("erase: %s (from $%s) is left as it is", c.e.ID, c.e.Env)
			continue
		}
		eq, err := h.keyringHolds(tx.Secret, c.e, g, false)
		if err != nil {
			return err
		}
		if !eq {
			continue
		}
		if c.e.Kind == store.KindOAuth && c.e.OAuth != nil {
			// A login's access token was refused (revoked, or its scopes
			// changed): drop it, so the next get refreshes; the login stays.
			c.e.OAuth.AccessExpiry = time.Time{}
			c.e.Updated = now
			tx.Changed()
			h.Trace.Printf("erase: %s (%s): its access token is refreshed next time", c.e.ID, c.e.URL)
			continue
		}
		if exactScope(r, c) {
			c.e.State = store.StateRejected
			h.Trace.Printf("erase: %s (%s %s) rejected for its own scope: marked rejected", c.e.ID, c.e.Kind, c.e.URL)
		} else {
			repo := bitbucket.CanonicalPath(r.flavor, r.repo)
			c.e.RejectedFor = append(c.e.RejectedFor, repo)
			h.Trace.Printf("erase: %s (%s %s) rejected for %s: no longer offered there", c.e.ID, c.e.Kind, c.e.URL, repo)
		}
		c.e.Updated = now
		tx.Changed()
	}
	return nil
}
