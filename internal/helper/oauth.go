package helper

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bbapi"
	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// OAuth logins: a host-wide entry of kind oauth whose secret holds the
// consumer's secret, the access token and the (rotating, single-use)
// refresh token. get refreshes an access token that dies within
// RefreshBefore, once for all the git processes that ask at that moment:
// under the index lock, after reading the entry again.

// RefreshBefore is how long before its expiry an access token is renewed.
const RefreshBefore = 5 * time.Minute

// refreshBudget bounds what one refresh may hold git for.
const refreshBudget = 8 * time.Second

// ErrNeedsLogin: the login's refresh token was refused; `login` again.
var ErrNeedsLogin = errors.New("the login has ended")

// OAuthFlow is a login under way: what the browser is sent to, and what
// the redirect must carry back.
type OAuthFlow struct {
	AuthURL  string
	State    string
	Redirect string
	client   *bbapi.OAuthClient
	scope    bitbucket.Scope
	flavor   bitbucket.Flavor
	pkce     bbapi.PKCE
}

// OAuthStart prepares a login to the host of hostURL with a consumer.
// redirect is the consumer's callback URL.
func (h *Helper) OAuthStart(hostURL, key, secret, redirect string, scopes []string) (*OAuthFlow, error) {
	ix, err := h.Store.Load()
	if err != nil {
		return nil, err
	}
	sc, f, err := bitbucket.ParseUserURL(hostURL, func(host string) bitbucket.Flavor { return flavorOf(ix, host) })
	if err != nil {
		return nil, err
	}
	if sc.Level(f) != bitbucket.LevelHost {
		return nil, fmt.Errorf("%w: a login is for a whole host: give https://%s%s, not %s", ErrBadKind, sc.Host, contextOf(f, sc), sc)
	}
	if key == "" || secret == "" {
		return nil, fmt.Errorf("%w: a login needs the consumer's key (--consumer) and secret (stdin)", ErrBadToken)
	}
	p, err := bbapi.NewPKCE()
	if err != nil {
		return nil, err
	}
	state, err := bbapi.NewState()
	if err != nil {
		return nil, err
	}
	h.Redactor.Add(secret)
	c := &bbapi.OAuthClient{Endpoints: bbapi.OAuthEndpointsFor(f, sc.String()), Key: key, Secret: secret, HTTP: h.OAuthHTTP}
	return &OAuthFlow{AuthURL: c.AuthorizeURL(redirect, state, p, scopes), State: state, Redirect: redirect, client: c, scope: sc, flavor: f, pkce: p}, nil
}

// contextOf is a Data Center host's context path ("" on Cloud).
func contextOf(f bitbucket.Flavor, sc bitbucket.Scope) string {
	if f == bitbucket.Cloud || sc.Path == "" {
		return ""
	}
	segs := sc.Segments()
	if i := slices.Index(segs, "scm"); i >= 0 {
		segs = segs[:i]
	}
	if len(segs) == 0 {
		return ""
	}
	return "/" + bitbucket.CanonicalPath(f, segs)
}

