package fakebb

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// OAuth 2.0. Next to git and the REST API, the server answers Bitbucket's
// authorization-code flow on the same TLS listener:
//
//   - Cloud: GET /site/oauth2/authorize and POST /site/oauth2/access_token
//     (at the server's root, standing in for https://bitbucket.org);
//   - Data Center: GET {context path}/rest/oauth2/latest/authorize and POST
//     {context path}/rest/oauth2/latest/token (an incoming application link).
//
// The authorize endpoint plays a user who approves at once: it answers 302
// to the redirect URI with code and state. An unknown client_id or a
// redirect_uri that does not fit the consumer's callback gets a 400 page and
// no redirect; other errors (response_type other than code, a missing PKCE
// challenge where the consumer requires one, a scope the consumer lacks) go
// back to the redirect URI as error=... with state, as RFC 6749 says.
// redirect_uri may be omitted (the callback is used). Cloud accepts the
// registered callback or a URL extending it ("/add-on" → "/add-on/x", as
// Bitbucket Cloud documents); Data Center only the exact callback.
//
// The token endpoint takes a form body; the client authenticates with HTTP
// Basic key:secret or client_id/client_secret in the body (bad or missing:
// 401 invalid_client). Grants:
//
//   - authorization_code: the code is single-use (a second use also revokes
//     what the first issued, as RFC 6749 10.5 advises), expires after
//     OAuthOptions.CodeTTL, and is bound to its client, to the redirect_uri
//     sent to authorize (if one was sent) and to the PKCE challenge (S256:
//     base64url(SHA-256(code_verifier)) without padding; or plain);
//   - refresh_token: single-use and rotating. Every success answers a new
//     access and refresh token; the used refresh token keeps working for
//     OAuthOptions.RefreshGrace after its first use, then answers
//     invalid_grant. Data Center also revokes the access token issued with
//     the used refresh token at once (its provider deletes it).
//
// Errors are HTTP 400 JSON {"error":"invalid_grant","error_description":...}
// (unsupported_grant_type, invalid_request likewise). A success is 200 JSON
// with access_token, token_type "bearer", expires_in (whole seconds),
// refresh_token and scope (space-separated; Cloud says "scopes" instead with
// OAuthOptions.LegacyScopes, as before May 2026, and adds "state": the grant
// type, as Bitbucket Cloud does).
//
// Git accepts a live access token like a Token named OAuthTokenName(key),
// with the consumer's Prefixes and Write: Cloud as Basic x-token-auth:TOKEN,
// Data Center as "Authorization: Bearer TOKEN" (any other form, or an
// expired or revoked access token, gets 401). Pushing also needs a write
// scope among the granted ones, when any were granted. The REST API (api.go)
// does not know access tokens.
//
// OAuth requests appear in the request log with Service "oauth"; a token
// request names the client (when known) in Token as OAuthTokenName(key) and
// in Username when it came as Basic. Secrets, codes and tokens are never
// logged.

// Consumer is an OAuth consumer (Cloud) or an incoming application link's
// client (Data Center).
type Consumer struct {
	// Key is the client_id; Secret the client secret.
	Key, Secret string
	// CallbackURL is the registered callback (Data Center: redirect URL).
	CallbackURL string
	// Scopes are the scopes the consumer may be granted: Cloud e.g.
	// "repository", "repository:write"; Data Center e.g. "REPO_READ",
	// "REPO_WRITE". A request's scope parameter must be a subset; without
	// one, all are granted.
	Scopes []string
	// Write allows the access tokens to push (the user's permission; a
	// write scope must be granted too, if any scope is).
	Write bool
	// Prefixes are the repositories the login covers, as Token.Prefixes;
	// empty means all.
	Prefixes []string
	// RequirePKCE makes authorize refuse a request without code_challenge.
	RequirePKCE bool
	// User is the Data Center user the login acts for: its access tokens
	// may manage that user's tokens (tokens.go).
	User string
	// RefreshTokenLength pads the refresh tokens issued to this consumer to
	// this many characters (Bitbucket Cloud's can exceed 2,500); 0 leaves
	// them at 64.
	RefreshTokenLength int
}

