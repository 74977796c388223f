package helper

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Entries in the password store are the record: a team shares them through
// the store's git repository, so everything get needs to choose one travels
// in it. The name shows the scope, and the user and kind when they are not
// what the scope implies: [USER@]HOST[/PATH][+KIND], e.g.
// bitbucket.org/ws/repo, alice@bb.example.com+personal... (see passName).
// The entry's first line is the token; kind, username, expires, label,
// email and authtype follow as "key: value" lines. The index keeps a cache
// of those fields, keyed by the entry's name and the hash of its
// ciphertext: get decrypts only the entry it serves, plus entries the
// cache has not seen yet.

// passID is a pass entry's id: the same on every machine, so `remove ID`
// means one entry everywhere. "p" and 60 bits of the name's hash: never
// the 8 hex digits of a keyring or env entry, and two names of one store
// sharing one would take billions of tries to make (a clash is refused,
// see passSync).
func passID(name string) string {
	sum := sha256.Sum256([]byte("pass\x00" + name))
	return "p" + hex.EncodeToString(sum[:8])[:15]
}

// passDefaultKind is the kind a name without "+KIND" holds: the one add
// infers for such a scope.
func passDefaultKind(f bitbucket.Flavor, level bitbucket.Level, user bool) store.Kind {
	switch {
	case f != bitbucket.Cloud && user:
		return store.KindPersonal
	case level == bitbucket.LevelRepository:
		return store.KindRepository
	case level == bitbucket.LevelGroup && f == bitbucket.Cloud:
		return store.KindWorkspace
	case level == bitbucket.LevelGroup:
		return store.KindProject
	case f == bitbucket.Cloud:
		return store.KindAPI
	}
	return store.KindPersonal
}

// nameUser is the user name an entry's pass name shows: none when the
// kind fixes it (access tokens, Bearer tokens).
func nameUser(f bitbucket.Flavor, e *store.Entry) (string, bool) {
	if e.Kind == store.KindStored {
		return e.Username, e.UsernameSet
	}
	if e.AuthType != "" || e.Username == "" || e.Username == UserAccessToken || e.Username == UserAPIToken {
		return "", false
	}
	if f == bitbucket.Cloud {
		return bitbucket.LowerASCII(e.Username), true // Cloud compares user names without case
	}
	return e.Username, true
}

// passName is the name of e's slot (scope, kind, user) in the password
// store: adding a token for the slot on any machine replaces the same entry.
func passName(f bitbucket.Flavor, e *store.Entry) (string, error) {
	sc, err := bitbucket.ParseScope(e.URL)
	if err != nil {
		return "", err
	}
	name := sc.Host
	if sc.Path != "" {
		name += "/" + sc.Path
	}
	user, hasUser := nameUser(f, e)
	if hasUser {
		name = escapeUser(user) + "@" + name
	}
	if e.Kind != passDefaultKind(f, sc.Level(f), hasUser) {
		name += "+" + string(e.Kind)
	}
	return name, nil
}

// escapeUser percent-encodes what would change how a name splits.
func escapeUser(u string) string {
	var b strings.Builder
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c == '%' || c == '/' || c == '+' || c == ' ' || c == ':' || c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// passSlot is what a name says.
type passSlot struct {
	scope   bitbucket.Scope
	flavor  bitbucket.Flavor
	user    string
	userSet bool
	kind    store.Kind // "" when the name does not say
}

// parsePassName reads a name written by passName or by hand (`pass insert
// git-credential-bbtoken/bitbucket.org/ws/repo`).
func parsePassName(name string, flavorOf func(string) bitbucket.Flavor) (passSlot, error) {
	var s passSlot
	rest := name
	if i := strings.LastIndexByte(rest, '+'); i > strings.LastIndexByte(rest, '/') {
		s.kind = store.Kind(rest[i+1:])
		if s.kind != store.KindStored && s.kind != store.KindOAuth && !slices.Contains(store.AddKinds, s.kind) {
			return s, fmt.Errorf("unknown kind %q after '+'", s.kind)
		}
		rest = rest[:i]
	}
	first, path, _ := strings.Cut(rest, "/")
	host := first
	if i := strings.LastIndexByte(first, '@'); i >= 0 {
		u, err := unescapeUser(first[:i])
		if err != nil {
			return s, err
		}
		s.user, s.userSet, host = u, true, first[i+1:]
	}
	sc, f, err := bitbucket.ParseUserURL("https://"+host+"/"+path, flavorOf)
	if err != nil {
		return s, err
	}
	s.scope, s.flavor = sc, f
	return s, nil
}

func unescapeUser(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("bad %-escape in the user name")
		}
		v, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			return "", errors.New("bad %-escape in the user name")
		}
		b.WriteByte(v[0])
		i += 2
	}
	return b.String(), nil
}

