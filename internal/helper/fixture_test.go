package helper_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/passstore/passtest"
	"github.com/bbtoken/git-credential-bbtoken/internal/redact"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
	"github.com/bbtoken/git-credential-bbtoken/internal/trace"
)

// t0 is the fixed "now" of every test: 2026-08-15 12:00 UTC.
var t0 = time.Date(2026, 8, 15, 12, 0, 0, 0, time.UTC)

// countingSecrets is the memory backend counting reads, writes and
// deletes, so tests can assert that an operation touched nothing.
type countingSecrets struct {
	*memory.Backend
	gets, sets, deletes atomic.Int32
}

func (c *countingSecrets) Get(ctx context.Context, id, hint string, want func(string) bool) (string, string, error) {
	c.gets.Add(1)
	return c.Backend.Get(ctx, id, hint, want)
}

func (c *countingSecrets) Set(ctx context.Context, id, secret string) (string, error) {
	c.sets.Add(1)
	return c.Backend.Set(ctx, id, secret)
}

func (c *countingSecrets) Delete(ctx context.Context, id string) error {
	c.deletes.Add(1)
	return c.Backend.Delete(ctx, id)
}

// fixture is a Helper over a temp dir and an in-memory keyring, with a
// clock the test moves, notices and a trace it inspects.
type fixture struct {
	t       *testing.T
	h       *helper.Helper
	sec     *countingSecrets
	now     time.Time
	notices bytes.Buffer
	trace   bytes.Buffer
	ids     map[string]string // names the test gave entries -> IDs
	secrets []string          // every secret the test used, for the trace check

	pass      bool              // the store setting is pass: tokens go to a real password store
	passNames map[string]string // pass entries seen: ID -> name
}

// eachStore runs a behaviour test against each place tokens go: the
// (in-memory) keyring, and a real password store (gpg, a fresh key),
// where the same requests must get the same answers.
func eachStore(t *testing.T, test func(t *testing.T, newFixture func(*testing.T) *fixture)) {
	eachStoreIn(t, false, test)
}

// eachStoreLong is eachStore for tests that build many fixtures (half a
// second each with pass): the quick tier (-short) runs them on the
// keyring only.
func eachStoreLong(t *testing.T, test func(t *testing.T, newFixture func(*testing.T) *fixture)) {
	eachStoreIn(t, true, test)
}

func eachStoreIn(t *testing.T, long bool, test func(t *testing.T, newFixture func(*testing.T) *fixture)) {
	t.Run("keyring", func(t *testing.T) { test(t, newFixture) })
	t.Run("pass", func(t *testing.T) {
		if long && testing.Short() {
			t.Skip("many password stores: not in the quick tier")
		}
		test(t, newPassFixture)
	})
}

// newPassFixture is newFixture with a real password store (a fresh gpg
// key, no git) as the store setting.
func newPassFixture(t *testing.T) *fixture {
	t.Helper()
	passtest.Require(t)
	f := newFixture(t)
	home, fpr := passtest.GPGHome(t, "Helper Test")
	dir := filepath.Join(t.TempDir(), "password-store")
	passtest.Init(t, dir, home, false, fpr) // commits: see passstore's and e2e's tests
	f.h.Store.Pass = &passstore.Store{Dir: dir, Env: passtest.Env(home, dir)}
	require.NoError(t, f.h.SetSetting(context.Background(), helper.SettingStore, store.StorePass))
	f.pass, f.passNames = true, map[string]string{}
	return f
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, now: t0, ids: map[string]string{}}
	f.sec = &countingSecrets{Backend: memory.New()}
	red := redact.New()
	f.h = &helper.Helper{
		Store:    &store.Store{Dir: filepath.Join(t.TempDir(), "config"), Secrets: f.sec},
		Now:      func() time.Time { return f.now },
		Trace:    trace.New(&f.trace, red),
		Redactor: red,
		Notices:  &f.notices,
	}
	t.Cleanup(func() {
		for _, s := range f.secrets {
			if strings.Contains(f.trace.String(), s) {
				t.Errorf("the trace contains the secret %q:\n%s", s, f.trace.String())
			}
			if strings.Contains(f.notices.String(), s) {
				t.Errorf("a notice contains the secret %q", s)
			}
		}
	})
	return f
}

// remember registers a secret for the end-of-test trace check.
func (f *fixture) remember(secrets ...string) {
	for _, s := range secrets {
		if len(s) >= 8 {
			f.secrets = append(f.secrets, s)
		}
	}
}

// add adds a token under a name the test uses in placeholders ({name}).
func (f *fixture) add(name string, o helper.AddOptions) *store.Entry {
	f.t.Helper()
	f.remember(o.Token.Reveal())
	e, err := f.h.Add(context.Background(), o)
	require.NoError(f.t, err, "add %s", name)
	if name != "" {
		f.ids[name] = e.ID
	}
	return e
}

