package bbapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
)

// OAuth 2.0 with Bitbucket: the authorization-code grant with PKCE (S256)
// and state, and rotating refresh tokens. Cloud serves it at
// https://bitbucket.org/site/oauth2/{authorize,access_token}; Data Center
// at BASE/rest/oauth2/latest/{authorize,token} (an incoming application
// link), keeping a context path.

// Errors of the token endpoint that callers branch on.
var (
	// ErrInvalidGrant: the code or refresh token is expired, revoked or
	// already used: only a new login helps.
	ErrInvalidGrant = errors.New("the login is no longer valid")
	// ErrInvalidClient: the consumer's key or secret is wrong.
	ErrInvalidClient = errors.New("the OAuth consumer's key or secret was refused")
	// ErrUnreachable: no answer, or a 5xx: nothing was spent, try again.
	ErrUnreachable = errors.New("the OAuth token endpoint did not answer")
	// ErrDenied: the authorization was refused (error= on the redirect),
	// or the redirect is not the one this login waits for.
	ErrDenied = errors.New("the authorization did not succeed")
)

// OAuthEndpoints are a host's authorize and token URLs.
type OAuthEndpoints struct{ Authorize, Token string }

// OAuthEndpointsFor derives them from the host's base URL (Cloud:
// https://bitbucket.org, or a test server; Data Center: with its context
// path).
func OAuthEndpointsFor(f bitbucket.Flavor, base string) OAuthEndpoints {
	base = strings.TrimRight(base, "/")
	if f == bitbucket.Cloud {
		return OAuthEndpoints{Authorize: base + "/site/oauth2/authorize", Token: base + "/site/oauth2/access_token"}
	}
	return OAuthEndpoints{Authorize: base + "/rest/oauth2/latest/authorize", Token: base + "/rest/oauth2/latest/token"}
}

// PKCE is one login's proof key: the verifier stays here, the challenge
// goes in the authorization URL.
type PKCE struct{ Verifier, Challenge string }

// NewPKCE makes a verifier of 43 characters (32 random bytes) and its S256
// challenge.
func NewPKCE() (PKCE, error) {
	v, err := randomString(32)
	if err != nil {
		return PKCE{}, err
	}
	sum := sha256.Sum256([]byte(v))
	return PKCE{Verifier: v, Challenge: base64.RawURLEncoding.EncodeToString(sum[:])}, nil
}

// NewState makes the state that binds a redirect to this login.
func NewState() (string, error) { return randomString(16) }

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a random value: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// OAuthClient talks to one host's token endpoint for one consumer.
type OAuthClient struct {
	Endpoints OAuthEndpoints
	Key       string
	Secret    string // the consumer's secret: never printed
	HTTP      *Client
}

// AuthorizeURL is where the browser goes.
func (c *OAuthClient) AuthorizeURL(redirect, state string, p PKCE, scopes []string) string {
	q := url.Values{
		"client_id":             {c.Key},
		"response_type":         {"code"},
		"state":                 {state},
		"code_challenge":        {p.Challenge},
		"code_challenge_method": {"S256"},
	}
	if redirect != "" {
		q.Set("redirect_uri", redirect)
	}
	if len(scopes) > 0 {
		q.Set("scope", strings.Join(scopes, " "))
	}
	return c.Endpoints.Authorize + "?" + q.Encode()
}

// CodeFrom reads what a user pasted after the browser's redirect (the
// whole URL, its query, or the bare code) and returns the code, checking
// state whenever the paste carries one.
func CodeFrom(pasted, state string) (string, error) {
	pasted = strings.TrimSpace(pasted)
	if pasted == "" {
		return "", fmt.Errorf("%w: nothing was pasted", ErrDenied)
	}
	raw := pasted
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[i+1:]
	}
	if !strings.Contains(raw, "=") {
		if strings.ContainsAny(raw, " /:") {
			return "", fmt.Errorf("%w: that is neither the URL the browser was sent to nor a code", ErrDenied)
		}
		return raw, nil // the bare code
	}
	q, err := url.ParseQuery(strings.SplitN(raw, "#", 2)[0])
	if err != nil {
		return "", fmt.Errorf("%w: the pasted URL cannot be read", ErrDenied)
	}
	return CodeFromQuery(q, state)
}

