package helper

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/passstore/passtest"
	"github.com/bbtoken/git-credential-bbtoken/internal/redact"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

func TestPassNames(t *testing.T) {
	flavor := func(host string) bitbucket.Flavor { return bitbucket.DefaultFlavor(host) }
	for _, tc := range []struct {
		e    store.Entry
		name string
	}{
		{store.Entry{URL: "https://bitbucket.org/ws/repo", Kind: store.KindRepository, Username: UserAccessToken}, "bitbucket.org/ws/repo"},
		{store.Entry{URL: "https://bitbucket.org/ws", Kind: store.KindWorkspace, Username: UserAccessToken}, "bitbucket.org/ws"},
		{store.Entry{URL: "https://bitbucket.org/ws", Kind: store.KindProject, Username: UserAccessToken}, "bitbucket.org/ws+project"},
		{store.Entry{URL: "https://bitbucket.org", Kind: store.KindAPI, Username: "Alice"}, "alice@bitbucket.org"},
		{store.Entry{URL: "https://bitbucket.org", Kind: store.KindAPI, Username: UserAPIToken}, "bitbucket.org"},
		{store.Entry{URL: "https://bb.example.com/scm/PROJ", Kind: store.KindProject, AuthType: "Bearer"}, "bb.example.com/scm/PROJ"},
		{store.Entry{URL: "https://bb.example.com/scm/PROJ/repo", Kind: store.KindRepository, AuthType: "Bearer"}, "bb.example.com/scm/PROJ/repo"},
		{store.Entry{URL: "https://bb.example.com", Kind: store.KindPersonal, Username: "bob@corp.example"}, "bob@corp.example@bb.example.com"},
		{store.Entry{URL: "https://bb.example.com/scm/PROJ/repo", Kind: store.KindPersonal, Username: "a/b+c%d"}, "a%2Fb%2Bc%25d@bb.example.com/scm/PROJ/repo"},
		{store.Entry{URL: "https://bb.example.com:8443/scm/~alice/repo", Kind: store.KindStored, Username: "alice", UsernameSet: true}, "alice@bb.example.com:8443/scm/~alice/repo+stored"},
		{store.Entry{URL: "https://bitbucket.org/ws/repo", Kind: store.KindStored}, "bitbucket.org/ws/repo+stored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := bitbucket.ParseScope(tc.e.URL)
			require.NoError(t, err)
			f := flavor(sc.Host)
			name, err := passName(f, &tc.e)
			require.NoError(t, err)
			require.Equal(t, tc.name, name)
			s, err := parsePassName(name, flavor)
			require.NoError(t, err)
			require.Equal(t, tc.e.URL, s.scope.String())
			if s.kind == "" {
				s.kind = passDefaultKind(s.flavor, s.scope.Level(s.flavor), s.userSet)
			}
			require.Equal(t, tc.e.Kind, s.kind)
			u, hasUser := nameUser(f, &tc.e)
			require.Equal(t, hasUser, s.userSet)
			require.Equal(t, u, s.user)
		})
	}
}

func TestPassNameRefusals(t *testing.T) {
	flavor := func(host string) bitbucket.Flavor { return bitbucket.DefaultFlavor(host) }
	for _, name := range []string{
		"bitbucket.org/ws/repo+nonsense",
		"bitbucket.org/ws/../x",
		"bitbucket.org/ws/..;/x",
		"a%zz@bitbucket.org",
		"a%2@bitbucket.org",
		"",
		"bad host/ws",
	} {
		_, err := parsePassName(name, flavor)
		require.Error(t, err, "%q", name)
	}
}

func FuzzPassName(f *testing.F) {
	for _, s := range []string{"bitbucket.org/ws/repo", "a%2Fb@bb.example.com/scm/P+stored", "x@y@z", "h/+api", "@h"} {
		f.Add(s)
	}
	flavor := func(host string) bitbucket.Flavor { return bitbucket.DefaultFlavor(host) }
	f.Fuzz(func(t *testing.T, name string) {
		s, err := parsePassName(name, flavor)
		if err != nil {
			return
		}
		// What a name says, written back, is read the same way.
		kind := s.kind
		if kind == "" {
			kind = passDefaultKind(s.flavor, s.scope.Level(s.flavor), s.userSet)
		}
		e := store.Entry{URL: s.scope.String(), Kind: kind, Username: s.user, UsernameSet: s.userSet}
		if !s.userSet && kind != store.KindStored {
			e.Username = UserAccessToken
		}
		if kind == store.KindStored || s.userSet && s.user != "" && s.user != UserAccessToken && s.user != UserAPIToken {
			again, err := passName(s.flavor, &e)
			if err != nil {
				t.Fatalf("%q parsed but its slot has no name: %v", name, err)
			}
			s2, err := parsePassName(again, flavor)
			if err != nil {
				t.Fatalf("%q -> %q does not parse: %v", name, again, err)
			}
			if s2.scope != s.scope {
				t.Fatalf("%q -> %q: scope %v, then %v", name, again, s.scope, s2.scope)
			}
		}
	})
}

