// Package secretstest is the behaviour every secrets.Backend must show,
// as a suite each backend's tests run against it (a real provider where
// there is one: gnome-keyring, KeePassXC, KWallet, later pass).
package secretstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
)

// New makes a backend for one "process": tests use several at once to act
// as parallel git processes.
type New func(t *testing.T) secrets.Backend

// ID returns an id no other test run uses.
func ID(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b[:])
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func closeIt(b secrets.Backend) {
	if c, ok := b.(secrets.Closer); ok {
		_ = c.Close()
	}
}

// Run runs the suite.
func Run(t *testing.T, newBackend New) {
	open := func(t *testing.T) secrets.Backend {
		b := newBackend(t)
		t.Cleanup(func() { closeIt(b) })
		return b
	}
	// cleanup deletes what a test wrote, through a backend of its own.
	cleanup := func(t *testing.T, ids ...string) {
		t.Cleanup(func() {
			b := newBackend(t)
			defer closeIt(b)
			for _, id := range ids {
				_ = b.Delete(context.Background(), id)
			}
		})
	}

	t.Run("round trip", func(t *testing.T) {
		b := open(t)
		values := []string{
			"ATCTT3xPlainToken0123456789abcdef",
			`{"password":"p","oauth_refresh_token":"r"}`,
			"ünïcode ✓ and spaces",
			"", // git's store of an empty password
			strings.Repeat("x", 3000),
		}
		for _, v := range values {
			id := ID(t)
			cleanup(t, id)
			hint, err := b.Set(ctx(t), id, v)
			if err != nil {
				t.Fatalf("Set %q: %v", short(v), err)
			}
			for _, h := range []string{"", hint} {
				got, _, err := b.Get(ctx(t), id, h, equals(v))
				if err != nil || got != v {
					t.Errorf("Get %q with hint %q = %q, %v", short(v), h, short(got), err)
				}
			}
			got, found, err := b.Get(ctx(t), id, hint, nil)
			if err != nil || got != v {
				t.Errorf("Get %q with a hint and no check = %q, %v", short(v), short(got), err)
			}
			// Where a search finds it is where Set put it: a hint Get
			// returns is as good as Set's (repair records it).
			if found != hint {
				t.Errorf("Get %q found it at %q, Set put it at %q", short(v), found, hint)
			}
		}
	})

	t.Run("hints never serve another value", func(t *testing.T) {
		b := open(t)
		a, c := ID(t), ID(t)
		cleanup(t, a, c)
		ha, err := b.Set(ctx(t), a, "value-of-a")
		must(t, err)
		hc, err := b.Set(ctx(t), c, "value-of-c")
		must(t, err)
		// c's hint for a: the value there is not a's, so a is searched.
		got, _, err := b.Get(ctx(t), a, hc, equals("value-of-a"))
		if err != nil || got != "value-of-a" {
			t.Errorf("Get(a) at c's item = %q, %v", got, err)
		}
		// A check that fails (the value changed since): searched, and
		// what the search finds is served.
		got, _, err = b.Get(ctx(t), a, ha, equals("stale"))
		if err != nil || got != "value-of-a" {
			t.Errorf("Get(a) with a stale check = %q, %v", got, err)
		}
		for _, bogus := range []string{"not a path", "/org/freedesktop/secrets/collection/login/999999", "/"} {
			got, _, err = b.Get(ctx(t), a, bogus, equals("value-of-a"))
			if err != nil || got != "value-of-a" {
				t.Errorf("Get(a) with hint %q = %q, %v", bogus, got, err)
			}
		}
		// Deleted: not found, though the hint still names its item.
		must(t, b.Delete(ctx(t), c))
		if _, _, err := b.Get(ctx(t), c, hc, equals("value-of-c")); !errors.Is(err, secrets.ErrNotFound) {
			t.Errorf("Get of a deleted value = %v, want ErrNotFound", err)
		}
	})

	t.Run("not found", func(t *testing.T) {
		b := open(t)
		id := ID(t)
		if _, _, err := b.Get(ctx(t), id, "", nil); !errors.Is(err, secrets.ErrNotFound) {
			t.Errorf("Get of nothing = %v, want ErrNotFound", err)
		}
		if err := b.Delete(ctx(t), id); !errors.Is(err, secrets.ErrNotFound) {
			t.Errorf("Delete of nothing = %v, want ErrNotFound", err)
		}
		// The connection stays usable after a not-found.
		cleanup(t, id)
		_, err := b.Set(ctx(t), id, "after")
		must(t, err)
		if got, _, err := b.Get(ctx(t), id, "", nil); err != nil || got != "after" {
			t.Errorf("Get after a not-found = %q, %v", got, err)
		}
	})

	t.Run("list", func(t *testing.T) {
		b := open(t)
		kept, gone := ID(t), ID(t)
		cleanup(t, kept, gone)
		_, err := b.Set(ctx(t), kept, "kept")
		must(t, err)
		_, err = b.Set(ctx(t), gone, "gone")
		must(t, err)
		must(t, b.Delete(ctx(t), gone))
		ids, err := b.List(ctx(t))
		if errors.Is(err, secrets.ErrListUnsupported) {
			t.Skip("this backend cannot list")
		}
		must(t, err)
		if !slices.Contains(ids, kept) || slices.Contains(ids, gone) {
			t.Errorf("List has %d ids: kept %v, deleted %v", len(ids), slices.Contains(ids, kept), slices.Contains(ids, gone))
		}
	})

	t.Run("another process sees it", func(t *testing.T) {
		w, r := open(t), open(t)
		id := ID(t)
		cleanup(t, id)
		hint, err := w.Set(ctx(t), id, "shared")
		must(t, err)
		closeIt(w)
		if got, _, err := r.Get(ctx(t), id, hint, equals("shared")); err != nil || got != "shared" {
			t.Errorf("another connection's Get = %q, %v", got, err)
		}
		must(t, r.Delete(ctx(t), id))
		if _, _, err := newBackend(t).Get(ctx(t), id, "", nil); !errors.Is(err, secrets.ErrNotFound) {
			t.Errorf("Get after another connection's Delete = %v", err)
		}
	})

	t.Run("parallel processes", func(t *testing.T) {
		const workers, rounds = 8, 4
		var wg sync.WaitGroup
		errs := make(chan error, workers*rounds)
		var ids []string
		var mu sync.Mutex
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					b := newBackend(t)
					id := ID(t)
					mu.Lock()
					ids = append(ids, id)
					mu.Unlock()
					v := fmt.Sprintf("value-%d-%d", w, r)
					hint, err := b.Set(ctx(t), id, v)
					if err == nil {
						var got string
						got, _, err = b.Get(ctx(t), id, hint, equals(v))
						if err == nil && got != v {
							err = fmt.Errorf("read %q back as %q", v, got)
						}
					}
					if err == nil && r%2 == 0 {
						err = b.Delete(ctx(t), id)
					}
					closeIt(b)
					if err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		mu.Lock()
		cleanup(t, ids...)
		mu.Unlock()
		for err := range errs {
			t.Error(err)
		}
	})
}

func equals(v string) func(string) bool { return func(s string) bool { return s == v } }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func short(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