// CodeFromQuery reads the redirect's query (the loopback listener's).
func CodeFromQuery(q url.Values, state string) (string, error) {
	// State first: only this login's redirect may end it, even with an error.
	if q.Get("state") != state {
		return "", fmt.Errorf("%w: the redirect's state is not this login's (an old or foreign redirect): start the login again", ErrDenied)
	}
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("%w: Bitbucket answered %s%s", ErrDenied, oneLine(e, 80), describe(q.Get("error_description")))
	}
	code := q.Get("code")
	if code == "" {
		return "", fmt.Errorf("%w: the redirect carries no code", ErrDenied)
	}
	return code, nil
}

func describe(s string) string {
	if s == "" {
		return ""
	}
	return " (" + oneLine(s, 200) + ")"
}

// OAuthToken is what the token endpoint grants.
type OAuthToken struct {
	Access  string
	Refresh string
	Expiry  time.Time
	Scopes  string
}

// Exchange trades the authorization code for tokens.
func (c *OAuthClient) Exchange(ctx context.Context, code, redirect string, p PKCE) (OAuthToken, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {p.Verifier}}
	if redirect != "" {
		form.Set("redirect_uri", redirect)
	}
	return c.token(ctx, form)
}

// Refresh spends a refresh token for new tokens (Bitbucket rotates it:
// the one returned replaces it).
func (c *OAuthClient) Refresh(ctx context.Context, refresh string) (OAuthToken, error) {
	return c.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
}

func (c *OAuthClient) token(ctx context.Context, form url.Values) (OAuthToken, error) {
	red := c.HTTP.opts.Redactor
	red.Add(c.Secret, form.Get("code"), form.Get("refresh_token"), form.Get("code_verifier"))
	ctx, cancel := context.WithTimeout(ctx, c.HTTP.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoints.Token, strings.NewReader(form.Encode()))
	if err != nil {
		return OAuthToken{}, fmt.Errorf("the OAuth token endpoint %s: %w", c.Endpoints.Token, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if ua := c.HTTP.opts.UserAgent; ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	req.SetBasicAuth(c.Key, c.Secret)
	client := &http.Client{Transport: c.HTTP.transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return OAuthToken{}, fmt.Errorf("%w: %s: %s", ErrUnreachable, c.Endpoints.Token, describeNetError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return OAuthToken{}, fmt.Errorf("%w: %s: reading the answer: %s", ErrUnreachable, c.Endpoints.Token, describeNetError(err))
	}
	var out struct {
		Access    string `json:"access_token"`
		Refresh   string `json:"refresh_token"`
		ExpiresIn int64  `json:"expires_in"`
		Scopes    string `json:"scopes"`
		Scope     string `json:"scope"`
		Error     string `json:"error"`
		Desc      string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &out)
	red.Add(out.Access, out.Refresh)
	switch {
	case resp.StatusCode >= 500:
		return OAuthToken{}, fmt.Errorf("%w: %s answered %s", ErrUnreachable, c.Endpoints.Token, resp.Status)
	case out.Error == "invalid_grant":
		return OAuthToken{}, fmt.Errorf("%w%s", ErrInvalidGrant, describe(red.String(out.Desc)))
	case out.Error == "invalid_client":
		return OAuthToken{}, fmt.Errorf("%w (check the key, and the secret read on stdin)", ErrInvalidClient)
	case resp.StatusCode != http.StatusOK || out.Error != "":
		return OAuthToken{}, fmt.Errorf("the OAuth token endpoint %s answered %s%s", c.Endpoints.Token, resp.Status, describe(red.String(out.Error+" "+out.Desc)))
	case out.Access == "":
		return OAuthToken{}, fmt.Errorf("the OAuth token endpoint %s granted no access token", c.Endpoints.Token)
	}
	t := OAuthToken{Access: out.Access, Refresh: out.Refresh, Scopes: cmp.Or(out.Scope, out.Scopes)}
	// Bitbucket always says; a token endpoint that does not is taken at
	// the shortest lifetime Bitbucket grants (Data Center's hour).
	expiresIn := time.Duration(cmp.Or(out.ExpiresIn, 3600)) * time.Second
	t.Expiry = c.HTTP.opts.Now().Add(expiresIn).UTC()
	return t, nil
}
