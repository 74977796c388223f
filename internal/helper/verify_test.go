package helper_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

func newVerifyHelper(t *testing.T) *helper.Helper {
	t.Helper()
	return &helper.Helper{
		Store: &store.Store{Dir: filepath.Join(t.TempDir(), "config"), Secrets: memory.New()},
		Now:   func() time.Time { return time.Date(2026, 8, 15, 12, 0, 0, 0, time.UTC) },
	}
}

func verifyAdd(t *testing.T, h *helper.Helper, o helper.AddOptions) *store.Entry {
	t.Helper()
	e, err := h.Add(context.Background(), o)
	require.NoError(t, err)
	return e
}

func verifyEntry(t *testing.T, h *helper.Helper, id string) store.Entry {
	t.Helper()
	ix, err := h.Store.Load()
	require.NoError(t, err)
	e, ok := ix.Find(id)
	require.True(t, ok, id)
	return *e
}

func TestRecordVerified(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newVerifyHelper(t)
	const (
		repoTok = credential.Secret("ATCTT3xRecordRepoTokenAA11")
		wsTok   = credential.Secret("ATCTT3xRecordWorkspaceTAA22")
		dcTok   = credential.Secret("BBDC-RecordProjectTokAA33")
	)
	repo := verifyAdd(t, h, helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Token: repoTok})
	ws := verifyAdd(t, h, helper.AddOptions{URL: "https://bitbucket.org/ws", Kind: store.KindWorkspace, Token: wsTok})
	dc := verifyAdd(t, h, helper.AddOptions{URL: "https://bb.example.com/projects/PROJ", Kind: store.KindProject, Token: dcTok})

	got, err := h.WireSecret(ctx, dc)
	require.NoError(t, err)
	assert.Equal(t, dcTok, got, "a Bearer entry's credential")

	// An env entry is never marked: the variable may hold another token.
	envEntry := &store.Entry{ID: "e", Kind: store.KindRepository, Store: store.StoreEnv, Env: "TOK", State: store.StateActive}
	assert.False(t, helper.NeedsRecord(envEntry, helper.Verified{ID: "e", Refused: true}))

	// A 401 marks rejected; a second one changes nothing.
	v := helper.Verified{ID: repo.ID, Secret: repoTok, Refused: true}
	assert.True(t, helper.NeedsRecord(repo, v))
	changed, err := h.RecordVerified(ctx, []helper.Verified{v})
	require.NoError(t, err)
	require.Len(t, changed, 1)
	e := verifyEntry(t, h, repo.ID)
	assert.Equal(t, store.StateRejected, e.State)
	assert.False(t, helper.NeedsRecord(&e, v))

	// Success revives it.
	v = helper.Verified{ID: repo.ID, Secret: repoTok, Accepted: true}
	assert.True(t, helper.NeedsRecord(&e, v))
	changed, err = h.RecordVerified(ctx, []helper.Verified{v})
	require.NoError(t, err)
	require.Len(t, changed, 1)
	assert.Equal(t, store.StateActive, verifyEntry(t, h, repo.ID).State)

	// A broader token refused while checked for one repository below its
	// scope is withdrawn from that repository only, as git's 401 there
	// would do: it stays active elsewhere.
	v = helper.Verified{ID: ws.ID, Secret: wsTok, Refused: true, Repository: "ws/locked"}
	assert.True(t, helper.NeedsRecord(ws, v))
	changed, err = h.RecordVerified(ctx, []helper.Verified{v})
	require.NoError(t, err)
	require.Len(t, changed, 1)
	e = verifyEntry(t, h, ws.ID)
	assert.Equal(t, store.StateActive, e.State)
	assert.Equal(t, []string{"ws/locked"}, e.RejectedFor)
	assert.False(t, helper.NeedsRecord(&e, v), "a second refusal changes nothing")
	require.NoError(t, h.Store.Update(ctx, func(tx *store.Tx) error {
		e, _ := tx.Index.Find(ws.ID)
		e.RejectedFor = nil
		tx.Changed()
		return nil
	}))

	// A broader token withdrawn from one repository is offered there again
	// once verify proved it can read that repository.
	require.NoError(t, h.Store.Update(ctx, func(tx *store.Tx) error {
		e, _ := tx.Index.Find(ws.ID)
		e.RejectedFor = []string{"ws/repo", "ws/other"}
		tx.Changed()
		return nil
	}))
	changed, err = h.RecordVerified(ctx, []helper.Verified{{ID: ws.ID, Secret: wsTok, Accepted: true, Repository: "ws/repo"}})
	require.NoError(t, err)
	require.Len(t, changed, 1)
	assert.Equal(t, []string{"ws/other"}, verifyEntry(t, h, ws.ID).RejectedFor)

	// Replaced since it was checked (same id, another secret), or gone:
	// nothing recorded.
	changed, err = h.RecordVerified(ctx, []helper.Verified{
		{ID: repo.ID, Secret: "ATCTT3xSomeOtherTokenAA44", Refused: true},
		{ID: "0badc0de", Secret: repoTok, Refused: true},
	})
	require.NoError(t, err)
	assert.Empty(t, changed)
	assert.Equal(t, store.StateActive, verifyEntry(t, h, repo.ID).State)

	// Credentials git stored are never changed by verify.
	stored := store.Entry{ID: "5707ed00", Kind: store.KindStored, URL: "https://bitbucket.org/ws/x"}
	assert.False(t, helper.NeedsRecord(&stored, helper.Verified{ID: stored.ID, Refused: true}))
}

func TestAddEmail(t *testing.T) {
	t.Parallel()
	h := newVerifyHelper(t)
	const apiTok = credential.Secret("ATATT3xEmailApiTokenAA55")
	e := verifyAdd(t, h, helper.AddOptions{URL: "https://bitbucket.org", Kind: store.KindAPI, Email: "alice@example.com", Token: apiTok})
	assert.Equal(t, "alice@example.com", verifyEntry(t, h, e.ID).Email)

	for _, o := range []helper.AddOptions{
		{URL: "https://bitbucket.org", Kind: store.KindAPI, Email: "alice", Token: apiTok},
		{URL: "https://bitbucket.org", Kind: store.KindAPI, Email: "a@b@c", Token: apiTok},
		{URL: "https://bitbucket.org", Kind: store.KindAPI, Email: "al ice@example.com", Token: apiTok},
		{URL: "https://bitbucket.org/ws/repo", Email: "alice@example.com", Token: "ATCTT3xEmailRepoTokenAA66"},
		{URL: "https://bb.example.com", Kind: store.KindPersonal, Username: "alice", Email: "alice@example.com", Token: "BBDC-EmailPersonalAA77"},
	} {
		_, err := h.Add(context.Background(), o)
		assert.True(t, errors.Is(err, helper.ErrBadEmail), "%+v: %v", o.Email, err)
	}
}
