//go:build linux

package secretservice_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/fakesecrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/secretservice"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/secretstest"
)

const service = "git-credential-bbtoken-sstest"

// fake starts a private bus with the fake Secret Service and points the
// client at it.
func fake(t *testing.T) *fakesecrets.Service {
	t.Helper()
	bus := fakesecrets.StartBus(t, fakesecrets.BusOptions{})
	svc := fakesecrets.Start(t, bus)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus.Address)
	return svc
}

func backend(t *testing.T, timeout time.Duration) *secretservice.Backend {
	b := &secretservice.Backend{Service: service, Timeout: timeout}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func put(t *testing.T, svc *fakesecrets.Service, id, secret string) dbus.ObjectPath {
	t.Helper()
	p, err := svc.Put(map[string]string{"service": service, "username": id}, secret)
	require.NoError(t, err)
	return p
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func count(calls []string, method string) int {
	n := 0
	for _, c := range calls {
		if c == method {
			n++
		}
	}
	return n
}

func is(v string) func(string) bool { return func(s string) bool { return s == v } }

func TestSuiteFake(t *testing.T) {
	fake(t)
	secretstest.Run(t, func(*testing.T) secrets.Backend {
		return &secretservice.Backend{Service: service, Timeout: 10 * time.Second}
	})
}

// TestGetCalls: get's read is three calls to the service whatever the
// number of items (a property read, OpenSession, GetSecrets with a hint;
// SearchItems, OpenSession, GetSecrets without), OpenSession is never the
// first call (gnome-keyring 42 aborts on one that overtakes its
// registration of the client), no item property is read, and the session
// is closed, with the answer awaited, before the connection is.
func TestGetCalls(t *testing.T) {
	svc := fake(t)
	var paths []dbus.ObjectPath
	for i := range 50 {
		paths = append(paths, put(t, svc, fmt.Sprintf("id%02d", i), fmt.Sprintf("secret-%02d", i)))
	}
	tests := []struct {
		name       string
		id, hint   string
		want       func(string) bool
		secret     string
		found      dbus.ObjectPath
		wantSearch int
		wantErr    error
	}{
		{"no hint searches", "id07", "", nil, "secret-07", paths[7], 1, nil},
		{"hint skips the search", "id37", string(paths[37]), is("secret-37"), "secret-37", paths[37], 0, nil},
		{"hint without a check is not trusted", "id07", string(paths[8]), nil, "secret-07", paths[7], 1, nil},
		{"hint holding another id's value", "id07", string(paths[8]), is("secret-07"), "secret-07", paths[7], 1, nil},
		{"hint to no object", "id09", string(fakesecrets.LoginCollection) + "/gone", is("secret-09"), "secret-09", paths[9], 1, nil},
		{"invalid hint", "id09", "not a path", is("secret-09"), "secret-09", paths[9], 1, nil},
		{"not found", "nobody", "", nil, "", "", 1, secrets.ErrNotFound},
		{"not found with a stale hint", "nobody", string(paths[1]), is("gone"), "", "", 1, secrets.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(svc.Calls())
			b := &secretservice.Backend{Service: service, Timeout: 5 * time.Second}
			got, found, err := b.Get(ctx(t), tt.id, tt.hint, tt.want)
			require.NoError(t, b.Close())
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.secret, got)
				assert.Equal(t, string(tt.found), found)
			}
			calls := svc.Calls()[before:]
			assert.Equal(t, tt.wantSearch, count(calls, fakesecrets.MethodSearchAll), "calls: %v", calls)
			require.NotEmpty(t, calls)
			assert.NotEqual(t, fakesecrets.MethodOpenSession, calls[0], "calls: %v", calls)
			// A miss also asks which collection items go to and whether it is
			// locked (KeePassXC hides a locked database's items).
			maxProps := 1
			if errors.Is(tt.wantErr, secrets.ErrNotFound) {
				maxProps = 3
			}
			assert.LessOrEqual(t, count(calls, fakesecrets.MethodGetProperty), maxProps, "calls: %v", calls)
			if tt.wantErr == nil && tt.wantSearch == 0 {
				assert.Len(t, calls, 4, "a property read, OpenSession, GetSecrets and Close: %v", calls)
			}
			assert.Equal(t, count(calls, fakesecrets.MethodOpenSession), count(calls, fakesecrets.MethodClose), "every session is closed: %v", calls)
		})
	}
}