// passBody is what the entry for e holds.
func passBody(e *store.Entry, v secretValue) (string, error) {
	b := passstore.Body{Secret: v.Password + v.Credential}
	add := func(k, v string) {
		if v != "" {
			b.Fields = append(b.Fields, passstore.Field{Key: k, Value: v})
		}
	}
	add("kind", string(e.Kind))
	if u, ok := wireUsername(e); ok && e.AuthType == "" {
		add("username", u)
	}
	add("authtype", e.AuthType)
	add("expires", e.Expires)
	add("label", e.Label)
	add("email", e.Email)
	add("oauth_refresh_token", v.OAuthRefreshToken)
	add("consumer_secret", v.ConsumerSecret)
	if o := e.OAuth; o != nil {
		add("consumer", o.Consumer)
		add("token_url", o.TokenURL)
		if !o.AccessExpiry.IsZero() {
			add("access_expiry", o.AccessExpiry.UTC().Format(time.RFC3339))
		}
		add("scopes", o.Scopes)
	}
	if !e.Updated.IsZero() {
		add("updated", e.Updated.UTC().Format(time.RFC3339))
	}
	return passstore.FormatBody(b)
}

// passSecret decodes an entry's body.
func passSecret(e *store.Entry, plaintext string) secretValue {
	b := passstore.ParseBody(plaintext)
	v := secretValue{Password: b.Secret}
	if e.AuthType != "" {
		v = secretValue{Credential: b.Secret}
	}
	v.OAuthRefreshToken, _ = b.Get("oauth_refresh_token")
	v.ConsumerSecret, _ = b.Get("consumer_secret")
	return v
}

// passSlot reads a name into the entry it describes before its body is
// read: scope, kind and the user name sent with it. Only the name this
// helper writes for that slot is accepted: one slot has one name, and what
// a name shows (pass ls) is what it is used for.
func (h *Helper) passSlotEntry(ix *store.Index, name string) (store.Entry, error) {
	s, err := parsePassName(name, func(host string) bitbucket.Flavor { return flavorOf(ix, host) })
	if err != nil {
		return store.Entry{}, err
	}
	kind := s.kind
	if kind == "" {
		kind = passDefaultKind(s.flavor, s.scope.Level(s.flavor), s.userSet)
	}
	e := store.Entry{ID: passID(name), Store: store.StorePass, Name: name, URL: s.scope.String(), Kind: kind, State: store.StateActive}
	if kind == store.KindStored {
		// What git stored, as git sent it (spaces and ':' are %-escaped
		// in the name); never a token where the name goes.
		if bitbucket.NameHasToken(s.user) || strings.ContainsFunc(s.user, unicode.IsControl) {
			return store.Entry{}, fmt.Errorf("%w: a token or control characters in the user name", ErrBadUsername)
		}
		e.Username, e.UsernameSet = s.user, s.userSet
	} else if kind == store.KindOAuth {
		if s.userSet {
			return store.Entry{}, fmt.Errorf("%w: a login's name has no user", ErrBadUsername)
		}
		if s.flavor == bitbucket.Cloud {
			e.Username = UserAccessToken
		} else {
			e.AuthType = "Bearer"
		}
	} else if e.Kind, e.Username, e.AuthType, err = decideKind(AddOptions{URL: e.URL, Kind: kind, Username: s.user}, s.scope, s.flavor); err != nil {
		return store.Entry{}, err
	}
	if canonical, err := passName(s.flavor, &e); err != nil || canonical != name {
		return store.Entry{}, fmt.Errorf("not a name this helper writes for that token (it would be %q)", canonical)
	}
	return e, nil
}

