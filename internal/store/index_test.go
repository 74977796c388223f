package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

func TestEntryExpiry(t *testing.T) {
	now := time.Date(2026, 8, 15, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		expires string
		at      time.Time // zero: no expiry
		bad     bool
		expired bool
	}{
		{"none", "", time.Time{}, false, false},
		{"date in the future", "2026-08-16", time.Date(2026, 8, 16, 0, 0, 0, 0, time.UTC), false, false},
		{"date today: expired since midnight UTC", "2026-08-15", time.Date(2026, 8, 15, 0, 0, 0, 0, time.UTC), false, true},
		{"date in the past", "2026-01-01", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false, true},
		{"RFC 3339 later", "2026-08-15T12:00:01Z", now.Add(time.Second), false, false},
		{"RFC 3339 exactly now", "2026-08-15T12:00:00Z", now, false, true},
		{"RFC 3339 with offset", "2026-08-15T14:00:00+02:00", now, false, true},
		{"unreadable", "next year", time.Time{}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := store.Entry{ID: "id", Expires: tt.expires}
			at, ok, err := e.ExpiresAt()
			if tt.bad {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				assert.Equal(t, !tt.at.IsZero(), ok)
				assert.True(t, tt.at.Equal(at), "%s != %s", at, tt.at)
			}
			assert.Equal(t, tt.expired, e.Expired(now))
		})
	}
}

func TestEffectiveState(t *testing.T) {
	now := time.Date(2026, 8, 15, 12, 0, 0, 0, time.UTC)
	assert.Equal(t, store.StateActive, (&store.Entry{State: store.StateActive}).EffectiveState(now))
	assert.Equal(t, store.StateActive, (&store.Entry{}).EffectiveState(now))
	assert.Equal(t, store.StateExpired, (&store.Entry{State: store.StateActive, Expires: "2026-08-01"}).EffectiveState(now))
	assert.Equal(t, store.StateRejected, (&store.Entry{State: store.StateRejected, Expires: "2026-08-01"}).EffectiveState(now))
	assert.Equal(t, store.StateRejected, (&store.Entry{State: store.StateRejected}).EffectiveState(now))
}

func TestEntryAdded(t *testing.T) {
	for _, k := range store.AddKinds {
		assert.True(t, (&store.Entry{Kind: k}).Added(), k)
	}
	assert.False(t, (&store.Entry{Kind: store.KindStored}).Added())
}

func TestIndexFindRemove(t *testing.T) {
	ix := &store.Index{Entries: []store.Entry{{ID: "a"}, {ID: "b"}, {ID: "c"}}}
	e, ok := ix.Find("b")
	require.True(t, ok)
	e.Label = "changed through the pointer"
	assert.Equal(t, "changed through the pointer", ix.Entries[1].Label)
	_, ok = ix.Find("z")
	assert.False(t, ok)
	assert.True(t, ix.HasID("c"))
	assert.False(t, ix.HasID(""))

	assert.True(t, ix.Remove("b"))
	assert.False(t, ix.Remove("b"))
	assert.Equal(t, []store.Entry{{ID: "a"}, {ID: "c"}}, ix.Entries)
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{
		secrets.ErrNotFound, secrets.ErrUnavailable, secrets.ErrTimeout, secrets.ErrTooBig, secrets.ErrLocked, secrets.ErrListUnsupported,
		store.ErrIndexDamaged, store.ErrIndexNewer, store.ErrIndexUnsafe, store.ErrLocked, store.ErrNoEntry,
	}
	for i, a := range all {
		for j, b := range all {
			assert.Equal(t, i == j, errors.Is(a, b), "%v / %v", a, b)
		}
	}
}