// promptCases are what an unlock prompt may come to, and the error each
// gives.
var promptCases = []struct {
	mode    fakesecrets.PromptMode
	wantErr error
}{
	{fakesecrets.PromptUnlock, nil},
	{fakesecrets.PromptDismiss, secrets.ErrLocked},
	{fakesecrets.PromptNever, secrets.ErrTimeout},
}

// TestLockedItems: a locked item is unlocked through the prompt the
// service asks for; a prompt that is dismissed (gnome-keyring without a
// display) is ErrLocked, one nobody answers ErrTimeout, within the
// backend's timeout.
func TestLockedItems(t *testing.T) {
	for _, tt := range promptCases {
		t.Run(fmt.Sprint(tt.mode), func(t *testing.T) {
			svc := fake(t)
			item := put(t, svc, "id1", "locked secret")
			svc.SetFault(fakesecrets.Fault{Locked: true, Prompt: tt.mode})
			for _, hint := range []string{"", string(item)} {
				b := backend(t, 500*time.Millisecond)
				got, _, err := b.Get(ctx(t), "id1", hint, is("locked secret"))
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr, "hint %q", hint)
					assert.Contains(t, err.Error(), "fix: unlock the keyring")
					continue
				}
				require.NoError(t, err)
				assert.Equal(t, "locked secret", got)
				svc.SetFault(fakesecrets.Fault{Locked: true, Prompt: tt.mode})
			}
			// Writes unlock the collection the same way.
			svc.SetFault(fakesecrets.Fault{Locked: true, Prompt: tt.mode})
			_, err := backend(t, 500*time.Millisecond).Set(ctx(t), "id2", "new")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
		})
	}
}

// TestLockedStoreHidesItems: KeePassXC answers a search of its locked
// database with no items at all. An empty answer from a locked collection
// is not taken for "not found" (nor a list for "no items", which repair
// would act on): the collection is unlocked and searched again, and a
// prompt that fails says the keyring is locked.
func TestLockedStoreHidesItems(t *testing.T) {
	for _, tt := range promptCases {
		t.Run(fmt.Sprint(tt.mode), func(t *testing.T) {
			svc := fake(t)
			put(t, svc, "id1", "hidden secret")
			locked := fakesecrets.Fault{Locked: true, HideLocked: true, Prompt: tt.mode}
			ops := []struct {
				name string
				run  func(b *secretservice.Backend) error
			}{
				{"get", func(b *secretservice.Backend) error {
					got, _, err := b.Get(ctx(t), "id1", "", nil)
					if err == nil && got != "hidden secret" {
						return fmt.Errorf("got %q", got)
					}
					return err
				}},
				{"list", func(b *secretservice.Backend) error {
					ids, err := b.List(ctx(t))
					if err == nil && !slices.Contains(ids, "id1") {
						return fmt.Errorf("listed %v", ids)
					}
					return err
				}},
				{"delete", func(b *secretservice.Backend) error { return b.Delete(ctx(t), "id1") }},
			}
			for _, op := range ops {
				svc.SetFault(locked)
				err := op.run(backend(t, 500*time.Millisecond))
				if tt.wantErr != nil {
					assert.ErrorIs(t, err, tt.wantErr, op.name)
					assert.Len(t, svc.Items(), 1, "%s changed nothing", op.name)
					continue
				}
				assert.NoError(t, err, op.name)
			}
			if tt.wantErr == nil {
				assert.Empty(t, svc.Items(), "delete deleted it")
			}
		})
	}
	// Nothing there and the collection unlocked: not found, no prompt.
	svc := fake(t)
	svc.SetFault(fakesecrets.Fault{HideLocked: true})
	_, _, err := backend(t, time.Second).Get(ctx(t), "absent", "", nil)
	assert.ErrorIs(t, err, secrets.ErrNotFound)
	assert.Zero(t, count(svc.Calls(), fakesecrets.MethodPrompt))
	// Locked, but listing its items (gnome-keyring, KWallet): a search that
	// finds none of ours is not-found, without an unlock dialog, for get,
	// delete (which journal replay and repair do) and list.
	svc = fake(t)
	put(t, svc, "someone-else", "theirs")
	svc.SetFault(fakesecrets.Fault{Locked: true, Prompt: fakesecrets.PromptNever})
	b := backend(t, time.Second)
	_, _, err = b.Get(ctx(t), "absent", "", nil)
	assert.ErrorIs(t, err, secrets.ErrNotFound)
	assert.ErrorIs(t, b.Delete(ctx(t), "absent"), secrets.ErrNotFound)
	assert.Zero(t, count(svc.Calls(), fakesecrets.MethodUnlock), "calls: %v", svc.Calls())
}