// OAuthFinish trades the code for tokens and keeps the login where says
// (a store, or "" for the store setting), replacing the host's login.
func (h *Helper) OAuthFinish(ctx context.Context, flow *OAuthFlow, code, where string) (*store.Entry, error) {
	h.Redactor.Add(code)
	tok, err := flow.client.Exchange(ctx, code, flow.Redirect, flow.pkce)
	if err != nil {
		return nil, err
	}
	now := h.now().UTC()
	check, err := store.NewTokenCheck(tok.Access)
	if err != nil {
		return nil, err
	}
	e := store.Entry{
		URL: flow.scope.String(), Kind: store.KindOAuth, State: store.StateActive, Created: now, Updated: now,
		OAuth: &store.OAuthLogin{Consumer: flow.client.Key, TokenURL: flow.client.Endpoints.Token, AccessExpiry: tok.Expiry, Scopes: tok.Scopes, AccessCheck: check},
	}
	if flow.flavor == bitbucket.Cloud {
		e.Username = UserAccessToken
	} else {
		e.AuthType = "Bearer"
	}
	var added *store.Entry
	err = h.Store.Update(ctx, func(tx *store.Tx) error {
		if err := h.place(tx, flow.flavor, &e, where, "", oauthValue(&e, flow.client.Secret, tok)); err != nil {
			return err
		}
		for _, old := range slices.Clone(tx.Index.Entries) {
			if old.Kind == store.KindOAuth && old.URL == e.URL && !(old.ID == e.ID && old.Store == e.Store) {
				if err := tx.Forget(old); err != nil {
					return err
				}
			}
		}
		// A pass entry is rewritten in place: its old copy has its id.
		tx.Index.Entries = slices.DeleteFunc(tx.Index.Entries, func(o store.Entry) bool { return o.ID == e.ID })
		tx.Index.Entries = append(tx.Index.Entries, e)
		tx.Changed()
		added = &e
		return nil
	})
	return added, err
}

// oauthValue is what a login's secret holds.
func oauthValue(e *store.Entry, consumerSecret string, tok bbapi.OAuthToken) secretValue {
	v := secretValue{Password: tok.Access, OAuthRefreshToken: tok.Refresh, ConsumerSecret: consumerSecret}
	if e.AuthType != "" {
		v = secretValue{Credential: tok.Access, OAuthRefreshToken: tok.Refresh, ConsumerSecret: consumerSecret}
	}
	return v
}

// Logout removes the host's logins and returns them.
func (h *Helper) Logout(ctx context.Context, hostURL string) ([]store.Entry, error) {
	var removed []store.Entry
	err := h.Store.Update(ctx, func(tx *store.Tx) error {
		sc, _, err := bitbucket.ParseUserURL(hostURL, func(host string) bitbucket.Flavor { return flavorOf(tx.Index, host) })
		if err != nil {
			return err
		}
		// A login kept in the password store that this index has not seen.
		if _, _, err := h.passUsed(ctx, tx.Index, func(s bitbucket.Scope) bool { return s.Host == sc.Host }, false); err != nil {
			h.Trace.Printf("logout: %v", err)
		}
		for _, e := range slices.Clone(tx.Index.Entries) {
			if e.Kind == store.KindOAuth && e.URL == sc.String() {
				if err := tx.Forget(e); err != nil {
					return err
				}
				removed = append(removed, e)
			}
		}
		if len(removed) == 0 {
			return fmt.Errorf("%w: no login for %s (see `git-credential-bbtoken list`)", store.ErrNoEntry, sc.Host)
		}
		return nil
	})
	return removed, err
}

// LoginCommand is what revives a login.
func LoginCommand(e *store.Entry) string {
	consumer := ""
	if e.OAuth != nil {
		consumer = " --consumer " + e.OAuth.Consumer
	}
	return "git-credential-bbtoken login " + e.URL + consumer
}

// fresh returns a usable access token for the login e: the one it holds,
// or, when that dies within RefreshBefore, a new one, refreshed once for
// every process asking at the same time (see refresh).
func (h *Helper) fresh(ctx context.Context, e *store.Entry, v secretValue) (*store.Entry, secretValue, error) {
	if e.OAuth != nil && h.now().Add(RefreshBefore).Before(e.OAuth.AccessExpiry) {
		return e, v, nil
	}
	return h.refresh(ctx, e)
}