// q builds git's input from lines.
func q(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func (f *fixture) read(in string) *credential.Credential {
	f.t.Helper()
	c, err := credential.Read(strings.NewReader(in))
	require.NoError(f.t, err)
	f.remember(c.Password.Reveal(), c.Credential.Reveal(), c.OAuthRefreshToken.Reveal())
	return c
}

// get runs get and renders the answer as git would read it ("" for none).
func (f *fixture) get(in string) string {
	f.t.Helper()
	a, err := f.h.Get(context.Background(), f.read(in))
	require.NoError(f.t, err)
	if a == nil {
		return ""
	}
	var b bytes.Buffer
	require.NoError(f.t, credential.Write(&b, a))
	return b.String()
}

func (f *fixture) store(in string) {
	f.t.Helper()
	require.NoError(f.t, f.h.StoreCredential(context.Background(), f.read(in)))
}

func (f *fixture) erase(in string) {
	f.t.Helper()
	require.NoError(f.t, f.h.Erase(context.Background(), f.read(in)))
}

// expand replaces {name} with the ID the test gave that name.
func (f *fixture) expand(s string) string {
	for name, id := range f.ids {
		s = strings.ReplaceAll(s, "{"+name+"}", id)
	}
	return s
}

func (f *fixture) index() *store.Index {
	f.t.Helper()
	ix, err := f.h.Store.Load()
	require.NoError(f.t, err)
	for _, e := range ix.Entries {
		if e.Store == store.StorePass {
			f.passNames[e.ID] = e.Name
		}
	}
	return ix
}

func (f *fixture) entry(name string) *store.Entry {
	f.t.Helper()
	e, ok := f.index().Find(f.ids[name])
	require.True(f.t, ok, "entry %s (%s) is gone", name, f.ids[name])
	return e
}

// stored lists the entries git's store created, as "URL username" lines.
func (f *fixture) storedEntries() []store.Entry {
	var out []store.Entry
	for _, e := range f.index().Entries {
		if e.Kind == store.KindStored {
			out = append(out, e)
		}
	}
	return out
}

// mutate edits the index directly, for states that take several steps to
// reach through git.
func (f *fixture) mutate(fn func(ix *store.Index)) {
	f.t.Helper()
	require.NoError(f.t, f.h.Store.Update(context.Background(), func(tx *store.Tx) error {
		fn(tx.Index)
		tx.Changed()
		return nil
	}))
}

// secretOf reads an entry's secret where it is kept, ErrNotFound when gone.
func (f *fixture) secretOf(id string) (string, error) {
	if !f.pass {
		v, _, err := f.sec.Backend.Get(context.Background(), id, "", nil)
		return v, err
	}
	f.index()
	pt, _, err := f.h.Store.Pass.Read(context.Background(), f.passNames[id])
	if errors.Is(err, passstore.ErrNotFound) || errors.Is(err, passstore.ErrBadName) {
		return "", secrets.ErrNotFound
	}
	return passstore.ParseBody(pt).Secret, err
}

// secretCount is how many secrets the store keeps.
func (f *fixture) secretCount() int {
	if !f.pass {
		return f.sec.Len()
	}
	names, err := f.h.Store.Pass.Names(nil)
	require.NoError(f.t, err)
	return len(names)
}

// snapshot records the index file and the keyring counters, so that
// unchanged can prove an operation wrote nothing at all.
type snapshot struct {
	data          []byte
	info          os.FileInfo
	sets, deletes int32
	pass          map[string]string // pass entries: name -> stamp
}

func (f *fixture) snapshot() snapshot {
	f.t.Helper()
	s := snapshot{sets: f.sec.sets.Load(), deletes: f.sec.deletes.Load()}
	if f.pass {
		s.pass = map[string]string{}
		names, err := f.h.Store.Pass.Names(nil)
		require.NoError(f.t, err)
		for _, n := range names {
			s.pass[n], err = f.h.Store.Pass.Stamp(n)
			require.NoError(f.t, err)
		}
	}
	path := f.h.Store.Path()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return s
	}
	require.NoError(f.t, err)
	s.data = data
	s.info, err = os.Stat(path)
	require.NoError(f.t, err)
	return s
}

func (f *fixture) requireUnchanged(before snapshot) {
	f.t.Helper()
	after := f.snapshot()
	require.Equal(f.t, string(before.data), string(after.data), "the index changed")
	if before.info == nil {
		require.Nil(f.t, after.info, "an index file was created")
	} else {
		require.True(f.t, os.SameFile(before.info, after.info), "the index file was replaced")
		require.Equal(f.t, before.info.ModTime(), after.info.ModTime(), "the index file was rewritten")
	}
	require.Equal(f.t, before.sets, after.sets, "the keyring was written")
	require.Equal(f.t, before.pass, after.pass, "the password store changed")
	require.Equal(f.t, before.deletes, after.deletes, "a keyring item was deleted")
}