// TestUnansweredPromptIsDismissed: a prompt nobody answers is dismissed
// when the caller stops waiting, so that its dialog does not outlive the
// helper; the error says how long it waited.
func TestUnansweredPromptIsDismissed(t *testing.T) {
	svc := fake(t)
	put(t, svc, "id1", "v")
	svc.SetFault(fakesecrets.Fault{Locked: true, Prompt: fakesecrets.PromptNever})
	_, _, err := backend(t, 300*time.Millisecond).Get(ctx(t), "id1", "", nil)
	require.ErrorIs(t, err, secrets.ErrTimeout)
	assert.Contains(t, err.Error(), "within 300ms")
	require.Eventually(t, func() bool { return slices.Contains(svc.Calls(), "Prompt.Dismiss") }, 5*time.Second, 10*time.Millisecond,
		"calls: %v", svc.Calls())
}

// TestContextEndsTheCall: a call that hangs ends when the context is
// cancelled, or at the context's deadline when it comes before the
// backend's timeout (and the message gives the time actually waited).
func TestContextEndsTheCall(t *testing.T) {
	svc := fake(t)
	put(t, svc, "id1", "v")
	svc.SetFault(fakesecrets.Fault{HangOn: fakesecrets.MethodSearchAll})
	c, cancel := context.WithCancel(context.Background())
	go func() {
		<-svc.Hung()
		cancel()
	}()
	_, _, err := backend(t, time.Minute).Get(c, "id1", "", nil)
	require.ErrorIs(t, err, context.Canceled)

	c, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err = backend(t, time.Minute).Get(c, "id1", "", nil)
	require.ErrorIs(t, err, secrets.ErrTimeout)
	assert.Contains(t, err.Error(), "within 200ms")
}

// TestPromptedWrites: KeePassXC answers CreateItem with a prompt (and
// some services Delete too): the item is the prompt's result.
func TestPromptedWrites(t *testing.T) {
	svc := fake(t)
	svc.SetFault(fakesecrets.Fault{PromptOnCreate: true, PromptOnDelete: true, Prompt: fakesecrets.PromptUnlock})
	b := backend(t, 5*time.Second)
	hint, err := b.Set(ctx(t), "id1", "prompted")
	require.NoError(t, err)
	require.NotEmpty(t, hint)
	got, found, err := b.Get(ctx(t), "id1", hint, is("prompted"))
	require.NoError(t, err)
	assert.Equal(t, "prompted", got)
	assert.Equal(t, hint, found)
	require.NoError(t, b.Delete(ctx(t), "id1"))
	assert.Empty(t, svc.Items())
	svc.SetFault(fakesecrets.Fault{PromptOnCreate: true, Prompt: fakesecrets.PromptDismiss})
	_, err = b.Set(ctx(t), "id2", "refused")
	assert.ErrorIs(t, err, secrets.ErrLocked)
}

