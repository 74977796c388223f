package setup

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// server is a TLS test server that records the methods it saw.
type server struct {
	*httptest.Server
	mu      sync.Mutex
	methods []string
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.methods = append(s.methods, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.methods...)
}

func TestDetect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		path     string
		dc       bool
		evidence string
		methods  []string
	}{
		{
			name: "X-AREQUESTID on HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-AREQUESTID", "@1ABCDEFx700x123x0")
				w.WriteHeader(http.StatusOK)
			},
			dc: true, evidence: "X-AREQUESTID header on HEAD (HTTP 200)", methods: []string{"HEAD /"},
		},
		{
			name: "realm on GET only",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodHead {
					w.WriteHeader(http.StatusMethodNotAllowed)
					return
				}
				w.Header().Add("WWW-Authenticate", `Bearer error="invalid_token"`)
				w.Header().Add("WWW-Authenticate", `Basic REALM="Atlassian Bitbucket"`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			dc: true, evidence: `WWW-Authenticate realm="Atlassian Bitbucket" on GET (HTTP 401)`, methods: []string{"HEAD /", "GET /"},
		},
		{
			name: "context path, redirect on the same host",
			path: "/bitbucket",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/bitbucket" {
					http.Redirect(w, r, "/bitbucket/dashboard", http.StatusFound)
					return
				}
				w.Header().Set("X-Arequestid", "@x")
			},
			dc: true, evidence: "X-AREQUESTID header on HEAD (HTTP 200)", methods: []string{"HEAD /bitbucket", "HEAD /bitbucket/dashboard"},
		},
		{
			name: "Bitbucket Cloud's realm is not Data Center",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Basic realm="Bitbucket.org HTTP"`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			dc: false, methods: []string{"HEAD /", "GET /"},
		},
		{
			name: "a look-alike realm is not Data Center",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Basic realm="Atlassian Bitbucket Mirror"`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			dc: false, methods: []string{"HEAD /", "GET /"},
		},
		{
			name:    "plain web server",
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("hello")) },
			dc:      false, methods: []string{"HEAD /", "GET /"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, tt.handler)
			d, err := Detect(context.Background(), s.Client(), s.URL+tt.path)
			require.NoError(t, err)
			assert.Equal(t, tt.dc, d.DataCenter)
			assert.Equal(t, tt.evidence, d.Evidence)
			assert.Equal(t, s.URL+tt.path, d.BaseURL)
			assert.Equal(t, tt.methods, s.seen())
		})
	}
}

// TestDetectDoesNotFollowOtherHosts: a redirect to another host (a single
// sign-on page) is not followed, and its answer does not count.
func TestDetectDoesNotFollowOtherHosts(t *testing.T) {
	t.Parallel()
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-AREQUESTID", "@x") })
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/login", http.StatusFound)
	})
	d, err := Detect(context.Background(), s.Client(), s.URL)
	require.NoError(t, err)
	assert.False(t, d.DataCenter)
	assert.Equal(t, http.StatusFound, d.Status)
	assert.Empty(t, other.seen())
}

func TestDetectErrors(t *testing.T) {
	t.Parallel()
	_, err := Detect(context.Background(), nil, "http://bb.example.com")
	assert.ErrorContains(t, err, "not an https URL")

	// An untrusted certificate is an error, not a verdict.
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-AREQUESTID", "@x") })
	_, err = Detect(context.Background(), &http.Client{}, s.URL)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")

	// A server that never answers is bounded by the caller's deadline (and
	// by DetectTimeout).
	release := make(chan struct{})
	slow := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Detect(ctx, slow.Client(), slow.URL)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.True(t, strings.Contains(err.Error(), "no answer"), err.Error())
}