// OAuthOptions configure the OAuth endpoints (Options.OAuth).
type OAuthOptions struct {
	// AccessTokenTTL is the access tokens' lifetime (expires_in, rounded
	// down to seconds). 0 means Bitbucket's default: 2 hours for Cloud, 1
	// hour for Data Center.
	AccessTokenTTL time.Duration
	// RefreshGrace is how long a used refresh token still works (each use
	// answering a new pair); 0 kills it at its first use.
	RefreshGrace time.Duration
	// CodeTTL is the authorization codes' lifetime; 0 means 10 minutes for
	// Cloud, 1 minute for Data Center.
	CodeTTL time.Duration
	// LegacyScopes makes Cloud's token responses say "scopes" (before May
	// 2026) instead of "scope".
	LegacyScopes bool
	// Now is the clock for every expiry; nil means time.Now.
	Now func() time.Time
}

// OAuthTokenName is the Token name under which git requests with an access
// token of the consumer appear in the request log.
func OAuthTokenName(consumerKey string) string { return "oauth:" + consumerKey }

type oauthState struct {
	flavor    Flavor
	accessTTL time.Duration
	codeTTL   time.Duration
	grace     time.Duration
	legacy    bool
	now       func() time.Time

	mu        sync.Mutex
	consumers map[string]*oauthConsumer
	codes     map[string]*oauthCode
	access    map[string]*oauthAccess
	refresh   map[string]*oauthRefresh
	families  int
	issued    []string // every code, access and refresh token, for tests' leak scans
}

type oauthConsumer struct {
	Consumer
	refreshes int // refresh_token grants that succeeded
	attempts  int // refresh_token grants by this client, whatever the answer
}

type oauthCode struct {
	client            string
	redirect          string // redirect_uri sent to authorize, "" if none
	challenge, method string
	scopes            []string
	expires           time.Time
	used              bool
	family            int // tokens issued from this code share it
}

type oauthAccess struct {
	client  string
	scopes  []string
	expires time.Time
	dead    bool // revoked or expired by ExpireAccessTokens
	family  int
}

type oauthRefresh struct {
	client  string
	scopes  []string
	access  string    // the access token issued with it
	diesAt  time.Time // zero until first used
	revoked bool
	family  int
}