// TestNoDefaultAlias: without a "default" alias, new items go to the
// login collection (the fake has no other).
func TestNoDefaultAlias(t *testing.T) {
	svc := fake(t)
	svc.SetFault(fakesecrets.Fault{NoAlias: true})
	hint, err := backend(t, 5*time.Second).Set(ctx(t), "id1", "v")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(hint, string(fakesecrets.LoginCollection)+"/"), hint)
}

// TestFaults: a service that dies, hangs or is absent is an error (never
// ErrNotFound, which would make get skip the token silently), with the
// fix in its message; a hang ends at the backend's timeout.
func TestFaults(t *testing.T) {
	methods := []string{fakesecrets.MethodSearchAll, fakesecrets.MethodGetProperty, fakesecrets.MethodOpenSession, fakesecrets.MethodGetSecrets, fakesecrets.MethodCreateItem, fakesecrets.MethodReadAlias}
	for _, method := range methods {
		for _, mode := range []string{"die", "hang"} {
			t.Run(mode+" in "+method, func(t *testing.T) {
				svc := fake(t)
				item := put(t, svc, "id1", "secret")
				f := fakesecrets.Fault{DieOn: method}
				if mode == "hang" {
					f = fakesecrets.Fault{HangOn: method}
				}
				svc.SetFault(f)
				failed := 0
				for op, call := range map[string]func(b *secretservice.Backend) error{
					"get": func(b *secretservice.Backend) error { _, _, err := b.Get(ctx(t), "id1", "", nil); return err },
					"get hint": func(b *secretservice.Backend) error {
						_, _, err := b.Get(ctx(t), "id1", string(item), is("secret"))
						return err
					},
					"set": func(b *secretservice.Backend) error { _, err := b.Set(ctx(t), "id2", "v"); return err },
				} {
					err := call(backend(t, 300*time.Millisecond))
					if err == nil {
						continue // this operation does not make the failing call
					}
					failed++
					assert.False(t, errors.Is(err, secrets.ErrNotFound), "%s: a broken service is not an absent item: %v", op, err)
					if mode == "hang" {
						assert.ErrorIs(t, err, secrets.ErrTimeout, op)
					} else {
						assert.ErrorIs(t, err, secrets.ErrUnavailable, op)
					}
					assert.Contains(t, err.Error(), "fix: ", op)
				}
				// Every method here is called by some operation: a fault
				// that failed none was not injected.
				assert.NotZero(t, failed, "no operation failed with %s in %s", mode, method)
			})
		}
	}
}

// TestNotReadyIsRetried: gnome-keyring's "not implemented" answer to a
// client it has not registered yet shares its error name with a vanished
// item's; it is retried, never taken for a deleted item (which would skip
// a stored token without a word).
func TestNotReadyIsRetried(t *testing.T) {
	for _, method := range []string{fakesecrets.MethodGetSecrets, fakesecrets.MethodSearchAll, fakesecrets.MethodOpenSession, fakesecrets.MethodCreateItem} {
		t.Run(method, func(t *testing.T) {
			svc := fake(t)
			put(t, svc, "id1", "ATCTT3xFirst")
			svc.SetFault(fakesecrets.Fault{NotReadyOn: method, NotReadyTimes: 2})
			b := backend(t, 5*time.Second)
			if method == fakesecrets.MethodCreateItem {
				_, err := b.Set(ctx(t), "id2", "v")
				require.NoError(t, err)
				return
			}
			got, _, err := b.Get(ctx(t), "id1", "", nil)
			require.NoError(t, err)
			assert.Equal(t, "ATCTT3xFirst", got)
		})
	}
}

