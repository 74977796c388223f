package store_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// An index others could have written is never trusted: its ids point at
// keyring secrets, so rewriting one could send a token to another host.
func TestIndexMustBePrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits and owners do not guard files on Windows")
	}
	const data = `{"version":1,"entries":[` + "\n]}\n"
	t.Run("directory writable by others", func(t *testing.T) {
		st := &store.Store{Dir: filepath.Join(t.TempDir(), "bbtoken")}
		writeIndex(t, st, data, 0o600)
		require.NoError(t, os.Chmod(st.Dir, 0o777))
		_, err := st.Load()
		require.ErrorIs(t, err, store.ErrIndexUnsafe)
		require.Contains(t, err.Error(), "chmod 700 "+st.Dir)
		_, err = st.LoadScopes([]string{"https://bitbucket.org"})
		require.ErrorIs(t, err, store.ErrIndexUnsafe)
	})
	t.Run("file owned by another user", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("only root can give a file away")
		}
		st := &store.Store{Dir: filepath.Join(t.TempDir(), "bbtoken")}
		writeIndex(t, st, data, 0o644)
		require.NoError(t, os.Chown(st.Path(), 65534, 65534))
		_, err := st.Load()
		require.ErrorIs(t, err, store.ErrIndexUnsafe)
		require.Contains(t, err.Error(), "belongs to user 65534")
	})
}
