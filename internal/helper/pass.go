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
// means one entry everywhere.
func passID(name string) string {
	sum := sha256.Sum256([]byte("pass\x00" + name))
	return hex.EncodeToString(sum[:4])
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
		if c == '%' || c == '/' || c == '+' || c < 0x20 || c == 0x7f {
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
		if s.kind != store.KindStored && !slices.Contains(store.AddKinds, s.kind) {
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
	return v
}

// passEntry validates a decrypted entry as add validates a token, and
// returns the index's cached copy of it.
func (h *Helper) passEntry(ix *store.Index, name, plaintext, stamp string) (store.Entry, secretValue, error) {
	s, err := parsePassName(name, func(host string) bitbucket.Flavor { return flavorOf(ix, host) })
	if err != nil {
		return store.Entry{}, secretValue{}, err
	}
	b := passstore.ParseBody(plaintext)
	if k, ok := b.Get("kind"); ok {
		if s.kind != "" && store.Kind(k) != s.kind {
			return store.Entry{}, secretValue{}, fmt.Errorf("its name says kind %s, its kind line %s", s.kind, k)
		}
		s.kind = store.Kind(k)
	}
	if u, ok := b.Get("username"); ok && !s.userSet {
		s.user, s.userSet = u, true
	}
	expires, _ := b.Get("expires")
	label, _ := b.Get("label")
	email, _ := b.Get("email")
	authType, _ := b.Get("authtype")
	e := store.Entry{
		ID: passID(name), Store: store.StorePass, Name: name, Stamp: stamp, URL: s.scope.String(),
		Label: label, Email: email, Expires: expires, State: store.StateActive,
	}
	if _, _, err := e.ExpiresAt(); err != nil {
		return store.Entry{}, secretValue{}, fmt.Errorf("expires %q is not a date like 2027-01-31", expires)
	}
	if err := checkText("label", label, 200); err != nil {
		return store.Entry{}, secretValue{}, err
	}
	if s.kind == store.KindStored {
		if err := checkUsername(s.user); err != nil {
			return store.Entry{}, secretValue{}, err
		}
		e.Kind, e.Username, e.UsernameSet, e.AuthType = store.KindStored, s.user, s.userSet, authType
	} else {
		if s.kind == "" {
			s.kind = passDefaultKind(s.flavor, s.scope.Level(s.flavor), s.userSet)
		}
		o := AddOptions{URL: e.URL, Kind: s.kind, Username: s.user, Token: credential.Secret(b.Secret)}
		if s.user == UserAccessToken || s.user == UserAPIToken && s.kind != store.KindAPI {
			o.Username = ""
		}
		if err := checkToken(o.Token); err != nil {
			return store.Entry{}, secretValue{}, err
		}
		if e.Kind, e.Username, e.AuthType, err = decideKind(o, s.scope, s.flavor); err != nil {
			return store.Entry{}, secretValue{}, err
		}
		if err := checkEmailKind(email, e.Kind, s.flavor); err != nil {
			return store.Entry{}, secretValue{}, err
		}
	}
	v := passSecret(&e, plaintext)
	h.Redactor.Add(v.Password, v.Credential, v.OAuthRefreshToken)
	if raw, _ := encodeSecret(v); bitbucket.Checkable(raw) {
		if e.Check, err = store.NewCheck(raw); err != nil {
			return store.Entry{}, secretValue{}, err
		}
	}
	return e, v, nil
}

// passSync brings the index's copies of pass entries up to date with the
// password store, for the entries whose scope want accepts (nil: all): an
// entry new or changed there is decrypted and cached, a copy whose entry
// is gone is dropped. It returns the secrets it decrypted (by entry id, so
// get serves one without decrypting it twice) and whether ix changed.
// An entry that cannot be read is left out, with the first such error.
func (h *Helper) passSync(ctx context.Context, ix *store.Index, want func(bitbucket.Scope) bool) (read map[string]secretValue, changed bool, firstErr error) {
	p := h.Store.Pass
	if p == nil {
		return nil, false, nil
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
		i := slices.IndexFunc(ix.Entries, func(e store.Entry) bool { return e.Store == store.StorePass && e.Name == name })
		if i >= 0 && ix.Entries[i].Stamp == stamp {
			continue
		}
		plaintext, stamp, err := p.Read(ctx, name)
		var e store.Entry
		var v secretValue
		if err == nil {
			e, v, err = h.passEntry(ix, name, plaintext, stamp)
			if err != nil {
				err = fmt.Errorf("%s/%s: %w", passstore.Folder, name, err)
			}
		}
		if err != nil {
			h.Trace.Printf("pass: skip %s: %v", name, err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		now := h.now().UTC()
		e.Created, e.Updated = now, now
		if i >= 0 {
			e.Created = ix.Entries[i].Created
			ix.Entries = slices.Delete(ix.Entries, i, i+1)
		}
		ix.Entries = append(ix.Entries, e)
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

// passFor brings ix's copies of the pass entries that may answer r up to
// date (see passSync); nothing when no password store is in use.
func (h *Helper) passFor(ctx context.Context, ix *store.Index, r *request) (read map[string]secretValue, changed bool, err error) {
	if h.Store.Pass == nil || !h.passInUse() && !passCached(ix) {
		return nil, false, nil
	}
	return h.passSync(ctx, ix, func(sc bitbucket.Scope) bool { return sc.Host == r.host && covers(r, sc) })
}

// RefreshPass updates the index's copies of pass entries (list, remove,
// verify and doctor show what the password store holds now, after a pull).
// Entries that cannot be read are reported through notices.
func (h *Helper) RefreshPass(ctx context.Context) error {
	if !h.passInUse() {
		ix, err := h.Store.Load()
		if err != nil || !passCached(ix) {
			return err
		}
	}
	return h.Store.Update(ctx, func(tx *store.Tx) error {
		_, changed, err := h.passSync(ctx, tx.Index, nil)
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
		if _, ok := read[e.ID]; ok && e.Store == store.StorePass {
			fresh = append(fresh, e)
		}
	}
	if len(fresh) == 0 {
		return
	}
	s := *h.Store
	s.LockTimeout = 200 * time.Millisecond
	err := s.Update(ctx, func(tx *store.Tx) error {
		for _, e := range fresh {
			i := slices.IndexFunc(tx.Index.Entries, func(o store.Entry) bool { return o.Store == store.StorePass && o.Name == e.Name })
			if i >= 0 && tx.Index.Entries[i].Stamp == e.Stamp {
				continue
			}
			if i >= 0 {
				e.Created = tx.Index.Entries[i].Created
				tx.Index.Entries = slices.Delete(tx.Index.Entries, i, i+1)
			}
			tx.Index.Entries = append(tx.Index.Entries, e)
			tx.Changed()
		}
		return nil
	})
	if err != nil {
		h.Trace.Printf("pass: not cached this time: %v", err)
	}
}
