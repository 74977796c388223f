package helper_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Env entries: the token is read from the environment when git asks;
// nothing of it is stored, and store and erase leave the entry alone.
func TestEnvEntries(t *testing.T) {
	f := newFixture(t)
	vars := map[string]string{}
	f.h.Store.Getenv = func(k string) string { return vars[k] }
	tok := "ATCTT3xEnv" + "0123456789abcdef0123456789abcdef0123456789abcdef0123"
	f.remember(tok)

	e := f.add("ci", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindRepository, FromEnv: "BB_TOKEN"})
	require.Equal(t, store.StoreEnv, e.Store)
	require.Equal(t, "BB_TOKEN", e.Env)
	require.Empty(t, e.Check, "an env entry keeps no check")
	require.Zero(t, f.sec.sets.Load(), "the keyring was written")

	req := q("protocol=https", "host=bitbucket.org", "path=ws/repo.git")
	require.Empty(t, f.get(req), "unset: nothing served")
	require.Contains(t, f.trace.String(), "$BB_TOKEN")

	// Unset, git's store of what the user typed instead keeps it (the env
	// entry is skipped, not an error), and erase of it takes only that.
	typed := q("protocol=https", "host=bitbucket.org", "path=ws/repo.git", "username=bob", "password=typed-password-1")
	f.store(typed)
	require.Len(t, f.storedEntries(), 1)
	f.erase(typed)
	require.Empty(t, f.storedEntries())
	require.Equal(t, store.StateActive, f.entry("ci").State)

	vars["BB_TOKEN"] = tok
	gets := f.sec.gets.Load()
	require.Equal(t, q("username=x-token-auth", "password="+tok), f.get(req))
	require.Equal(t, gets, f.sec.gets.Load(), "get of an env entry read the keyring")

	// git's store after a success, and erase after a 401: nothing changes.
	before := f.snapshot()
	f.store(q("protocol=https", "host=bitbucket.org", "path=ws/repo.git", "username=x-token-auth", "password="+tok))
	f.erase(q("protocol=https", "host=bitbucket.org", "path=ws/repo.git", "username=x-token-auth", "password="+tok))
	f.requireUnchanged(before)
	require.Equal(t, store.StateActive, f.entry("ci").State)

	// The variable holding a new token next time is served as is.
	vars["BB_TOKEN"] = tok + "new"
	f.remember(tok + "new")
	require.Equal(t, q("username=x-token-auth", "password="+tok+"new"), f.get(req))

	// A local keyring token for the same slot replaces the env entry.
	f.add("kr", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Token: "ATCTT3xKeyring0123456789abcdef0123456789abcdef0123456789ab"})
	_, ok := f.index().Find(f.ids["ci"])
	require.False(t, ok, "the env entry was not replaced")
}

func TestEnvEntryRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    helper.AddOptions
		want error
	}{
		{"digit first", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindRepository, FromEnv: "1TOKEN"}, helper.ErrBadEnvName},
		{"dash", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindRepository, FromEnv: "BB-TOKEN"}, helper.ErrBadEnvName},
		{"equals", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindRepository, FromEnv: "A=B"}, helper.ErrBadEnvName},
		{"no kind, unset", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", FromEnv: "UNSET_VAR"}, helper.ErrNeedKind},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.h.Store.Getenv = func(string) string { return "" }
			_, err := f.h.Add(context.Background(), tc.o)
			require.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
			require.Empty(t, f.index().Entries)
		})
	}
}
