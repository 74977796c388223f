package bbapi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestScopeAccess(t *testing.T) {
	t.Parallel()
	cases := []struct {
		scopes      string
		clone, push bool
	}{
		{"", false, false},
		{"repository", true, false},
		{"repository:write", true, true},
		{"repository:admin", false, false}, // admin implies neither read nor write
		{"pullrequest", true, false},
		{"pullrequest:write", true, true},
		{"webhook account", false, false},
		{"read:repository:bitbucket", true, false},
		{"write:repository:bitbucket", false, false}, // write without read: neither
		{"read:repository:bitbucket write:repository:bitbucket", true, true},
		{"read:workspace:bitbucket read:user:bitbucket", false, false},
		{"REPO_READ", true, false},
		{"REPO_WRITE", true, true},
		{"PROJECT_READ", true, false},
		{"PROJECT_ADMIN", true, true},
	}
	for _, c := range cases {
		clone, push := ScopeAccess(strings.Fields(c.scopes))
		assert.Equal(t, c.clone, clone, "clone with %q", c.scopes)
		assert.Equal(t, c.push, push, "push with %q", c.scopes)
	}
}

func TestResultAccess(t *testing.T) {
	t.Parallel()
	repoEP := Endpoint{ReadsRepository: true}
	otherEP := Endpoint{}
	yes, no := "yes", "no"
	show := func(b *bool) string {
		switch {
		case b == nil:
			return "unknown"
		case *b:
			return yes
		}
		return no
	}
	cases := []struct {
		name        string
		res         Result
		ep          Endpoint
		clone, push string
	}{
		{"valid repository read, no scopes", Result{Status: StatusValid}, repoEP, yes, "unknown"},
		{"valid with write scope", Result{Status: StatusValid, Scopes: []string{"repository:write"}}, repoEP, yes, yes},
		{"valid, read-only scopes", Result{Status: StatusValid, Scopes: []string{"repository"}}, otherEP, yes, no},
		{"valid, scopes without repository", Result{Status: StatusValid, Scopes: []string{"account"}}, otherEP, no, no},
		{"valid elsewhere, no scopes (Data Center project)", Result{Status: StatusValid}, otherEP, "unknown", "unknown"},
		{"403 on a repository endpoint", Result{Status: StatusLackingScope}, repoEP, no, no},
		{"403 elsewhere with scopes", Result{Status: StatusLackingScope, Scopes: []string{"read:repository:bitbucket"}}, otherEP, yes, no},
		{"401", Result{Status: StatusRejected}, repoEP, no, no},
		{"410", Result{Status: StatusGone}, otherEP, no, no},
		{"404", Result{Status: StatusNotFound, Scopes: []string{"repository"}}, repoEP, "unknown", "unknown"},
		{"429", Result{Status: StatusRateLimited}, repoEP, "unknown", "unknown"},
		{"no answer", Result{Status: StatusError}, repoEP, "unknown", "unknown"},
	}
	for _, c := range cases {
		clone, push := c.res.Access(c.ep)
		assert.Equal(t, c.clone, show(clone), "%s: clone", c.name)
		assert.Equal(t, c.push, show(push), "%s: push", c.name)
	}
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "repository", KindOf("repo_access_token"))
	assert.Equal(t, "project", KindOf("project_access_token"))
	assert.Equal(t, "workspace", KindOf("workspace_access_token"))
	assert.Equal(t, "api", KindOf("api_token"))
	assert.Equal(t, "", KindOf("app_password"))
	assert.Equal(t, "", KindOf(""))
}