// passEntry validates a decrypted entry as add validates a token: its body
// may add expiry, label and e-mail, never contradict its name.
func (h *Helper) passEntry(ix *store.Index, name, plaintext, stamp string) (store.Entry, secretValue, error) {
	e, err := h.passSlotEntry(ix, name)
	if err != nil {
		return store.Entry{}, secretValue{}, err
	}
	e.Stamp = stamp
	b := passstore.ParseBody(plaintext)
	f := flavorOf(ix, bitbucket.ScopeHost(e.URL))
	if k, ok := b.Get("kind"); ok && store.Kind(k) != e.Kind {
		return store.Entry{}, secretValue{}, fmt.Errorf("its kind line says %s, its name %s", k, e.Kind)
	}
	if u, ok := b.Get("username"); ok && !sameUser(f, u, e.Username) && !(e.AuthType != "" && u == "") {
		return store.Entry{}, secretValue{}, fmt.Errorf("its username line says %q, its name %q", u, e.Username)
	}
	authType, _ := b.Get("authtype")
	if e.Kind == store.KindStored {
		e.AuthType = authType
	} else if authType != "" && authType != e.AuthType {
		return store.Entry{}, secretValue{}, fmt.Errorf("its authtype line says %q, its kind %q", authType, e.AuthType)
	}
	if u, ok := b.Get("updated"); ok {
		t, err := time.Parse(time.RFC3339, u)
		if err != nil {
			return store.Entry{}, secretValue{}, fmt.Errorf("updated %q is not a time like 2027-01-31T12:00:00Z", u)
		}
		e.Updated = t.UTC()
	}
	if e.Kind == store.KindOAuth {
		if e.OAuth, err = oauthLines(b); err != nil {
			return store.Entry{}, secretValue{}, err
		}
	}
	e.Expires, _ = b.Get("expires")
	e.Label, _ = b.Get("label")
	e.Email, _ = b.Get("email")
	if _, _, err := e.ExpiresAt(); err != nil {
		return store.Entry{}, secretValue{}, fmt.Errorf("expires %q is not a date like 2027-01-31", e.Expires)
	}
	if err := checkText("label", e.Label, 200); err != nil {
		return store.Entry{}, secretValue{}, err
	}
	if err := checkEmailKind(e.Email, e.Kind, f); err != nil {
		return store.Entry{}, secretValue{}, err
	}
	v := passSecret(&e, plaintext)
	h.Redactor.Add(v.Password, v.Credential, v.OAuthRefreshToken, v.ConsumerSecret)
	if e.OAuth != nil {
		if e.OAuth.AccessCheck, err = store.NewTokenCheck(v.Password + v.Credential); err != nil {
			return store.Entry{}, secretValue{}, err
		}
	}
	if e.Kind != store.KindStored {
		if err := checkToken(credential.Secret(b.Secret)); err != nil {
			return store.Entry{}, secretValue{}, err
		}
	}
	if raw, _ := encodeSecret(v); bitbucket.Checkable(raw) {
		if e.Check, err = store.NewCheck(raw); err != nil {
			return store.Entry{}, secretValue{}, err
		}
	}
	return e, v, nil
}

// oauthLines reads a login's public lines.
func oauthLines(b passstore.Body) (*store.OAuthLogin, error) {
	o := &store.OAuthLogin{}
	o.Consumer, _ = b.Get("consumer")
	o.TokenURL, _ = b.Get("token_url")
	o.Scopes, _ = b.Get("scopes")
	if o.Consumer == "" || !strings.HasPrefix(o.TokenURL, "https://") {
		return nil, errors.New("a login needs its consumer and https token_url lines")
	}
	if x, ok := b.Get("access_expiry"); ok {
		t, err := time.Parse(time.RFC3339, x)
		if err != nil {
			return nil, fmt.Errorf("access_expiry %q is not a time like 2027-01-31T12:00:00Z", x)
		}
		o.AccessExpiry = t.UTC()
	}
	return o, nil
}

func sameUser(f bitbucket.Flavor, a, b string) bool {
	return a == b || f == bitbucket.Cloud && bitbucket.EqualFoldASCII(a, b)
}

// passRead decrypts one entry and validates it.
func (h *Helper) passRead(ctx context.Context, ix *store.Index, name string) (store.Entry, secretValue, error) {
	plaintext, stamp, err := h.Store.Pass.Read(ctx, name)
	if err != nil {
		return store.Entry{}, secretValue{}, err
	}
	e, v, err := h.passEntry(ix, name, plaintext, stamp)
	if err != nil {
		return store.Entry{}, secretValue{}, fmt.Errorf("%s/%s is not served: %w (add the token again with --store pass, or `pass rm %s/%s`)", passstore.Folder, name, err, passstore.Folder, name)
	}
	return e, v, nil
}