func TestTransientAndVanished(t *testing.T) {
	tests := []struct {
		err                 error
		transient, vanished bool
	}{
		{dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownMethod", Body: []any{"Method GetSecrets is not implemented on interface org.freedesktop.Secret.Service"}}, true, false},
		{fmt.Errorf("GetSecrets: %w", dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownMethod", Body: []any{"Method SearchItems is not implemented on interface org.freedesktop.Secret.Service"}}), true, false},
		{dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownMethod", Body: []any{"Object does not exist at path \u201c/org/freedesktop/secrets/collection/login/7\u201d"}}, false, true},
		{dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownObject", Body: []any{"gone"}}, false, true},
		{dbus.Error{Name: "org.freedesktop.Secret.Error.NoSuchObject", Body: []any{"no such item"}}, false, true},
		{dbus.Error{Name: "org.freedesktop.DBus.Error.InvalidArgs", Body: []any{"Can't find item at path /org/freedesktop/secrets/collection/kdewallet/6"}}, false, true},
		{dbus.Error{Name: "org.freedesktop.DBus.Error.InvalidArgs", Body: []any{"bad attributes"}}, false, false},
		{dbus.Error{Name: "org.freedesktop.DBus.Error.NoReply", Body: []any{"no reply"}}, false, false},
		{errors.New("connection reset"), false, false},
		{nil, false, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.transient, secretservice.Transient(tt.err), "Transient(%v)", tt.err)
		assert.Equal(t, tt.vanished, secretservice.Vanished(tt.err), "Vanished(%v)", tt.err)
	}
}

// TestNoService: a bus without a Secret Service, a bus address this client
// cannot reach, no bus at all: each is ErrUnavailable with a fix.
func TestNoService(t *testing.T) {
	bus := fakesecrets.StartBus(t, fakesecrets.BusOptions{})
	cases := map[string]string{
		"no service on the bus": bus.Address,
		"a TCP bus":             "tcp:host=127.0.0.1,port=9",
		"no socket there":       "unix:path=" + filepath.Join(t.TempDir(), "nothing"),
		"unsupported address":   "unix:tmpdir=/tmp",
	}
	for name, addr := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
			_, _, err := backend(t, time.Second).Get(ctx(t), "id1", "", nil)
			require.ErrorIs(t, err, secrets.ErrUnavailable)
			assert.Contains(t, err.Error(), "fix: ")
		})
	}
	t.Run("no bus at all", func(t *testing.T) {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
		t.Setenv("XDG_RUNTIME_DIR", "")
		_, err := backend(t, time.Second).Set(ctx(t), "id1", "v")
		require.ErrorIs(t, err, secrets.ErrUnavailable)
		assert.Contains(t, err.Error(), "no D-Bus session bus")
	})
}

// TestSilentBus: a socket that accepts connections and never answers (a
// bus stuck in the handshake): every call ends as ErrTimeout within the
// backend's timeout, never a hang.
func TestSilentBus(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "bus")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+sock)
	for name, call := range map[string]func(b *secretservice.Backend) error{
		"get":    func(b *secretservice.Backend) error { _, _, err := b.Get(ctx(t), "x", "", nil); return err },
		"set":    func(b *secretservice.Backend) error { _, err := b.Set(ctx(t), "x", "v"); return err },
		"delete": func(b *secretservice.Backend) error { return b.Delete(ctx(t), "x") },
		"list":   func(b *secretservice.Backend) error { _, err := b.List(ctx(t)); return err },
	} {
		err := call(backend(t, 300*time.Millisecond))
		assert.ErrorIs(t, err, secrets.ErrTimeout, name)
	}
}

// TestListAndDeleteEvery: List names every item of the service, and
// Delete removes every item of an id (an interrupted older version may
// have left two).
func TestListAndDeleteEvery(t *testing.T) {
	svc := fake(t)
	put(t, svc, "a", "1")
	put(t, svc, "b", "2")
	put(t, svc, "b", "2 again") // an interrupted older version's double
	b := backend(t, 5*time.Second)
	ids, err := b.List(ctx(t))
	require.NoError(t, err)
	slices.Sort(ids)
	assert.Equal(t, []string{"a", "b", "b"}, ids)
	require.NoError(t, b.Delete(ctx(t), "b"))
	ids, err = b.List(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, ids)
}
