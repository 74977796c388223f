package bbapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/redact"
)

func TestOAuthEndpointsFor(t *testing.T) {
	assert.Equal(t, OAuthEndpoints{"https://bitbucket.org/site/oauth2/authorize", "https://bitbucket.org/site/oauth2/access_token"},
		OAuthEndpointsFor(bitbucket.Cloud, "https://bitbucket.org"))
	assert.Equal(t, OAuthEndpoints{"https://bb.example.com/ctx/rest/oauth2/latest/authorize", "https://bb.example.com/ctx/rest/oauth2/latest/token"},
		OAuthEndpointsFor(bitbucket.DataCenter, "https://bb.example.com/ctx/"))
}

func TestPKCE(t *testing.T) {
	p, err := NewPKCE()
	require.NoError(t, err)
	assert.Len(t, p.Verifier, 43)
	sum := sha256.Sum256([]byte(p.Verifier))
	assert.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:]), p.Challenge)
	q, _ := NewPKCE()
	assert.NotEqual(t, p.Verifier, q.Verifier)
}

func TestCodeFrom(t *testing.T) {
	for _, tc := range []struct {
		name, pasted, code string
		err                bool
	}{
		{"the redirect URL", "http://127.0.0.1:53171/?code=abc&state=S", "abc", false},
		{"with a fragment", "http://127.0.0.1:53171/?state=S&code=abc#x", "abc", false},
		{"the query", "code=abc&state=S\n", "abc", false},
		{"a bare code", "  abc123  ", "abc123", false},
		{"wrong state", "http://127.0.0.1:53171/?code=abc&state=EVIL", "", true},
		{"no state", "http://127.0.0.1:53171/?code=abc", "", true},
		{"denied", "http://127.0.0.1:53171/?error=access_denied&state=S", "", true},
		{"an error, not ours", "http://127.0.0.1:53171/?error=access_denied&state=EVIL", "", true},
		{"no code", "http://127.0.0.1:53171/?state=S", "", true},
		{"empty", "\n", "", true},
		{"prose", "I clicked allow", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := CodeFrom(tc.pasted, "S")
			if tc.err {
				require.ErrorIs(t, err, ErrDenied)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.code, code)
		})
	}
}

func TestOAuthToken(t *testing.T) {
	var calls int
	srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls++
		key, sec, _ := r.BasicAuth()
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case key != "KEY" || sec != "consumer-secret-1":
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
		case r.Form.Get("refresh_token") == "dead-refresh":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"refresh token dead-refresh is no longer valid"}`)
		case r.Form.Get("refresh_token") == "flaky":
			w.WriteHeader(http.StatusBadGateway)
		case r.Form.Get("grant_type") == "authorization_code" && r.Form.Get("code_verifier") == "":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_request"}`)
		default:
			fmt.Fprint(w, `{"access_token":"access-2","refresh_token":"refresh-2","expires_in":7200,"scopes":"repository"}`)
		}
	})
	red := redact.New()
	c := &OAuthClient{Endpoints: OAuthEndpoints{Token: srv.URL + "/site/oauth2/access_token"}, Key: "KEY", Secret: "consumer-secret-1",
		HTTP: New(Options{RootCAs: pool, Redactor: red})}
	ctx := context.Background()

	tok, err := c.Refresh(ctx, "refresh-1")
	require.NoError(t, err)
	assert.Equal(t, "access-2", tok.Access)
	assert.Equal(t, "refresh-2", tok.Refresh)
	assert.Equal(t, "repository", tok.Scopes)
	assert.False(t, tok.Expiry.IsZero())

	p, _ := NewPKCE()
	_, err = c.Exchange(ctx, "the-code", "http://127.0.0.1:53171/", p)
	require.NoError(t, err)

	_, err = c.Refresh(ctx, "dead-refresh")
	require.ErrorIs(t, err, ErrInvalidGrant)
	assert.NotContains(t, err.Error(), "dead-refresh", "a refresh token in the server's words is masked")

	_, err = c.Refresh(ctx, "flaky")
	require.ErrorIs(t, err, ErrUnreachable)

	bad := *c
	bad.Secret = "wrong"
	_, err = bad.Refresh(ctx, "refresh-1")
	require.ErrorIs(t, err, ErrInvalidClient)
	assert.NotContains(t, err.Error(), "wrong")

	down := *c
	down.Endpoints.Token = "https://127.0.0.1:1/site/oauth2/access_token"
	_, err = down.Refresh(ctx, "refresh-1")
	require.ErrorIs(t, err, ErrUnreachable)
	require.False(t, errors.Is(err, ErrInvalidGrant))
	for _, s := range []string{"consumer-secret-1", "refresh-1", "access-2"} {
		assert.NotContains(t, red.String("x "+s+" y"), s, "%s is not registered for redaction", s)
	}
}

func TestAuthorizeURL(t *testing.T) {
	c := &OAuthClient{Endpoints: OAuthEndpointsFor(bitbucket.Cloud, "https://bitbucket.org"), Key: "KEY", Secret: "s"}
	p, _ := NewPKCE()
	u, err := url.Parse(c.AuthorizeURL("http://127.0.0.1:53171/", "S", p, []string{"repository", "repository:write"}))
	require.NoError(t, err)
	q := u.Query()
	assert.Equal(t, "KEY", q.Get("client_id"))
	assert.Equal(t, "code", q.Get("response_type"))
	assert.Equal(t, "S256", q.Get("code_challenge_method"))
	assert.Equal(t, p.Challenge, q.Get("code_challenge"))
	assert.Equal(t, "S", q.Get("state"))
	assert.Equal(t, "repository repository:write", q.Get("scope"))
	assert.False(t, strings.Contains(u.String(), p.Verifier), "the verifier never leaves")
	assert.False(t, strings.Contains(u.String(), "=s&") || q.Has("client_secret"), "the secret never goes in the URL")
}