// Only the name this helper writes for a slot is read: what pass ls shows
// is what a token is used for, and one slot has one name.
func TestPassSlotNamesAreCanonical(t *testing.T) {
	h := &Helper{}
	ix := &store.Index{}
	for _, name := range []string{
		"bitbucket.org?/ws/repo", // a query cuts the path off
		"bitbucket.org/ws#/repo",
		"bitbucket.org/ws%2Frepo",
		"BitBucket.org/ws/repo",
		"bitbucket.org:443/ws/repo",
		"bitbucket.org/ws/repo.git",
		"bitbucket.org/ws/repo/src/master",
		"bitbucket.org/ws/repo ",
		"bitbucket.org/ws+workspace", // the default kind is not spelled out
		"x-token-auth@bitbucket.org/ws/repo",
		"bb.example.com/projects/PROJ/repos/repo/browse",
	} {
		_, err := h.passSlotEntry(ix, name)
		require.Error(t, err, "%q", name)
	}
	for _, name := range []string{"bitbucket.org/ws/repo", "bitbucket.org/ws+project", "alice@bitbucket.org", "bb.example.com/scm/PROJ/repo", "bob@bb.example.com"} {
		e, err := h.passSlotEntry(ix, name)
		require.NoError(t, err, "%q", name)
		require.Equal(t, name, e.Name)
	}
}

// Pass ids never look like keyring or env ids (8 hex digits), so a name
// cannot be made to take a local entry's id.
func TestPassIDs(t *testing.T) {
	for _, name := range []string{"bitbucket.org/ws/repo", "alice@bitbucket.org", ""} {
		id := passID(name)
		require.Len(t, id, 16)
		require.Equal(t, byte('p'), id[0])
	}
	require.NotEqual(t, passID("a"), passID("b"))
}

// get keeps what it read only while the password store still holds it:
// an entry another process changed or removed meanwhile is not put back.
func TestPassRememberKeepsOnlyWhatTheStoreHolds(t *testing.T) {
	passtest.Require(t)
	home, fpr := passtest.GPGHome(t, "Remember")
	dir := filepath.Join(t.TempDir(), "password-store")
	passtest.Init(t, dir, home, false, fpr)
	h := &Helper{Store: &store.Store{Dir: t.TempDir(), Pass: &passstore.Store{Dir: dir, Env: passtest.Env(home, dir)}}, Redactor: redact.New()}
	ctx := context.Background()
	const name, tok = "bitbucket.org/ws/repo", "ATCTT3xRemember0123456789abcdef0123456789abcdef0123456789"
	read := func() (*store.Index, map[string]secretValue) {
		t.Helper()
		_, err := h.Store.Pass.Write(ctx, name, tok+"\n", "")
		require.NoError(t, err)
		ix := &store.Index{}
		e, v, err := h.passRead(ctx, ix, name)
		require.NoError(t, err)
		ix.Entries = append(ix.Entries, e)
		return ix, map[string]secretValue{e.ID: v}
	}
	cached := func() int {
		ix, err := h.Store.Load()
		require.NoError(t, err)
		return len(ix.Entries)
	}

	ix, v := read()
	_, err := h.Store.Pass.Write(ctx, name, tok+"\nlabel: changed meanwhile\n", "")
	require.NoError(t, err)
	h.passRemember(ctx, ix, v)
	require.Zero(t, cached(), "a copy of an entry changed since was kept")

	ix, v = read()
	require.NoError(t, h.Store.Pass.Remove(ctx, name, ""))
	h.passRemember(ctx, ix, v)
	require.Zero(t, cached(), "a removed entry was put back")

	ix, v = read()
	h.passRemember(ctx, ix, v)
	require.Equal(t, 1, cached())
}
