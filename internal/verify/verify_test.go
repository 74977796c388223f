package verify

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bbtoken/git-credential-bbtoken/internal/bbapi"
	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// TestAuthFor: how each kind of entry is sent to the REST API, and why the
// ones that cannot be checked are not.
func TestAuthFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		e        store.Entry
		flavor   bitbucket.Flavor
		want     bbapi.Auth
		wantSkip string // a piece of the reason; "" when it is checked
	}{
		{"cloud repository token", store.Entry{Kind: store.KindRepository}, bitbucket.Cloud, bbapi.Auth{Bearer: true}, ""},
		{"cloud workspace token", store.Entry{Kind: store.KindWorkspace}, bitbucket.Cloud, bbapi.Auth{Bearer: true}, ""},
		{"cloud API token with the e-mail", store.Entry{Kind: store.KindAPI, Email: "a@example.com"}, bitbucket.Cloud, bbapi.Auth{Username: "a@example.com"}, ""},
		{"cloud API token without it", store.Entry{Kind: store.KindAPI, Username: "alice"}, bitbucket.Cloud, bbapi.Auth{}, "--email"},
		{"cloud, stored by git as an access token", store.Entry{Kind: store.KindStored, Username: helper.UserAccessToken}, bitbucket.Cloud, bbapi.Auth{Bearer: true}, ""},
		{"cloud, stored by git with a user name", store.Entry{Kind: store.KindStored, Username: "alice", UsernameSet: true}, bitbucket.Cloud, bbapi.Auth{}, "Atlassian e-mail"},
		{"data center personal token", store.Entry{Kind: store.KindPersonal, Username: "alice"}, bitbucket.DataCenter, bbapi.Auth{Username: "alice"}, ""},
		{"data center personal token without a user", store.Entry{Kind: store.KindPersonal}, bitbucket.DataCenter, bbapi.Auth{}, "without a username"},
		{"data center project token (Bearer)", store.Entry{Kind: store.KindProject, AuthType: "bearer"}, bitbucket.DataCenter, bbapi.Auth{Bearer: true}, ""},
		{"another authtype", store.Entry{Kind: store.KindProject, AuthType: "Negotiate"}, bitbucket.DataCenter, bbapi.Auth{}, `authtype "Negotiate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, skip := authFor(&tt.e, tt.flavor)
			assert.Equal(t, tt.want, got)
			if tt.wantSkip == "" {
				assert.Empty(t, skip)
			} else {
				assert.Contains(t, skip, tt.wantSkip)
			}
		})
	}
}

func TestIsEntryID(t *testing.T) {
	t.Parallel()
	for arg, want := range map[string]bool{
		"0123abcd": true, "deadbeef": true,
		"0123ABCD": false, "0123abc": false, "0123abcde": false, "0123abcg": false, "": false,
		"https://bitbucket.org/ws/repo": false,
	} {
		assert.Equal(t, want, isEntryID(arg), arg)
	}
}