func newOAuthState(flavor Flavor, opts OAuthOptions) *oauthState {
	o := &oauthState{
		flavor:    flavor,
		accessTTL: opts.AccessTokenTTL,
		codeTTL:   opts.CodeTTL,
		grace:     opts.RefreshGrace,
		legacy:    opts.LegacyScopes,
		now:       opts.Now,
		consumers: map[string]*oauthConsumer{},
		codes:     map[string]*oauthCode{},
		access:    map[string]*oauthAccess{},
		refresh:   map[string]*oauthRefresh{},
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.accessTTL <= 0 {
		o.accessTTL = 2 * time.Hour
		if flavor == DataCenter {
			o.accessTTL = time.Hour
		}
	}
	if o.codeTTL <= 0 {
		o.codeTTL = 10 * time.Minute
		if flavor == DataCenter {
			o.codeTTL = time.Minute
		}
	}
	return o
}

// AddConsumer adds an OAuth consumer, replacing any with the same Key
// (tokens already issued to it stay valid under the new settings).
func (s *Server) AddConsumer(c Consumer) {
	c.Scopes = slices.Clone(c.Scopes)
	c.Prefixes = slices.Clone(c.Prefixes)
	o := s.oauth
	o.mu.Lock()
	defer o.mu.Unlock()
	if old := o.consumers[c.Key]; old != nil {
		old.Consumer = c
		return
	}
	o.consumers[c.Key] = &oauthConsumer{Consumer: c}
}

// AuthorizeURL is the OAuth authorization endpoint's URL.
func (s *Server) AuthorizeURL() string {
	a, _ := s.oauthPaths()
	return s.srv.URL + a
}

// TokenURL is the OAuth token endpoint's URL.
func (s *Server) TokenURL() string {
	_, t := s.oauthPaths()
	return s.srv.URL + t
}

// RefreshCount returns how many refresh_token grants of the consumer
// succeeded.
func (s *Server) RefreshCount(consumerKey string) int {
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	if c := s.oauth.consumers[consumerKey]; c != nil {
		return c.refreshes
	}
	return 0
}

// RefreshAttempts returns how many refresh_token grants the consumer sent
// (authenticated), successful or not.
func (s *Server) RefreshAttempts(consumerKey string) int {
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	if c := s.oauth.consumers[consumerKey]; c != nil {
		return c.attempts
	}
	return 0
}

// RevokeRefreshTokens makes every refresh token issued to the consumer so
// far answer invalid_grant (its access tokens live on until they expire).
func (s *Server) RevokeRefreshTokens(consumerKey string) {
	o := s.oauth
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rt := range o.refresh {
		if rt.client == consumerKey {
			rt.revoked = true
		}
	}
}

// ExpireAccessTokens makes every access token issued so far expired: git
// answers 401 to it.
func (s *Server) ExpireAccessTokens() {
	o := s.oauth
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, at := range o.access {
		at.dead = true
	}
}

func (s *Server) oauthPaths() (authorize, token string) {
	if s.flavor == Cloud {
		return "/site/oauth2/authorize", "/site/oauth2/access_token"
	}
	return s.ctxPath + "/rest/oauth2/latest/authorize", s.ctxPath + "/rest/oauth2/latest/token"
}

// serveOAuth answers the OAuth endpoints; it reports false for other paths.
func (s *Server) serveOAuth(w http.ResponseWriter, r *http.Request, rec *Request) bool {
	authorize, token := s.oauthPaths()
	switch r.URL.Path {
	case authorize:
		rec.Service = "oauth"
		s.oauthAuthorize(w, r)
	case token:
		rec.Service = "oauth"
		s.oauthToken(w, r, rec)
	default:
		return false
	}
	return true
}

// oauthAuthenticate identifies an access token presented to git. found is
// false when secret is no access token; otherwise tok is its Token view and
// rejected says whether git must answer 401. It fills rec.Token.
func (s *Server) oauthAuthenticate(username, secret string, rec *Request) (tok *Token, rejected, found bool) {
	o := s.oauth
	o.mu.Lock()
	defer o.mu.Unlock()
	at := o.access[secret]
	if at == nil || secret == "" {
		return nil, false, false
	}
	t := Token{Name: OAuthTokenName(at.client)}
	rec.Token = t.Name
	if s.flavor == Cloud {
		t.Usernames = []string{"x-token-auth"}
	} else {
		t.Bearer = true
	}
	c := o.consumers[at.client]
	if c == nil || at.dead || !o.now().Before(at.expires) {
		return &t, true, true
	}
	t.Prefixes = slices.Clone(c.Prefixes)
	t.Write = c.Write && (len(at.scopes) == 0 || slices.ContainsFunc(at.scopes, isWriteScope))
	if rec.Auth == "bearer" {
		return &t, !t.Bearer, true
	}
	return &t, !slices.Contains(t.Usernames, username), true
}

// isWriteScope reports whether a granted scope allows pushing.
func isWriteScope(scope string) bool {
	switch scope {
	case "repository:write", "repository:admin", // Cloud
		"REPO_WRITE", "REPO_ADMIN", "PROJECT_ADMIN", "ADMIN", "SYSTEM_ADMIN": // Data Center
		return true
	}
	return false
}

// redirectAllowed reports whether redirect_uri fits the registered callback.
func (o *oauthState) redirectAllowed(registered, given string) bool {
	if given == registered {
		return true
	}
	rest, ok := strings.CutPrefix(given, registered)
	return ok && o.flavor == Cloud && registered != "" &&
		(strings.HasSuffix(registered, "/") || strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, "?"))
}

func oauthPage(w http.ResponseWriter, code int, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte("<!DOCTYPE html><html><body><h1>" + html.EscapeString(message) + "</h1></body></html>\n"))
}

