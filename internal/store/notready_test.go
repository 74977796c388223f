//go:build linux

package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/fakesecrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// TestKeyringRetriesNotReady: gnome-keyring's "not implemented" answer to
// a client it has not registered yet shares its error name with a
// vanished item's. get's read must retry it and serve the token, not take
// it for a deleted item and skip the token without a word.
func TestKeyringRetriesNotReady(t *testing.T) {
	bus := fakesecrets.StartBus(t, fakesecrets.BusOptions{})
	svc := fakesecrets.Start(t, bus)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus.Address)
	const id, secret = "nr000001", "ATCTT3xNotReadyButThere0123456789"
	_, err := svc.Put(map[string]string{"service": store.Service, "username": id}, secret)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, method := range []string{fakesecrets.MethodGetSecrets, fakesecrets.MethodSearchAll} {
		svc.SetFault(fakesecrets.Fault{NotReadyOn: method, NotReadyTimes: 2})
		got, err := store.NewKeyring(5*time.Second).Get(ctx, id)
		require.NoError(t, err, method)
		assert.Equal(t, secret, got, method)
	}
}
