//go:build linux

package ssread_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/fakesecrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/ssread"
)

const service = "git-credential-bbtoken-ssreadtest"

// fakeKeyring starts a private bus with the fake Secret Service and points
// the reader at it.
func fakeKeyring(t *testing.T) (*fakesecrets.Service, *dbus.Conn) {
	t.Helper()
	bus := fakesecrets.StartBus(t, fakesecrets.BusOptions{})
	svc := fakesecrets.Start(t, bus)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus.Address)
	conn, err := dbus.Connect(bus.Address)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return svc, conn
}

// create writes an item as go-keyring does (CreateItem in the login
// collection, attributes service and username).
func create(t *testing.T, conn *dbus.Conn, svc, user, secret string) dbus.ObjectPath {
	t.Helper()
	ss := conn.Object(fakesecrets.ServiceName, fakesecrets.ServicePath)
	var ignored dbus.Variant
	var session dbus.ObjectPath
	require.NoError(t, ss.Call("org.freedesktop.Secret.Service.OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&ignored, &session))
	props := map[string]dbus.Variant{
		"org.freedesktop.Secret.Item.Label":      dbus.MakeVariant("Password for '" + user + "' on '" + svc + "'"),
		"org.freedesktop.Secret.Item.Attributes": dbus.MakeVariant(map[string]string{"service": svc, "username": user}),
	}
	secretStruct := fakesecrets.Secret{Session: session, Parameters: []byte{}, Value: []byte(secret), ContentType: "text/plain; charset=utf8"}
	var item, prompt dbus.ObjectPath
	require.NoError(t, conn.Object(fakesecrets.ServiceName, fakesecrets.LoginCollection).
		Call("org.freedesktop.Secret.Collection.CreateItem", 0, props, secretStruct, true).Store(&item, &prompt))
	return item
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
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

// callsSince returns the calls made after the first n.
func callsSince(svc *fakesecrets.Service, n int) []string { return svc.Calls()[n:] }

func is(v string) func(string) bool { return func(s string) bool { return s == v } }

func TestReadFake(t *testing.T) {
	svc, conn := fakeKeyring(t)
	mine := create(t, conn, service, "id1", "ATCTT3xFirst")
	other := create(t, conn, service, "id2", "ATCTT3xSecond")
	foreign := create(t, conn, service+"-other", "id1", "not ours")

	tests := []struct {
		name       string
		id         string
		hint       dbus.ObjectPath
		want       func(string) bool
		secret     string
		wantItem   dbus.ObjectPath
		wantErr    error
		wantSearch int // Service.SearchItems calls
	}{
		{name: "no hint searches", id: "id1", secret: "ATCTT3xFirst", wantItem: mine, wantSearch: 1},
		{name: "hint skips the search", id: "id1", hint: mine, want: is("ATCTT3xFirst"), secret: "ATCTT3xFirst", wantItem: mine, wantSearch: 0},
		{name: "hint without a check is not trusted", id: "id1", hint: other, secret: "ATCTT3xFirst", wantItem: mine, wantSearch: 1},
		{name: "hint holding another id's value", id: "id1", hint: other, want: is("ATCTT3xFirst"), secret: "ATCTT3xFirst", wantItem: mine, wantSearch: 1},
		{name: "hint holding another service's value", id: "id1", hint: foreign, want: is("ATCTT3xFirst"), secret: "ATCTT3xFirst", wantItem: mine, wantSearch: 1},
		{name: "value changed since written", id: "id1", hint: mine, want: is("ATCTT3xOld"), secret: "ATCTT3xFirst", wantItem: mine, wantSearch: 1},
		{name: "hint to no object", id: "id2", hint: fakesecrets.LoginCollection + "/gone", want: is("x"), secret: "ATCTT3xSecond", wantItem: other, wantSearch: 1},
		{name: "invalid hint", id: "id2", hint: "not a path", want: is("x"), secret: "ATCTT3xSecond", wantItem: other, wantSearch: 1},
		{name: "not found", id: "nobody", wantErr: ssread.ErrNotFound, wantSearch: 1},
		{name: "not found with a stale hint", id: "nobody", hint: mine, want: is("ATCTT3xGone"), wantErr: ssread.ErrNotFound, wantSearch: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(svc.Calls())
			got, item, err := ssread.Read(ctx(t), service, tt.id, tt.hint, tt.want)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Empty(t, got)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.secret, got)
				assert.Equal(t, tt.wantItem, item)
			}
			calls := callsSince(svc, before)
			assert.Equal(t, tt.wantSearch, count(calls, fakesecrets.MethodSearchAll), "calls: %v", calls)
			// gnome-keyring 42 aborts on an OpenSession that overtakes its
			// registration of the client: something else goes first. No
			// item property is read (the only property read is the
			// service's Collections, first).
			require.NotEmpty(t, calls)
			assert.Contains(t, []string{fakesecrets.MethodSearchAll, fakesecrets.MethodGetProperty}, calls[0], "calls: %v", calls)
			assert.LessOrEqual(t, count(calls, fakesecrets.MethodGetProperty), 1, "calls: %v", calls)
			assert.NotContains(t, calls[1:], fakesecrets.MethodGetProperty, "calls: %v", calls)
			// Every session opened is closed by the reader itself.
			require.Eventually(t, func() bool {
				c := callsSince(svc, before)
				return count(c, fakesecrets.MethodOpenSession) == count(c, fakesecrets.MethodClose)
			}, 2*time.Second, 10*time.Millisecond, "calls: %v", svc.Calls())
		})
	}
}

