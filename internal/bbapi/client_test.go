package bbapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/redact"
	"github.com/bbtoken/git-credential-bbtoken/internal/trace"
)

const secret = credential.Secret("ATCTT3xFfGF0secretTokenZZ9876")

var bearer = Auth{Bearer: true, Secret: secret}

// tlsServer starts an HTTPS test server; all httptest TLS servers share
// one certificate, so the pool trusts every one of them.
func tlsServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the tests refuse
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, pool
}

// fakeClock records the waits instead of sleeping.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return nil
}

func newClient(pool *x509.CertPool, clock *fakeClock, maxWait time.Duration) *Client {
	o := Options{RootCAs: pool, MaxWait: maxWait, UserAgent: "git-credential-bbtoken/test", Timeout: 5 * time.Second}
	if clock != nil {
		o.Now, o.Sleep = clock.Now, clock.Sleep
	}
	return New(o)
}

func TestCheckStatusesAndHeaders(t *testing.T) {
	t.Parallel()
	type answer struct {
		code    int
		headers map[string]string
		body    string
	}
	cases := []struct {
		name     string
		ans      answer
		authOnly bool
		status   Status
		ctype    string
		scopes   []string // nil: not reported
		detail   string   // substring
	}{
		{"valid with type and scopes", answer{200, map[string]string{"X-Credential-Type": "repo_access_token", "X-OAuth-Scopes": "repository:write, repository"}, `{}`},
			false, StatusValid, "repo_access_token", []string{"repository:write", "repository"}, "the token can read"},
		{"scopes separated by spaces", answer{200, map[string]string{"x-oauth-scopes": "read:repository:bitbucket write:repository:bitbucket"}, ``},
			false, StatusValid, "", []string{"read:repository:bitbucket", "write:repository:bitbucket"}, ""},
		{"scopes header empty", answer{200, map[string]string{"X-OAuth-Scopes": ""}, ``}, false, StatusValid, "", []string{}, ""},
		{"no scopes header", answer{204, nil, ``}, false, StatusValid, "", nil, ""},
		{"401 Cloud", answer{401, map[string]string{"WWW-Authenticate": `Basic realm="Bitbucket.org HTTP"`}, `{"type":"error","error":{"message":"Token is invalid, expired, or not supported for this endpoint."}}`},
			false, StatusRejected, "", nil, "refused the credentials (HTTP 401): revoked, expired or mistyped: Token is invalid, expired, or not supported for this endpoint"},
		{"401 Data Center bad password", answer{401, nil, `{"errors":[{"message":"Authentication failed. Please check your credentials and try again.","exceptionName":"com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]}`},
			false, StatusRejected, "", nil, "Authentication failed"},
		{"401 Data Center not permitted", answer{401, nil, `{"errors":[{"message":"You are not permitted to access this resource","exceptionName":"com.atlassian.bitbucket.AuthorisationException"}]}`},
			false, StatusLackingScope, "", nil, "authenticated, but not permitted (HTTP 401): You are not permitted"},
		{"401 for a known user", answer{401, map[string]string{"X-AUSERNAME": "alice"}, ``}, false, StatusLackingScope, "", nil, "not permitted"},
		{"403 lacking scope", answer{403, map[string]string{"X-Accepted-OAuth-Scopes": "repository", "X-OAuth-Scopes": "webhook"}, `{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":{"required":["repository"],"granted":["webhook"]}}}`},
			false, StatusLackingScope, "", []string{"webhook"}, "lack one or more required privilege scopes; the endpoint takes repository"},
		{"403 lacking scope, required from the body", answer{403, nil, `{"type":"error","error":{"message":"nope","detail":{"required":["read:repository:bitbucket"]}}}`},
			false, StatusLackingScope, "", nil, "takes read:repository:bitbucket"},
		{"403 on an auth-only endpoint", answer{403, map[string]string{"X-OAuth-Scopes": "read:repository:bitbucket"}, `{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes."}}`},
			true, StatusValid, "", []string{"read:repository:bitbucket"}, "lacks a scope git does not need"},
		{"404", answer{404, nil, `{"type":"error","error":{"message":"Repository ws/repo not found"}}`}, false, StatusNotFound, "", nil, "not found (HTTP 404)"},
		{"410", answer{410, nil, ``}, false, StatusGone, "", nil, "app passwords"},
		{"500", answer{500, nil, `<html>oops</html>`}, false, StatusError, "", nil, "unexpected answer HTTP 500"},
		{"302 without Location", answer{302, nil, ``}, false, StatusError, "", nil, "HTTP 302"},
		{"server echoes the credentials", answer{401, nil, `{"type":"error","error":{"message":"bad header Bearer ` + string(secret) + ` for ` + string(secret) + `"}}`},
			false, StatusRejected, "", nil, "bad header ****9876 for ****9876"},
		{"control characters in the message", answer{404, nil, `{"errors":[{"message":"line1\nline2\u001b[31m"}]}`}, false, StatusNotFound, "", nil, "line1 line2 [31m"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var gotAuth, gotAccept, gotUA atomic.Value
			srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
				gotAuth.Store(r.Header.Get("Authorization"))
				gotAccept.Store(r.Header.Get("Accept"))
				gotUA.Store(r.Header.Get("User-Agent"))
				for k, v := range c.ans.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.ans.code)
				fmt.Fprint(w, c.ans.body)
			})
			var tr bytes.Buffer
			red := redact.New()
			cl := New(Options{RootCAs: pool, Trace: trace.New(&tr, red), Redactor: red, UserAgent: "git-credential-bbtoken/test"})
			ep := Endpoint{URL: srv.URL + "/2.0/repositories/ws/repo", Proves: "the token can read ws/repo", AuthOnly: c.authOnly, ReadsRepository: true}
			res := cl.Check(context.Background(), ep, bearer)
			assert.Equal(t, c.status, res.Status, res.Detail)
			assert.Equal(t, c.ans.code, res.HTTPStatus)
			assert.Equal(t, c.ctype, res.CredentialType)
			assert.Equal(t, c.scopes, res.Scopes)
			assert.Contains(t, res.Detail, c.detail)
			assert.NotContains(t, res.Detail, "\n")
			assert.Equal(t, "Bearer "+string(secret), gotAuth.Load())
			assert.Equal(t, "application/json", gotAccept.Load())
			assert.Equal(t, "git-credential-bbtoken/test", gotUA.Load())
			for _, leak := range []string{string(secret), base64.StdEncoding.EncodeToString([]byte(string(secret)))} {
				assert.NotContains(t, res.Detail, leak)
				assert.NotContains(t, tr.String(), leak)
			}
			assert.Contains(t, tr.String(), "verify: GET "+ep.URL+" (Bearer ****9876)")
		})
	}
}

