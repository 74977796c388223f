package bbapi

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
)

func TestParseBaseURL(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"https://api.bitbucket.org":                "https://api.bitbucket.org",
		"https://api.bitbucket.org/":               "https://api.bitbucket.org",
		"  https://API.Example.COM:443/proxy/bb/ ": "https://api.example.com/proxy/bb",
		"HTTPS://bb.example.com:8443/bitbucket":    "https://bb.example.com:8443/bitbucket",
	}
	for in, want := range good {
		got, err := ParseBaseURL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{
		"", "api.bitbucket.org", "http://api.bitbucket.org", "ftp://x", "https://",
		"https://user:pw@api.example.com", "https://api.example.com/?x=1", "https://api.example.com/#f",
		"https://api.example.com/a/../b", "https://api.example.com/a//b", "https://api.example.com/%2e%2e",
		"https://bb.example.com/scm/PROJ/repo.git", "https://bad host/",
	} {
		_, err := ParseBaseURL(in)
		assert.ErrorIs(t, err, ErrBadBaseURL, "%q", in)
	}
}

func scope(t *testing.T, raw string) bitbucket.Scope {
	t.Helper()
	sc, err := bitbucket.ParseScope(raw)
	require.NoError(t, err)
	return sc
}

func TestDefaultBase(t *testing.T) {
	t.Parallel()
	cases := []struct {
		flavor bitbucket.Flavor
		scope  string
		want   string
	}{
		{bitbucket.Cloud, "https://bitbucket.org/ws/repo", CloudAPI},
		{bitbucket.Cloud, "https://bitbucket.org", CloudAPI},
		{bitbucket.DataCenter, "https://bb.example.com/scm/PROJ/repo", "https://bb.example.com"},
		{bitbucket.DataCenter, "https://bb.example.com:8443/bitbucket/scm/PROJ", "https://bb.example.com:8443/bitbucket"},
		{bitbucket.DataCenter, "https://bb.example.com/a/b/scm/~alice/repo", "https://bb.example.com/a/b"},
		{bitbucket.DataCenter, "https://bb.example.com/bitbucket", "https://bb.example.com/bitbucket"},
		{bitbucket.DataCenter, "https://bb.example.com", "https://bb.example.com"},
	}
	for _, c := range cases {
		got, err := DefaultBase(c.flavor, scope(t, c.scope))
		require.NoError(t, err, c.scope)
		assert.Equal(t, c.want, got, c.scope)
	}
	_, err := DefaultBase(bitbucket.Cloud, scope(t, "https://bb-proxy.example.com/ws/repo"))
	assert.ErrorIs(t, err, ErrNoBaseURL, "a Cloud-flavoured host other than bitbucket.org has no default: never send its token elsewhere")
}

func TestCheckEndpoint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		flavor   bitbucket.Flavor
		base     string
		scope    string
		url      string
		reads    bool
		authOnly bool
	}{
		{bitbucket.Cloud, CloudAPI, "https://bitbucket.org/ws/repo", "https://api.bitbucket.org/2.0/repositories/ws/repo", true, false},
		{bitbucket.Cloud, CloudAPI + "/", "https://bitbucket.org/ws", "https://api.bitbucket.org/2.0/repositories/ws?pagelen=1", true, false},
		{bitbucket.Cloud, CloudAPI, "https://bitbucket.org", "https://api.bitbucket.org/2.0/user/workspaces?pagelen=1", false, true},
		{bitbucket.Cloud, "https://proxy.example.com/bb", "https://bitbucket.org/ws/my repo", "https://proxy.example.com/bb/2.0/repositories/ws/my%20repo", true, false},
		{bitbucket.DataCenter, "https://bb.example.com/bitbucket", "https://bb.example.com/bitbucket/scm/PROJ/repo", "https://bb.example.com/bitbucket/rest/api/1.0/projects/PROJ/repos/repo", true, false},
		{bitbucket.DataCenter, "https://bb.example.com/bitbucket", "https://bb.example.com/bitbucket/scm/PROJ", "https://bb.example.com/bitbucket/rest/api/1.0/projects/PROJ", false, false},
		{bitbucket.DataCenter, "https://bb.example.com", "https://bb.example.com/scm/~alice/repo", "https://bb.example.com/rest/api/1.0/users/alice/repos/repo", true, false},
		{bitbucket.DataCenter, "https://bb.example.com", "https://bb.example.com/scm/~alice", "https://bb.example.com/rest/api/1.0/users/alice", false, false},
		{bitbucket.DataCenter, "https://bb.example.com/bitbucket", "https://bb.example.com/bitbucket", "https://bb.example.com/bitbucket/rest/api/1.0/projects?limit=1", false, false},
		// A configured API URL replaces the instance URL, context path included.
		{bitbucket.DataCenter, "https://api-proxy.example.com", "https://bb.example.com/bitbucket/scm/PROJ/repo", "https://api-proxy.example.com/rest/api/1.0/projects/PROJ/repos/repo", true, false},
	}
	for _, c := range cases {
		ep, err := CheckEndpoint(c.flavor, c.base, scope(t, c.scope))
		require.NoError(t, err, c.scope)
		assert.Equal(t, c.url, ep.URL, c.scope)
		assert.Equal(t, c.reads, ep.ReadsRepository, c.scope)
		assert.Equal(t, c.authOnly, ep.AuthOnly, c.scope)
		assert.NotEmpty(t, ep.Proves)
	}
	_, err := CheckEndpoint(bitbucket.Cloud, CloudAPI, bitbucket.Scope{Host: "bitbucket.org", Path: "a/b/c"})
	assert.Error(t, err)
	_, err = CheckEndpoint(bitbucket.DataCenter, "https://h", bitbucket.Scope{Host: "h", Path: "scm/P/r/x"})
	assert.Error(t, err)
}
