package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// detectServer is a TLS server that answers like Bitbucket Data Center (an
// X-AREQUESTID header) when dc is set, and like a plain web server
// otherwise. Tests using it swap detectClient, so they are not parallel
// (nor are the other setup tests).
func detectServer(t *testing.T, dc bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if dc {
			w.Header().Set("X-AREQUESTID", "@TEST1x1x1")
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	old := detectClient
	detectClient = srv.Client()
	t.Cleanup(func() { detectClient = old })
	return srv, &hits
}

func TestSetupDetectDataCenter(t *testing.T) {
	isolateGit(t)
	srv, _ := detectServer(t, true)
	host := strings.TrimPrefix(srv.URL, "https://")
	f := newFixture(t)

	r := f.run("", "setup", "--host", srv.URL+"/bitbucket/projects/PRJ/repos/repo/browse", "--detect")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, srv.URL+"/bitbucket: detected Bitbucket Data Center (X-AREQUESTID header on HEAD (HTTP 200))\n")
	assert.Contains(t, r.stdout, srv.URL+": set up: git uses only git-credential-bbtoken (datacenter) with useHttpPath=true\n")
	hc := f.index().Hosts[host]
	assert.Equal(t, "datacenter", hc.Flavor)
	assert.Equal(t, srv.URL+"/bitbucket", hc.BaseURL)
	assert.Equal(t, []string{"", exePath}, globalAll(t, "credential."+srv.URL+".helper"))
}

// TestSetupDetectNotBitbucket: no marker, no change, and a message saying
// how to set it up anyway.
func TestSetupDetectNotBitbucket(t *testing.T) {
	home := isolateGit(t)
	srv, hits := detectServer(t, false)
	f := newFixture(t)
	before := f.state()
	r := f.run("", "setup", "--host", srv.URL, "--detect")
	assert.Equal(t, ExitError, r.code)
	assert.Empty(t, r.stdout)
	assertOneLine(t, r.stderr)
	assert.Contains(t, r.stderr, srv.URL+" answered HTTP 200 without a Bitbucket Data Center marker")
	assert.Contains(t, r.stderr, "nothing changed (if it is Bitbucket Data Center: setup --host "+srv.URL+" --flavor datacenter)")
	assert.Equal(t, int32(2), hits.Load(), "a HEAD then a GET")
	assertUnchanged(t, before, f.state())
	assert.Equal(t, "<none>", readGitconfig(t, home))

	// Unreachable: an error, bounded, nothing changed.
	srv.Close()
	r = f.run("", "setup", "--host", srv.URL, "--detect")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stderr, "--detect: no answer from "+srv.URL)
	assertUnchanged(t, before, f.state())
}

func TestSetupDetectDryRunAndCloud(t *testing.T) {
	home := isolateGit(t)
	srv, hits := detectServer(t, true)
	f := newFixture(t)
	r := f.run("", "setup", "--host", srv.URL, "--host", "https://bitbucket.org", "--detect", "--dry-run")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, srv.URL+": detected Bitbucket Data Center")
	assert.Contains(t, r.stdout, "https://bitbucket.org: Bitbucket Cloud (nothing to detect)\n")
	assert.Contains(t, r.stdout, srv.URL+": would use git-credential-bbtoken (datacenter)\n")
	assert.Contains(t, r.stdout, "https://bitbucket.org: would use git-credential-bbtoken (cloud)\n")
	assert.Equal(t, int32(1), hits.Load(), "only the Data Center candidate is asked")
	assert.Equal(t, "<none>", readGitconfig(t, home))
	assert.Nil(t, f.state().index)
}

func TestSetupDetectUsage(t *testing.T) {
	isolateGit(t)
	f := newFixture(t)
	for _, args := range [][]string{
		{"setup", "--detect", "--flavor", "cloud"},
		{"setup", "--detect", "--remove"},
	} {
		r := f.run("", args...)
		assert.Equal(t, ExitUsage, r.code, "%v", args)
		assert.Contains(t, r.stderr, "--detect decides the flavour")
	}
}
