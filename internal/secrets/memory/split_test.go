package memory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/secretstest"
)

// A keyring that keeps at most 300 bytes a value (Windows: 2560), split:
// the backend suite holds, and values far longer than the cap round-trip.
func TestSplitSuite(t *testing.T) {
	shared := memory.New()
	shared.MaxSize = 300
	b := secrets.Split(shared, 300)
	secretstest.Run(t, func(*testing.T) secrets.Backend { return b })
}

func TestSplit(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	mem.MaxSize = 2560
	b := secrets.Split(mem, 2000)

	// An OAuth login with a 3,000-character refresh token.
	login := `{"password":"access","oauth_refresh_token":"` + strings.Repeat("r", 3000) + `","consumer_secret":"s"}`
	_, err := mem.Set(ctx, "direct", login)
	require.ErrorIs(t, err, secrets.ErrTooBig, "the cap itself")
	_, err = b.Set(ctx, "a1", login)
	require.NoError(t, err)
	got, _, err := b.Get(ctx, "a1", "", func(v string) bool { return v == login })
	require.NoError(t, err)
	assert.Equal(t, login, got)
	assert.Equal(t, 2, mem.Len(), "two items: the head and one more part")

	short := "ATCTT3xShort"
	_, err = b.Set(ctx, "s1", short)
	require.NoError(t, err)
	v, _, err := mem.Get(ctx, "s1", "", nil)
	require.NoError(t, err)
	assert.Equal(t, short, v, "a short value is kept as it is")

	ids, err := b.List(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"a1", "s1"}, ids, "parts are not listed as secrets")

	require.NoError(t, b.Delete(ctx, "a1"))
	assert.Equal(t, 1, mem.Len(), "delete took every part")
	_, _, err = b.Get(ctx, "a1", "", nil)
	require.ErrorIs(t, err, secrets.ErrNotFound)

	// A write that fails half-way leaves nothing behind.
	mem.MaxSize = 10
	_, err = b.Set(ctx, "a2", login)
	require.ErrorIs(t, err, secrets.ErrTooBig)
	assert.Equal(t, 1, mem.Len())
}