func TestReadLocked(t *testing.T) {
	svc, conn := fakeKeyring(t)
	item := create(t, conn, service, "id1", "secret")
	svc.SetFault(fakesecrets.Fault{Locked: true})
	for _, hint := range []dbus.ObjectPath{"", item} {
		got, _, err := ssread.Read(ctx(t), service, "id1", hint, is("secret"))
		require.ErrorIs(t, err, ssread.ErrLocked, "hint %q", hint)
		assert.Empty(t, got)
	}
	// Find still names a locked item.
	path, err := ssread.Find(ctx(t), service, "id1")
	require.NoError(t, err)
	assert.Equal(t, item, path)
	assert.Zero(t, count(svc.Calls(), fakesecrets.MethodUnlock), "the reader never unlocks")
}

func TestFindFake(t *testing.T) {
	_, conn := fakeKeyring(t)
	item := create(t, conn, service, "id1", "secret")
	got, err := ssread.Find(ctx(t), service, "id1")
	require.NoError(t, err)
	assert.Equal(t, item, got)
	_, err = ssread.Find(ctx(t), service, "id9")
	assert.ErrorIs(t, err, ssread.ErrNotFound)
}

// TestReadFaults: a service that dies, hangs or is absent is an error
// (never ErrNotFound, which would make get skip the token silently), and
// a hang ends at the context's deadline.
func TestReadFaults(t *testing.T) {
	for _, method := range []string{fakesecrets.MethodSearchAll, fakesecrets.MethodGetProperty, fakesecrets.MethodOpenSession, fakesecrets.MethodGetSecrets} {
		for _, mode := range []string{"die", "hang", "die with hint", "hang with hint"} {
			if method == fakesecrets.MethodGetProperty && !strings.HasSuffix(mode, "with hint") {
				continue // only the direct read reads a property
			}
			t.Run(mode+" in "+method, func(t *testing.T) {
				svc, conn := fakeKeyring(t)
				item := create(t, conn, service, "id1", "secret")
				hint := dbus.ObjectPath("")
				if strings.HasSuffix(mode, "with hint") {
					hint = item
				}
				f := fakesecrets.Fault{DieOn: method}
				if strings.HasPrefix(mode, "hang") {
					f = fakesecrets.Fault{HangOn: method}
				}
				svc.SetFault(f)
				c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				got, _, err := ssread.Read(c, service, "id1", hint, is("secret"))
				elapsed := time.Since(start)
				if err == nil && hint != "" && method == fakesecrets.MethodSearchAll {
					return // the hint spared the failing search
				}
				if err == nil {
					t.Fatalf("read %q despite the service failing in %s", got, method)
				}
				assert.False(t, errors.Is(err, ssread.ErrNotFound), "a broken service is not an absent item: %v", err)
				assert.Less(t, elapsed, 2*time.Second, "must end at the deadline")
			})
		}
	}
}