// oauthAuthorize answers the authorization endpoint as a user who approves.
func (s *Server) oauthAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		oauthPage(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	q := r.URL.Query()
	location, page := s.oauth.authorize(q)
	if page != "" {
		oauthPage(w, http.StatusBadRequest, page)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, location, http.StatusFound)
}

// authorize returns where to redirect the browser, or the message of a 400
// page.
func (o *oauthState) authorize(q url.Values) (location, page string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.consumers[q.Get("client_id")]
	if c == nil {
		return "", "Invalid client_id"
	}
	target := c.CallbackURL
	if given := q.Get("redirect_uri"); given != "" {
		if !o.redirectAllowed(c.CallbackURL, given) {
			return "", "The redirect_uri does not match the consumer's callback URL"
		}
		target = given
	}
	u, err := url.Parse(target)
	if err != nil || !u.IsAbs() {
		return "", "The consumer has no usable callback URL"
	}
	answer := func(params url.Values) string {
		v := u.Query()
		for k, vs := range params {
			v[k] = vs
		}
		if st := q.Get("state"); st != "" {
			v.Set("state", st)
		}
		u.RawQuery = v.Encode()
		return u.String()
	}
	fail := func(code, desc string) (string, string) {
		return answer(url.Values{"error": {code}, "error_description": {desc}}), ""
	}

	if q.Get("response_type") != "code" {
		return fail("unsupported_response_type", "response_type must be code")
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && (method != "" || c.RequirePKCE):
		return fail("invalid_request", "code_challenge is required")
	case challenge == "":
	case method == "S256":
		if raw, err := base64.RawURLEncoding.DecodeString(challenge); err != nil || len(raw) != sha256.Size {
			return fail("invalid_request", "code_challenge is not a base64url SHA-256 value")
		}
	case method == "" || method == "plain":
		method = "plain"
		if len(challenge) < 43 || len(challenge) > 128 {
			return fail("invalid_request", "code_challenge must have 43 to 128 characters")
		}
	default:
		return fail("invalid_request", "code_challenge_method must be S256 or plain")
	}
	scopes := slices.Clone(c.Scopes)
	if requested := strings.Fields(q.Get("scope")); len(requested) > 0 {
		for _, sc := range requested {
			if !slices.Contains(c.Scopes, sc) {
				return fail("invalid_scope", "the consumer may not be granted "+sc)
			}
		}
		scopes = requested
	}
	code := randomToken(18)
	o.families++
	o.issued = append(o.issued, code)
	o.codes[code] = &oauthCode{
		client:    c.Key,
		redirect:  q.Get("redirect_uri"),
		challenge: challenge,
		method:    method,
		scopes:    scopes,
		expires:   o.now().Add(o.codeTTL),
		family:    o.families,
	}
	return answer(url.Values{"code": {code}}), ""
}

// oauthError is a token endpoint error.
type oauthError struct {
	status            int
	code, description string
}