// refresh renews the access token of the login e under the index lock:
// it reads the login again (another process may have refreshed it while
// this one waited), spends the refresh token only if still needed, and
// commits the rotated refresh token before the new access token is used.
// A refused refresh token marks the login needs-login; a network failure
// or a 5xx changes nothing (the next get tries again).
func (h *Helper) refresh(ctx context.Context, e *store.Entry) (*store.Entry, secretValue, error) {
	ctx, cancel := context.WithTimeout(ctx, refreshBudget)
	defer cancel()
	var out *store.Entry
	var val secretValue
	var ended error
	err := h.Store.Update(ctx, func(tx *store.Tx) error {
		find := func() int {
			return slices.IndexFunc(tx.Index.Entries, func(o store.Entry) bool {
				return o.Kind == store.KindOAuth && o.URL == e.URL && o.OAuth != nil && e.OAuth != nil && o.OAuth.Consumer == e.OAuth.Consumer
			})
		}
		i := find()
		if i < 0 && e.Store == store.StorePass {
			// Read from the password store by this get, not cached yet.
			if _, _, err := h.passSync(ctx, tx.Index, func(s bitbucket.Scope) bool { return s.String() == e.URL }, false); err != nil {
				return err
			}
			i = find()
		}
		if i < 0 {
			return fmt.Errorf("%w: the login for %s was removed meanwhile", store.ErrNoEntry, e.URL)
		}
		cur := tx.Index.Entries[i]
		if cur.State == store.StateNeedsLogin {
			ended = fmt.Errorf("%w: run %s", ErrNeedsLogin, LoginCommand(&cur))
			return nil
		}
		v, err := h.readSecret(tx.Secret, &cur)
		if err != nil {
			return err
		}
		if h.now().Add(RefreshBefore).Before(cur.OAuth.AccessExpiry) {
			h.Trace.Printf("oauth: %s was refreshed meanwhile", cur.ID)
			out, val = &cur, v
			return nil
		}
		c := &bbapi.OAuthClient{Endpoints: bbapi.OAuthEndpoints{Token: cur.OAuth.TokenURL}, Key: cur.OAuth.Consumer, Secret: v.ConsumerSecret, HTTP: h.OAuthHTTP}
		tok, err := c.Refresh(ctx, v.OAuthRefreshToken)
		if errors.Is(err, bbapi.ErrInvalidGrant) || errors.Is(err, bbapi.ErrInvalidClient) {
			tx.Index.Entries[i].State = store.StateNeedsLogin
			tx.Index.Entries[i].Updated = h.now().UTC()
			tx.Changed()
			ended = fmt.Errorf("%w (%v): run %s", ErrNeedsLogin, err, LoginCommand(&cur))
			return nil
		}
		if err != nil {
			return fmt.Errorf("refreshing the login for %s: %w", cur.URL, err)
		}
		h.Trace.Printf("oauth: refreshed %s (%s)", cur.ID, cur.URL)
		if tok.Refresh == "" {
			tok.Refresh = v.OAuthRefreshToken // not rotated this time
		}
		check, err := store.NewTokenCheck(tok.Access)
		if err != nil {
			return err
		}
		next := cur
		next.OAuth = &store.OAuthLogin{
			Consumer: cur.OAuth.Consumer, TokenURL: cur.OAuth.TokenURL, AccessExpiry: tok.Expiry, Scopes: cmp.Or(tok.Scopes, cur.OAuth.Scopes),
			AccessCheck: check, PrevCheck: cur.OAuth.AccessCheck,
		}
		next.Updated = h.now().UTC()
		nv := oauthValue(&next, v.ConsumerSecret, tok)
		h.Redactor.Add(tok.Access, tok.Refresh)
		// The rotated refresh token is all that keeps the login: it is
		// written (and the index committed) before the access token is
		// served. A crash in between leaves the old, spent one: the next
		// get is refused and says to log in again.
		if err := h.place(tx, flavorOf(tx.Index, bitbucket.ScopeHost(cur.URL)), &next, cur.StoreName(), "", nv); err != nil {
			return err
		}
		// Roll forward: the index names the new secret before the old one
		// goes (after the commit; a failed delete is left to the next
		// write), so no crash or slow keyring loses what the server
		// has already rotated.
		if err := tx.Replace(cur, next); err != nil {
			return err
		}
		out, val = &next, nv
		return nil
	})
	if err != nil {
		return nil, secretValue{}, err
	}
	if ended != nil {
		return nil, secretValue{}, ended
	}
	return out, val, nil
}
