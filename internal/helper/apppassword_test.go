package helper_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// An app password typed at git's prompt is not remembered: they get 410
// since July 2026, which never triggers erase, so a stored one would
// outrank (and hide) tokens added later for ever.
func TestStoreSkipsAppPasswords(t *testing.T) {
	mem := memory.New()
	h := &helper.Helper{Store: &store.Store{Dir: t.TempDir(), Secrets: mem}}
	for _, in := range []string{
		"protocol=https\nhost=bitbucket.org\npath=ws/repo.git\nusername=alice\npassword=ATBB0123456789abcdef\n",
		"protocol=https\nhost=bitbucket.org\nusername=alice\npassword=ATBBxyz\n",
	} {
		q, err := credential.Read(strings.NewReader(in))
		require.NoError(t, err)
		require.NoError(t, h.StoreCredential(context.Background(), q))
	}
	ix, err := h.Store.Load()
	require.NoError(t, err)
	require.Empty(t, ix.Entries)
	require.Zero(t, mem.Len())
}