func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request, rec *Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "use POST"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "unreadable form body"})
		return
	}
	form := r.PostForm
	key, secret, basic := r.BasicAuth()
	if basic {
		rec.Auth = "basic"
		rec.Username = key
	} else {
		key, secret = form.Get("client_id"), form.Get("client_secret")
	}
	resp, oerr := s.oauth.token(key, secret, form, rec)
	if oerr != nil {
		if oerr.status == http.StatusUnauthorized && basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="OAuth"`)
		}
		writeJSON(w, oerr.status, map[string]string{"error": oerr.code, "error_description": oerr.description})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (o *oauthState) token(key, secret string, form url.Values, rec *Request) (map[string]any, *oauthError) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.consumers[key]
	if c != nil {
		rec.Token = OAuthTokenName(key)
	}
	if c == nil || secret == "" || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return nil, &oauthError{http.StatusUnauthorized, "invalid_client", "Invalid OAuth client credentials"}
	}
	invalid := func(desc string) *oauthError {
		return &oauthError{http.StatusBadRequest, "invalid_grant", desc}
	}
	now := o.now()
	grant := form.Get("grant_type")
	var scopes []string
	var family int
	switch grant {
	case "authorization_code":
		ac := o.codes[form.Get("code")]
		if ac == nil || ac.client != c.Key {
			return nil, invalid("Invalid authorization code")
		}
		if ac.used {
			o.revokeFamily(ac.family)
			return nil, invalid("Authorization code already used")
		}
		ac.used = true // one attempt per code, whatever its outcome
		wantRedirect := ac.redirect
		if wantRedirect == "" && form.Get("redirect_uri") != "" {
			wantRedirect = c.CallbackURL
		}
		switch {
		case !now.Before(ac.expires):
			return nil, invalid("Authorization code expired")
		case form.Get("redirect_uri") != wantRedirect:
			return nil, invalid("redirect_uri does not match the authorization request")
		case ac.challenge != "" && !pkceMatches(ac.challenge, ac.method, form.Get("code_verifier")):
			return nil, invalid("code_verifier does not match the code_challenge")
		}
		scopes, family = ac.scopes, ac.family
	case "refresh_token":
		c.attempts++
		rt := o.refresh[form.Get("refresh_token")]
		switch {
		case rt == nil || rt.client != c.Key || form.Get("refresh_token") == "":
			return nil, invalid("Invalid refresh token")
		case rt.revoked:
			return nil, invalid("Refresh token revoked")
		case !rt.diesAt.IsZero() && !now.Before(rt.diesAt):
			return nil, invalid("Refresh token already used")
		}
		if rt.diesAt.IsZero() {
			rt.diesAt = now.Add(o.grace)
		}
		if o.flavor == DataCenter {
			if at := o.access[rt.access]; at != nil {
				at.dead = true
			}
		}
		c.refreshes++
		scopes, family = rt.scopes, rt.family
	case "":
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "grant_type is missing"}
	default:
		return nil, &oauthError{http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type: " + grant}
	}

	access := o.newAccessToken()
	o.access[access] = &oauthAccess{client: c.Key, scopes: scopes, expires: now.Add(o.accessTTL), family: family}
	o.issued = append(o.issued, access)
	refresh := randomToken(48)
	for len(refresh) < c.RefreshTokenLength {
		refresh += randomToken(48)
	}
	if c.RefreshTokenLength > 0 {
		refresh = refresh[:c.RefreshTokenLength]
	}
	o.refresh[refresh] = &oauthRefresh{client: c.Key, scopes: scopes, access: access, family: family}
	o.issued = append(o.issued, refresh)

	resp := map[string]any{
		"access_token":  access,
		"token_type":    "bearer",
		"expires_in":    int64(o.accessTTL / time.Second),
		"refresh_token": refresh,
	}
	scope := strings.Join(scopes, " ")
	if o.flavor == Cloud {
		resp["state"] = grant
		if o.legacy {
			resp["scopes"] = scope
		} else {
			resp["scope"] = scope
		}
	} else {
		resp["scope"] = scope
	}
	return resp, nil
}

// revokeFamily kills every token issued from one authorization.
func (o *oauthState) revokeFamily(family int) {
	for _, at := range o.access {
		if at.family == family {
			at.dead = true
		}
	}
	for _, rt := range o.refresh {
		if rt.family == family {
			rt.revoked = true
		}
	}
}

// newAccessToken makes an access token shaped like the flavor's: Cloud's are
// long base64url strings, Data Center's are JWTs.
func (o *oauthState) newAccessToken() string {
	if o.flavor == DataCenter {
		return "eyJhbGciOiJIUzI1NiJ9." + randomToken(48) + "." + randomToken(32)
	}
	return randomToken(96)
}

// pkceMatches checks a code_verifier against the challenge (RFC 7636).
func pkceMatches(challenge, method, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		verifier = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(verifier), []byte(challenge)) == 1
}

// randomToken returns n random bytes as unpadded base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// OAuthIssued returns every code, access token and refresh token the
// server issued so far, for tests that scan outputs and files for leaks.
func (s *Server) OAuthIssued() []string {
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	return slices.Clone(s.oauth.issued)
}