func TestCheckBasicAuth(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		user, pw, ok := r.BasicAuth()
		got.Store(fmt.Sprint(user, "|", pw, "|", ok))
		w.Header().Set("X-Credential-Type", "api_token")
	})
	var tr bytes.Buffer
	red := redact.New()
	cl := New(Options{RootCAs: pool, Trace: trace.New(&tr, red), Redactor: red})
	res := cl.Check(context.Background(), Endpoint{URL: srv.URL + "/2.0/user/workspaces?pagelen=1"}, Auth{Username: "alice@example.com", Secret: secret})
	assert.Equal(t, StatusValid, res.Status)
	assert.Equal(t, "api_token", res.CredentialType)
	assert.Equal(t, "alice@example.com|"+string(secret)+"|true", got.Load())
	assert.Contains(t, tr.String(), "(Basic alice@example.com:****9876)")
	assert.NotContains(t, tr.String(), string(secret))
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

	// rateLimited answers 429 with the given Retry-After values in turn
	// (one per request; "-" for none, "ok" for a 200), then 200.
	rateLimited := func(t *testing.T, values ...string) (*httptest.Server, *x509.CertPool, *atomic.Int32) {
		var n atomic.Int32
		srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
			i := int(n.Add(1)) - 1
			if i < len(values) && values[i] != "ok" {
				if values[i] != "-" {
					w.Header().Set("Retry-After", values[i])
				}
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		return srv, pool, &n
	}

	t.Run("seconds", func(t *testing.T) {
		t.Parallel()
		srv, pool, n := rateLimited(t, "2")
		clock := &fakeClock{now: start}
		res := newClient(pool, clock, 10*time.Second).Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusValid, res.Status, res.Detail)
		assert.Equal(t, []time.Duration{2 * time.Second}, clock.slept)
		assert.Equal(t, 2*time.Second, res.Waited)
		assert.EqualValues(t, 2, n.Load())
	})
	t.Run("HTTP date", func(t *testing.T) {
		t.Parallel()
		srv, pool, _ := rateLimited(t, start.Add(3*time.Second).Format(http.TimeFormat))
		clock := &fakeClock{now: start}
		res := newClient(pool, clock, 10*time.Second).Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusValid, res.Status, res.Detail)
		assert.Equal(t, []time.Duration{3 * time.Second}, clock.slept)
	})
	t.Run("date in the past", func(t *testing.T) {
		t.Parallel()
		srv, pool, _ := rateLimited(t, start.Add(-time.Hour).Format(http.TimeFormat))
		clock := &fakeClock{now: start}
		res := newClient(pool, clock, 10*time.Second).Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusValid, res.Status, res.Detail)
		assert.Equal(t, []time.Duration{0}, clock.slept)
	})
	t.Run("too long", func(t *testing.T) {
		t.Parallel()
		srv, pool, n := rateLimited(t, "3600")
		clock := &fakeClock{now: start}
		res := newClient(pool, clock, 10*time.Second).Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusRateLimited, res.Status)
		assert.Equal(t, http.StatusTooManyRequests, res.HTTPStatus)
		assert.Empty(t, clock.slept, "no wait beyond the bound")
		assert.Contains(t, res.Detail, "retry after 1h0m0s, more than the 10s left to wait")
		assert.EqualValues(t, 1, n.Load())
	})
	t.Run("absent: short backoff, then give up", func(t *testing.T) {
		t.Parallel()
		srv, pool, n := rateLimited(t, "-", "-", "-", "-", "-")
		clock := &fakeClock{now: start}
		res := newClient(pool, clock, 10*time.Second).Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusRateLimited, res.Status)
		assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, clock.slept)
		assert.Contains(t, res.Detail, "still rate-limited (HTTP 429) after 4 attempts and 6s of waiting")
		assert.EqualValues(t, maxAttempts, n.Load())
	})
	t.Run("unreadable value counts as absent", func(t *testing.T) {
		t.Parallel()
		srv, pool, _ := rateLimited(t, "soon")
		clock := &fakeClock{now: start}
		res := newClient(pool, clock, 10*time.Second).Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusValid, res.Status)
		assert.Equal(t, []time.Duration{time.Second}, clock.slept)
	})
	t.Run("no wait allowed", func(t *testing.T) {
		t.Parallel()
		srv, pool, _ := rateLimited(t, "1")
		clock := &fakeClock{now: start}
		res := newClient(pool, clock, 0).Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusRateLimited, res.Status)
		assert.Empty(t, clock.slept)
	})
	t.Run("the bound is shared by all checks", func(t *testing.T) {
		t.Parallel()
		srv, pool, _ := rateLimited(t, "4", "ok", "4")
		clock := &fakeClock{now: start}
		cl := newClient(pool, clock, 5*time.Second)
		first := cl.Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusValid, first.Status)
		second := cl.Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusRateLimited, second.Status)
		assert.Contains(t, second.Detail, "more than the 1s left to wait")
		assert.Equal(t, []time.Duration{4 * time.Second}, clock.slept)
	})
	t.Run("real sleep is interrupted by the context", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
			// Cancel once the answer is out: during the wait.
			time.AfterFunc(time.Second, cancel)
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		began := time.Now()
		res := New(Options{RootCAs: pool, MaxWait: time.Minute}).Check(ctx, Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusRateLimited, res.Status)
		assert.Less(t, time.Since(began), 20*time.Second)
		assert.Contains(t, res.Detail, "interrupted")
	})
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 7 ", 7 * time.Second, true},
		{"-3", 0, false},
		{"1.5", 0, false},
		{"99999999999999999999", 0, false},
		{"31536001", 365 * 24 * time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"Tue, 01 Sep 2026 11:00:00 GMT", 0, true},
		{"tomorrow", 0, false},
	}
	for _, c := range cases {
		got, ok := parseRetryAfter(c.in, now)
		assert.Equal(t, c.ok, ok, "%q", c.in)
		assert.Equal(t, c.want, got, "%q", c.in)
	}
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	t.Run("same host: followed with the credentials", func(t *testing.T) {
		t.Parallel()
		var auth atomic.Value
		srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/old" {
				http.Redirect(w, r, "/new", http.StatusMovedPermanently)
				return
			}
			auth.Store(r.Header.Get("Authorization"))
		})
		res := New(Options{RootCAs: pool}).Check(context.Background(), Endpoint{URL: srv.URL + "/old"}, bearer)
		assert.Equal(t, StatusValid, res.Status, res.Detail)
		assert.Equal(t, "Bearer "+string(secret), auth.Load())
	})
	t.Run("another host: not followed, nothing sent there", func(t *testing.T) {
		t.Parallel()
		var reached atomic.Int32
		other, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) { reached.Add(1) })
		srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/2.0/repositories/ws/repo?x=1", http.StatusFound)
		})
		res := New(Options{RootCAs: pool}).Check(context.Background(), Endpoint{URL: srv.URL + "/2.0/repositories/ws/repo"}, bearer)
		assert.Equal(t, StatusError, res.Status)
		assert.Equal(t, http.StatusFound, res.HTTPStatus)
		assert.Contains(t, res.Detail, "redirected to "+other.URL+"/2.0/repositories/ws/repo: not followed, credentials go only to "+strings.TrimPrefix(srv.URL, "https://"))
		assert.Zero(t, reached.Load(), "the other host got no request")
	})
	t.Run("down to http: not followed", func(t *testing.T) {
		t.Parallel()
		var reached atomic.Int32
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
		t.Cleanup(plain.Close)
		srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, plain.URL+"/x", http.StatusTemporaryRedirect)
		})
		res := New(Options{RootCAs: pool}).Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusError, res.Status)
		assert.Contains(t, res.Detail, "not followed")
		assert.Zero(t, reached.Load())
	})
	t.Run("a loop ends", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int32
		srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			http.Redirect(w, r, "/again", http.StatusFound)
		})
		res := New(Options{RootCAs: pool}).Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusError, res.Status)
		assert.Contains(t, res.Detail, "more than 3 redirects")
		assert.LessOrEqual(t, n.Load(), int32(maxRedirects+1))
	})
}

