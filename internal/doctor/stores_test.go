package doctor

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

func TestKeyringNeeded(t *testing.T) {
	keyring := store.Entry{ID: "k"}
	env := store.Entry{ID: "e", Store: store.StoreEnv, Env: "TOK"}
	pass := store.Entry{ID: "p", Store: store.StorePass, Name: "bitbucket.org/ws/repo"}
	for _, tc := range []struct {
		name     string
		entries  []store.Entry
		settings map[string]string
		want     bool
	}{
		{"nothing yet, keyring by default", nil, nil, true},
		{"nothing yet, store pass", nil, map[string]string{"store": "pass"}, false},
		{"a keyring entry", []store.Entry{keyring, env}, map[string]string{"store": "pass"}, true},
		{"only env and pass entries", []store.Entry{env, pass}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, keyringNeeded(&store.Index{Entries: tc.entries, Settings: tc.settings}))
		})
	}
}

func TestCheckStores(t *testing.T) {
	ix := &store.Index{Entries: []store.Entry{
		{ID: "e1", URL: "https://bitbucket.org/ws/a", Kind: store.KindRepository, Store: store.StoreEnv, Env: "SET_TOKEN"},
		{ID: "e2", URL: "https://bitbucket.org/ws/b", Kind: store.KindRepository, Store: store.StoreEnv, Env: "UNSET_TOKEN"},
	}}
	vars := map[string]string{"SET_TOKEN": "x"}
	none := &passstore.Store{Dir: t.TempDir()} // no .gpg-id: not set up
	d := &Doctor{Store: &store.Store{Pass: none}, Getenv: func(k string) string { return vars[k] }}
	fs := d.checkStores(context.Background(), ix)
	if assert.Len(t, fs, 2) {
		assert.Equal(t, OK, fs[0].Level, "an unused password store is no problem: %+v", fs[0])
		assert.Contains(t, fs[0].Message, "not set up here")
		assert.Equal(t, Warn, fs[1].Level)
		assert.Contains(t, fs[1].Message, "$UNSET_TOKEN")
		assert.True(t, strings.Contains(fs[1].Fix, "remove e2"), fs[1].Fix)
	}
	// Entries in a password store that does not work here: act.
	ix.Entries = append(ix.Entries, store.Entry{ID: "p1", URL: "https://bitbucket.org/ws/c", Store: store.StorePass, Name: "bitbucket.org/ws/c"})
	fs = d.checkStores(context.Background(), ix)
	assert.Equal(t, Action, fs[0].Level, "%+v", fs[0])
	assert.NotEmpty(t, fs[0].Fix)
}