// passSync brings the index's copies of pass entries up to date with the
// password store, for the entries whose scope want accepts (nil: all): a
// copy whose entry is gone is dropped; an entry new or changed there is
// decrypted and cached, or, when lazy (get), described from its name
// alone (Stamp ""), to be decrypted only if get chooses it (see
// passChosen). It returns the secrets it decrypted, by entry id, and
// whether ix changed. An entry that cannot be read is left out, with the
// first such error.
func (h *Helper) passSync(ctx context.Context, ix *store.Index, want func(bitbucket.Scope) bool, lazy bool) (read map[string]secretValue, changed bool, firstErr error) {
	p := h.Store.Pass
	if p == nil {
		if passCached(ix) {
			return nil, false, h.Store.NoPassError()
		}
		return nil, false, nil
	}
	if _, err := os.Stat(p.Dir); err != nil {
		// Not an empty store: one that is not there (a mistyped
		// PASSWORD_STORE_DIR, an unmounted disk). Keep what is cached.
		return nil, false, fmt.Errorf("%w: %s: %v (check PASSWORD_STORE_DIR, or clone the store there)", store.ErrNoPass, p.Dir, errors.Unwrap(err))
	}
	names, err := p.Names(func(path, why string) { h.Trace.Printf("pass: skip %s: %s", path, why) })
	if err != nil {
		return nil, false, err
	}
	flavor := func(host string) bitbucket.Flavor { return flavorOf(ix, host) }
	seen := map[string]bool{}
	for _, name := range names {
		s, err := parsePassName(name, flavor)
		if err != nil {
			h.Trace.Printf("pass: skip %s: not a name this helper reads (%v)", name, err)
			continue
		}
		if want != nil && !want(s.scope) {
			continue
		}
		seen[name] = true
		stamp, err := p.Stamp(name)
		if err != nil {
			h.Trace.Printf("pass: skip %s: %v", name, err)
			continue
		}
		i := passIndex(ix, name)
		if i >= 0 && ix.Entries[i].Stamp == stamp {
			continue
		}
		var e store.Entry
		var v secretValue
		if lazy {
			e, err = h.passSlotEntry(ix, name)
		} else {
			e, v, err = h.passRead(ctx, ix, name)
		}
		if err != nil {
			h.Trace.Printf("pass: skip %s: %v", name, err)
			if firstErr == nil && !lazy {
				firstErr = err
			}
			continue
		}
		if j := slices.IndexFunc(ix.Entries, func(o store.Entry) bool { return o.ID == e.ID }); j >= 0 && j != i {
			h.Trace.Printf("pass: skip %s: its id %s is entry %s's (%s): rename one of them", name, e.ID, ix.Entries[j].Name, ix.Entries[j].StoreName())
			continue
		}
		now := h.now().UTC()
		e.Created = now
		if e.Updated.IsZero() {
			e.Updated = now
		}
		putPass(ix, i, e)
		if lazy {
			continue // described, not read: nothing to keep yet
		}
		if read == nil {
			read = map[string]secretValue{}
		}
		read[e.ID] = v
		changed = true
		h.Trace.Printf("pass: read %s (%s %s)", name, e.Kind, e.URL)
	}
	before := len(ix.Entries)
	ix.Entries = slices.DeleteFunc(ix.Entries, func(e store.Entry) bool {
		if e.Store != store.StorePass || seen[e.Name] {
			return false
		}
		sc, err := bitbucket.ParseScope(e.URL)
		gone := err != nil || want == nil || want(sc)
		if gone {
			h.Trace.Printf("pass: %s is no longer in the password store", e.Name)
		}
		return gone
	})
	return read, changed || len(ix.Entries) != before, firstErr
}

// passIndex is where ix caches the pass entry name, or -1.
func passIndex(ix *store.Index, name string) int {
	return slices.IndexFunc(ix.Entries, func(e store.Entry) bool { return e.Store == store.StorePass && e.Name == name })
}

// putPass caches e in ix in place of the copy at i (-1: none), keeping
// when this machine first saw the entry.
func putPass(ix *store.Index, i int, e store.Entry) {
	if i >= 0 {
		e.Created = ix.Entries[i].Created
		ix.Entries = slices.Delete(ix.Entries, i, i+1)
	}
	ix.Entries = append(ix.Entries, e)
}