func TestNoAnswer(t *testing.T) {
	t.Parallel()
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		var reached atomic.Int32
		srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) { reached.Add(1) })
		res := New(Options{}).Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusError, res.Status)
		assert.Zero(t, res.HTTPStatus)
		assert.Contains(t, res.Detail, "not trusted")
		assert.Zero(t, reached.Load())
	})
	t.Run("nobody listening", func(t *testing.T) {
		t.Parallel()
		srv, pool := tlsServer(t, func(http.ResponseWriter, *http.Request) {})
		url := srv.URL
		srv.Close()
		res := New(Options{RootCAs: pool}).Check(context.Background(), Endpoint{URL: url}, bearer)
		assert.Equal(t, StatusError, res.Status)
		assert.Contains(t, res.Detail, "no answer from "+strings.TrimPrefix(url, "https://"))
	})
	t.Run("too slow", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		defer close(release)
		began := time.Now()
		res := New(Options{RootCAs: pool, Timeout: 300 * time.Millisecond}).Check(context.Background(), Endpoint{URL: srv.URL}, bearer)
		assert.Equal(t, StatusError, res.Status)
		assert.Contains(t, res.Detail, "timed out")
		assert.Less(t, time.Since(began), 5*time.Second)
	})
	t.Run("not https", func(t *testing.T) {
		t.Parallel()
		for _, u := range []string{"http://127.0.0.1:1/x", "https://user:pw@127.0.0.1:1/", "::"} {
			res := New(Options{}).Check(context.Background(), Endpoint{URL: u}, bearer)
			assert.Equal(t, StatusError, res.Status, u)
			assert.Contains(t, res.Detail, "refusing to send a token", u)
		}
	})
}