func TestReadNoService(t *testing.T) {
	bus := fakesecrets.StartBus(t, fakesecrets.BusOptions{})
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus.Address)
	_, _, err := ssread.Read(ctx(t), service, "id1", "", nil)
	var de dbus.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "org.freedesktop.DBus.Error.ServiceUnknown", de.Name)
}

func TestReadUnsupportedAddress(t *testing.T) {
	for _, addr := range []string{"tcp:host=localhost,port=1", "launchd:env=X", "unix:tmpdir=/tmp"} {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
		_, _, err := ssread.Read(ctx(t), service, "id1", "", nil)
		assert.ErrorIs(t, err, ssread.ErrUnsupported, addr)
	}
}

// TestReadManyItems: the hint keeps the read from scanning the keyring.
func TestReadManyItems(t *testing.T) {
	svc, conn := fakeKeyring(t)
	var target dbus.ObjectPath
	for i := range 50 {
		p := create(t, conn, service, "id"+string(rune('a'+i%26))+hex.EncodeToString([]byte{byte(i)}), "s")
		if i == 37 {
			target = p
		}
	}
	want := svc.Items()[target]
	before := len(svc.Calls())
	got, _, err := ssread.Read(ctx(t), service, want.Attributes["username"], target, is(want.Secret))
	require.NoError(t, err)
	assert.Equal(t, want.Secret, got)
	calls := callsSince(svc, before)
	assert.False(t, slices.Contains(calls, fakesecrets.MethodSearchAll), "calls: %v", calls)
}

func uniqueID(t *testing.T) string {
	var b [6]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return "test-" + hex.EncodeToString(b[:])
}

func dbusPath(s string) dbus.ObjectPath { return dbus.ObjectPath(s) }

// TestReadNotReadyIsNotVanished: gnome-keyring answers a client it has not
// registered yet with UnknownMethod ("not implemented"), the name a
// vanished object also gets. The read must come back as that transient
// error, which the caller retries, and never as "not found", which would
// skip a stored token without a word.
func TestReadNotReadyIsNotVanished(t *testing.T) {
	for _, method := range []string{fakesecrets.MethodGetSecrets, fakesecrets.MethodSearchAll, fakesecrets.MethodOpenSession} {
		t.Run(method, func(t *testing.T) {
			svc, conn := fakeKeyring(t)
			create(t, conn, service, "id1", "ATCTT3xFirst")
			svc.SetFault(fakesecrets.Fault{NotReadyOn: method, NotReadyTimes: 1})
			_, _, err := ssread.Read(ctx(t), service, "id1", "", nil)
			require.Error(t, err)
			assert.True(t, ssread.Transient(err), "%v", err)
			assert.False(t, ssread.Vanished(err), "%v", err)
			assert.NotErrorIs(t, err, ssread.ErrNotFound)
			got, _, err := ssread.Read(ctx(t), service, "id1", "", nil)
			require.NoError(t, err, "the retry succeeds")
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
		{dbus.Error{Name: "org.freedesktop.DBus.Error.NoReply", Body: []any{"no reply"}}, false, false},
		{errors.New("connection reset"), false, false},
		{nil, false, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.transient, ssread.Transient(tt.err), "Transient(%v)", tt.err)
		assert.Equal(t, tt.vanished, ssread.Vanished(tt.err), "Vanished(%v)", tt.err)
	}
}
