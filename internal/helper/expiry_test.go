package helper_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

func TestExpiryWarning(t *testing.T) {
	const tok = "ATCTT3xExpiringToken0123456789wxyz"
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		expires string
		off     bool
		// notices seen on day 0 (twice), then day 1
		want []int
	}{
		{"in 3 days: once a day", "2026-11-30", false, []int{1, 0, 1}},
		{"in 7 days: warned", "2026-12-04", false, []int{1, 0, 1}},
		{"in 10 days: quiet until the last week", "2026-12-07", false, []int{0, 0, 0}},
		{"silenced by config", "2026-11-30", true, []int{0, 0, 0}},
		{"no expiry", "", false, []int{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			var notices bytes.Buffer
			h := &helper.Helper{
				Store:   &store.Store{Dir: t.TempDir(), Secrets: memory.New()},
				Now:     func() time.Time { return now },
				Notices: &notices,
			}
			ctx := context.Background()
			_, err := h.Add(ctx, helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Expires: tt.expires, Token: tok})
			require.NoError(t, err)
			if tt.off {
				require.NoError(t, h.Store.Update(ctx, func(tx *store.Tx) error {
					tx.Index.Settings = map[string]string{helper.SettingExpiryWarnings: "off"}
					tx.Changed()
					return nil
				}))
			}
			get := func() int {
				notices.Reset()
				q, err := credential.Read(strings.NewReader("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n"))
				require.NoError(t, err)
				a, err := h.Get(ctx, q)
				require.NoError(t, err)
				require.NotNil(t, a, "the token must still be served")
				require.NotContains(t, notices.String(), tok)
				return strings.Count(notices.String(), "\n")
			}
			got := []int{get(), get()}
			now = now.Add(24 * time.Hour)
			got = append(got, get())
			require.Equal(t, tt.want, got)
		})
	}
	t.Run("message", func(t *testing.T) {
		var notices bytes.Buffer
		h := &helper.Helper{Store: &store.Store{Dir: t.TempDir(), Secrets: memory.New()},
			Now: func() time.Time { return start }, Notices: &notices}
		e, err := h.Add(context.Background(), helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Expires: "2026-11-30", Token: tok})
		require.NoError(t, err)
		q, _ := credential.Read(strings.NewReader("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n"))
		_, err = h.Get(context.Background(), q)
		require.NoError(t, err)
		require.Equal(t, "git-credential-bbtoken: the repository token for https://bitbucket.org/ws/repo ("+e.ID+") expires on 2026-11-30, in 2 days: create a new one and `git-credential-bbtoken add` it (silence this: git-credential-bbtoken config expiry-warnings off)\n", notices.String())
	})
}