// passChosen reads the pass entry get chose, if only its name was known:
// e becomes what the entry says, which may make it unusable after all.
func (h *Helper) passChosen(ctx context.Context, ix *store.Index, e *store.Entry, read map[string]secretValue) (map[string]secretValue, error) {
	if e.Store != store.StorePass || e.Stamp != "" {
		return read, nil
	}
	full, v, err := h.passRead(ctx, ix, e.Name)
	if err != nil {
		return read, err
	}
	full.Created = e.Created
	if full.Updated.IsZero() {
		full.Updated = e.Updated
	}
	*e = full
	if read == nil {
		read = map[string]secretValue{}
	}
	read[e.ID] = v
	h.Trace.Printf("pass: read %s (%s %s)", e.Name, e.Kind, e.URL)
	return read, nil
}

// passUsed is passSync where a password store is in use here (or ix
// caches its entries); nothing otherwise, so a keyring user's commands
// pay one stat.
func (h *Helper) passUsed(ctx context.Context, ix *store.Index, want func(bitbucket.Scope) bool, lazy bool) (read map[string]secretValue, changed bool, err error) {
	if h.Store.Pass == nil || !h.passInUse() && !passCached(ix) {
		return nil, false, nil
	}
	return h.passSync(ctx, ix, want, lazy)
}

// passFor brings ix's copies of the pass entries that may answer r up to
// date (see passUsed).
func (h *Helper) passFor(ctx context.Context, ix *store.Index, r *request, lazy bool) (read map[string]secretValue, changed bool, err error) {
	return h.passUsed(ctx, ix, func(sc bitbucket.Scope) bool { return sc.Host == r.host && covers(r, sc) }, lazy)
}

// RefreshPass updates the index's copies of pass entries, so that list and
// repair show what the password store holds now (after a pull).
// Entries that cannot be read are reported through notices.
func (h *Helper) RefreshPass(ctx context.Context) error {
	ix, err := h.Store.Load()
	if err != nil || ix.Newer() != 0 || !h.passInUse() && !passCached(ix) {
		return err // a newer index is shown as it is, read-only
	}
	return h.Store.Update(ctx, func(tx *store.Tx) error {
		_, changed, err := h.passSync(ctx, tx.Index, nil, false)
		if err != nil {
			h.notice("%v", err)
		}
		if changed {
			tx.Changed()
		}
		return nil
	})
}

// passInUse reports whether a password store holds entries of ours here
// (one stat: get of a keyring user pays nothing more).
func (h *Helper) passInUse() bool {
	if h.Store.Pass == nil {
		return false
	}
	_, err := os.Stat(filepath.Join(h.Store.Pass.Dir, passstore.Folder))
	return err == nil
}

// passCached reports whether ix holds copies of pass entries.
func passCached(ix *store.Index) bool {
	return slices.ContainsFunc(ix.Entries, func(e store.Entry) bool { return e.Store == store.StorePass })
}

// passRemember caches what get read from the password store, if the index
// lock is free: the next get then decrypts only the entry it serves.
func (h *Helper) passRemember(ctx context.Context, ix *store.Index, read map[string]secretValue) {
	var fresh []store.Entry
	for _, e := range ix.Entries {
		if _, ok := read[e.ID]; ok && e.Store == store.StorePass && e.Stamp != "" {
			fresh = append(fresh, e)
		}
	}
	if len(fresh) == 0 {
		return
	}
	s := *h.Store
	s.LockTimeout = 200 * time.Millisecond
	err := s.UpdateCache(func(ix *store.Index) bool {
		changed := false
		for _, e := range fresh {
			// Only what the store still holds: a remove or another
			// read (and a rejection recorded since) wins over this one.
			if now, err := h.Store.Pass.Stamp(e.Name); err != nil || now != e.Stamp {
				continue
			}
			i := passIndex(ix, e.Name)
			if i >= 0 && ix.Entries[i].Stamp == e.Stamp || i < 0 && ix.HasID(e.ID) {
				continue
			}
			putPass(ix, i, e)
			changed = true
		}
		return changed
	})
	if err != nil {
		h.Trace.Printf("pass: not cached this time: %v", err)
	}
}
