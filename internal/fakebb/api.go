package fakebb

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The REST API. Next to git, the server answers the parts of the
// Bitbucket REST API that `verify` uses, on the same TLS listener:
//
//   - Cloud, under /2.0/ (the test's stand-in for https://api.bitbucket.org):
//     GET repositories/{ws}/{repo}, repositories/{ws} (a page of the
//     workspace's repositories) and user/workspaces;
//   - Data Center, under {context path}/rest/api/1.0/: GET
//     projects/{KEY}/repos/{slug}, projects/{KEY}, projects,
//     users/{user}/repos/{slug}, users/{user} and application-properties.
//
// Authentication follows each token's APIToken (SetAPIToken), else the git
// rules of its Token. Answers, as Bitbucket gives them:
//
//   - unknown, revoked or wrongly presented credentials: 401 with the
//     flavor's WWW-Authenticate realm and JSON error body;
//   - Cloud: a token whose APIToken.Scopes lack repository read access gets
//     403 "Your credentials lack one or more required privilege scopes."
//     with x-accepted-oauth-scopes; user/workspaces needs
//     read:workspace:bitbucket (API tokens) and refuses access tokens (403);
//     responses carry x-credential-type and x-oauth-scopes;
//   - Data Center: a repository or project outside the token's Prefixes
//     gets 401 with exceptionName ...AuthorisationException (Bitbucket's
//     "You are not permitted to access this resource"); responses carry
//     X-AUSERNAME when APIToken.Account is set;
//   - unknown repository, workspace or project: 404;
//   - APIToken.Gone: 410 (an app password after its removal);
//   - RateLimit(n, retryAfter): the next n API requests get 429 with that
//     Retry-After;
//   - RedirectAPI(location): every API request gets 302 to location plus
//     its path.
//
// API requests appear in the request log with Service "api".

// APIToken says how the REST API treats a Token (matched by Name).
type APIToken struct {
	// Bearer allows "Authorization: Bearer <secret>" (Cloud access tokens,
	// Data Center HTTP access tokens).
	Bearer bool `json:"bearer"`
	// Usernames are the Basic usernames accepted with the secret: for a
	// Cloud API token the Atlassian e-mail (git's usernames do not work
	// here); for a Data Center personal token the username.
	Usernames []string `json:"usernames"`
	// CredentialType is sent as x-credential-type (Cloud), e.g.
	// "repo_access_token" or "api_token"; "" sends none.
	CredentialType string `json:"credential_type"`
	// Scopes are sent as x-oauth-scopes (Cloud) and enforced; nil sends no
	// header and lets every endpoint through.
	Scopes []string `json:"scopes"`
	// Account is sent as X-AUSERNAME (Data Center).
	Account string `json:"account"`
	// Gone answers 410.
	Gone bool `json:"gone"`
}

// apiState is the REST API's configuration.
type apiState struct {
	slow       atomic.Int64 // SlowAPI's delay, in nanoseconds
	mu         sync.Mutex
	tokens     map[string]APIToken
	limited    int
	retryAfter string
	redirect   string
}

// SetAPIToken sets how the REST API treats the token with this Name.
func (s *Server) SetAPIToken(name string, a APIToken) {
	a.Usernames = slices.Clone(a.Usernames)
	a.Scopes = slices.Clone(a.Scopes)
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	if s.api.tokens == nil {
		s.api.tokens = map[string]APIToken{}
	}
	s.api.tokens[name] = a
}

// SlowAPI delays every REST API request (not the access-token API) by d
// before it is answered (0 stops it).
func (s *Server) SlowAPI(d time.Duration) { s.api.slow.Store(int64(d)) }

// RateLimit makes the next n API requests answer 429, with the header
// Retry-After: retryAfter unless it is "".
func (s *Server) RateLimit(n int, retryAfter string) {
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	s.api.limited, s.api.retryAfter = n, retryAfter
}

// RedirectAPI makes every API request answer 302 to location followed by
// the request's path ("" stops it).
func (s *Server) RedirectAPI(location string) {
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	s.api.redirect = strings.TrimRight(location, "/")
}

// APIURL is the base URL of the REST API: for Cloud the server's root
// (standing in for https://api.bitbucket.org), for Data Center the
// instance URL with its context path (as URL).
func (s *Server) APIURL() string {
	if s.flavor == Cloud {
		return s.srv.URL
	}
	return s.URL
}

// APIRequests returns the log entries of REST API requests.
func (s *Server) APIRequests() []Request {
	return slices.DeleteFunc(s.Requests(), func(r Request) bool { return r.Service != "api" })
}

func (s *Server) apiRest(path string) (string, bool) {
	if s.flavor == Cloud {
		return strings.CutPrefix(path, "/2.0/")
	}
	return s.dcRest(path, "api")
}

// serveAPI answers REST API requests; it reports false for other paths.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, rec *Request) bool {
	rest, ok := s.apiRest(r.URL.Path)
	if !ok {
		return false
	}
	rec.Service = "api"
	if d := time.Duration(s.api.slow.Load()); d > 0 {
		time.Sleep(d)
	}
	s.api.mu.Lock()
	redirect := s.api.redirect
	limited := s.api.limited > 0
	retryAfter := s.api.retryAfter
	if limited {
		s.api.limited--
	}
	s.api.mu.Unlock()

	if redirect != "" {
		http.Redirect(w, r, redirect+r.URL.Path, http.StatusFound)
		return true
	}
	if r.Method != http.MethodGet {
		s.apiError(w, http.StatusMethodNotAllowed, "Method not allowed", "")
		return true
	}
	if limited {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		s.apiError(w, http.StatusTooManyRequests, "Rate limit for this resource has been exceeded", "")
		return true
	}
	tok, meta, ok := s.apiAuthenticate(r, rec)
	if !ok {
		realm := CloudRealm
		if s.flavor == DataCenter {
			realm = DataCenterRealm
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		if s.echo {
			presented := r.Header.Get("Authorization")
			_, secret, _ := strings.Cut(presented, " ")
			s.apiError(w, http.StatusUnauthorized, "credentials "+presented+" (token "+url.QueryEscape(secret)+") are unknown", "")
			return true
		}
		if s.flavor == Cloud {
			s.apiError(w, http.StatusUnauthorized, "Token is invalid, expired, or not supported for this endpoint.", "")
		} else {
			s.apiError(w, http.StatusUnauthorized, "Authentication failed. Please check your credentials and try again.", "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException")
		}
		return true
	}
	if s.flavor == Cloud {
		if meta.CredentialType != "" {
			w.Header().Set("X-Credential-Type", meta.CredentialType)
		}
		if meta.Scopes != nil {
			w.Header().Set("X-OAuth-Scopes", strings.Join(meta.Scopes, ", "))
		}
	} else if meta.Account != "" {
		w.Header().Set("X-AUSERNAME", meta.Account)
	}
	if meta.Gone {
		s.apiError(w, http.StatusGone, "This credential is no longer supported.", "")
		return true
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	if s.flavor == Cloud {
		s.cloudAPI(w, r, segs, tok, meta)
	} else {
		s.dataCenterAPI(w, r, segs, tok)
	}
	return true
}

// apiAuthenticate identifies the token by the API's rules, filling rec.
func (s *Server) apiAuthenticate(r *http.Request, rec *Request) (Token, APIToken, bool) {
	username, secret, ok := credentialsOf(r, rec)
	if !ok {
		return Token{}, APIToken{}, false
	}
	s.mu.Lock()
	var tok *Token
	for i := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(s.tokens[i].Secret), []byte(secret)) == 1 {
			t := s.tokens[i]
			tok = &t
			break
		}
	}
	revoked := tok != nil && (s.revoked[tok.Name] || s.expired(*tok))
	s.mu.Unlock()
	if tok == nil {
		// A user's password (Basic), as Bitbucket takes it on its REST API.
		if u, ok := s.userByPassword(username, secret); ok && rec.Auth == "basic" {
			return Token{Name: "user:" + u.Name}, APIToken{Usernames: []string{username}, Account: u.Name}, true
		}
		return Token{}, APIToken{}, false
	}
	rec.Token = tok.Name
	s.api.mu.Lock()
	meta, ok := s.api.tokens[tok.Name]
	s.api.mu.Unlock()
	if !ok {
		meta = APIToken{Bearer: tok.Bearer, Usernames: tok.Usernames}
	}
	if revoked {
		return *tok, meta, false
	}
	if rec.Auth == "bearer" {
		return *tok, meta, meta.Bearer
	}
	return *tok, meta, slices.Contains(meta.Usernames, username)
}

// Scopes that read repositories: access tokens and API tokens.
var cloudReadScopes = []string{"repository", "repository:write", "pullrequest", "pullrequest:write", "read:repository:bitbucket"}

func (s *Server) cloudAPI(w http.ResponseWriter, r *http.Request, segs []string, tok Token, meta APIToken) {
	isAPIToken := meta.CredentialType == "api_token"
	needRead := func() bool {
		if meta.Scopes == nil || slices.ContainsFunc(meta.Scopes, func(sc string) bool { return slices.Contains(cloudReadScopes, sc) }) {
			return true
		}
		required := "repository"
		if isAPIToken {
			required = "read:repository:bitbucket"
		}
		s.scopeError(w, required, meta.Scopes)
		return false
	}
	switch {
	case len(segs) == 2 && segs[0] == "user" && segs[1] == "workspaces":
		if strings.HasSuffix(meta.CredentialType, "access_token") {
			s.apiError(w, http.StatusForbidden, "This API is not accessible by this authentication mechanism", "")
			return
		}
		if meta.Scopes != nil && !slices.Contains(meta.Scopes, "read:workspace:bitbucket") {
			s.scopeError(w, "read:workspace:bitbucket", meta.Scopes)
			return
		}
		var values []any
		for _, ws := range s.owners(tok) {
			values = append(values, map[string]any{"type": "workspace_access", "workspace": map[string]string{"slug": ws}})
		}
		writeJSON(w, http.StatusOK, page(values, r.URL.Query().Get("pagelen")))
	case len(segs) == 2 && segs[0] == "repositories":
		if !needRead() {
			return
		}
		ws := strings.ToLower(segs[1])
		if len(tok.Prefixes) > 0 && !slices.ContainsFunc(tok.Prefixes, func(p string) bool {
			first, _, _ := strings.Cut(strings.Trim(p, "/"), "/")
			return strings.EqualFold(first, ws)
		}) {
			s.apiError(w, http.StatusForbidden, "Access denied. You must have access to this workspace.", "")
			return
		}
		if !slices.Contains(s.allOwners(), ws) {
			s.apiError(w, http.StatusNotFound, "No workspace with identifier '"+segs[1]+"'.", "")
			return
		}
		var values []any
		for _, key := range s.repoKeys() {
			if strings.HasPrefix(key, ws+"/") && tokenCovers(s.flavor, tok, key) {
				values = append(values, map[string]any{"type": "repository", "full_name": key})
			}
		}
		writeJSON(w, http.StatusOK, page(values, r.URL.Query().Get("pagelen")))
	case len(segs) == 3 && segs[0] == "repositories":
		if !needRead() {
			return
		}
		key := canonical(s.flavor, segs[1]+"/"+segs[2])
		if !tokenCovers(s.flavor, tok, key) {
			s.apiError(w, http.StatusForbidden, "Access denied. You must have read access to this repository.", "")
			return
		}
		if !slices.Contains(s.repoKeys(), key) {
			s.apiError(w, http.StatusNotFound, "Repository "+segs[1]+"/"+segs[2]+" not found", "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"type": "repository", "full_name": key, "slug": strings.ToLower(segs[2]), "is_private": true})
	default:
		s.apiError(w, http.StatusNotFound, "Resource not found", "")
	}
}

func (s *Server) scopeError(w http.ResponseWriter, required string, granted []string) {
	w.Header().Set("X-Accepted-OAuth-Scopes", required)
	writeJSON(w, http.StatusForbidden, map[string]any{
		"type": "error",
		"error": map[string]any{
			"message": ScopeErrorBody,
			"detail":  map[string]any{"required": []string{required}, "granted": granted},
		},
	})
}

const notPermitted = "com.atlassian.bitbucket.AuthorisationException"

func (s *Server) dataCenterAPI(w http.ResponseWriter, r *http.Request, segs []string, tok Token) {
	// owner is a project key or ~user, as in repository keys.
	ownerOK := func(owner string) bool {
		owner = strings.ToLower(owner)
		if len(tok.Prefixes) > 0 && !slices.ContainsFunc(tok.Prefixes, func(p string) bool {
			first, _, _ := strings.Cut(strings.Trim(p, "/"), "/")
			return strings.EqualFold(first, owner)
		}) {
			s.apiError(w, http.StatusUnauthorized, "You are not permitted to access this resource", notPermitted)
			return false
		}
		if !slices.Contains(s.allOwners(), owner) {
			s.apiError(w, http.StatusNotFound, "Project "+owner+" does not exist.", "com.atlassian.bitbucket.project.NoSuchProjectException")
			return false
		}
		return true
	}
	repo := func(owner, slug string) {
		key := canonical(s.flavor, owner+"/"+slug)
		if !tokenCovers(s.flavor, tok, key) {
			s.apiError(w, http.StatusUnauthorized, "You are not permitted to access this resource", notPermitted)
			return
		}
		if !slices.Contains(s.repoKeys(), key) {
			s.apiError(w, http.StatusNotFound, "Repository "+owner+"/"+slug+" does not exist.", "com.atlassian.bitbucket.repository.NoSuchRepositoryException")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"slug": slug, "name": slug, "project": map[string]string{"key": owner}})
	}
	switch {
	case len(segs) == 1 && segs[0] == "application-properties":
		writeJSON(w, http.StatusOK, map[string]string{"version": "8.19.0", "displayName": "Bitbucket"})
	case len(segs) == 1 && segs[0] == "users":
		// GET users?filter=TEXT: the users whose name contains TEXT.
		filter := strings.ToLower(r.URL.Query().Get("filter"))
		var values []any
		s.mu.Lock()
		for _, u := range s.users.users {
			if strings.Contains(strings.ToLower(u.Name), filter) {
				values = append(values, map[string]string{"name": u.Name, "slug": userSlug(u.Name), "displayName": u.Name})
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, dcPage(values))
	case len(segs) == 1 && segs[0] == "projects":
		var values []any
		for _, o := range s.owners(tok) {
			if !strings.HasPrefix(o, "~") {
				values = append(values, map[string]string{"key": strings.ToUpper(o)})
			}
		}
		writeJSON(w, http.StatusOK, dcPage(values))
	case len(segs) == 2 && segs[0] == "projects":
		if ownerOK(segs[1]) {
			writeJSON(w, http.StatusOK, map[string]string{"key": segs[1]})
		}
	case len(segs) == 4 && segs[0] == "projects" && segs[2] == "repos":
		repo(segs[1], segs[3])
	case len(segs) == 2 && segs[0] == "users":
		if ownerOK("~" + segs[1]) {
			writeJSON(w, http.StatusOK, map[string]string{"name": segs[1], "slug": segs[1]})
		}
	case len(segs) == 4 && segs[0] == "users" && segs[2] == "repos":
		repo("~"+segs[1], segs[3])
	default:
		s.apiError(w, http.StatusNotFound, "Resource not found", "")
	}
}

// repoKeys lists the canonical keys of the repositories.
func (s *Server) repoKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.repos))
	for k, rel := range s.repos {
		if rel != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// allOwners lists workspaces (Cloud) or project keys and ~users (Data
// Center, lower case) that hold a repository.
func (s *Server) allOwners() []string {
	var out []string
	for _, k := range s.repoKeys() {
		o, _, _ := strings.Cut(k, "/")
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// owners lists the owners holding a repository the token covers.
func (s *Server) owners(tok Token) []string {
	var out []string
	for _, k := range s.repoKeys() {
		o, _, _ := strings.Cut(k, "/")
		if tokenCovers(s.flavor, tok, k) && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

func tokenCovers(f Flavor, tok Token, key string) bool {
	return len(tok.Prefixes) == 0 || slices.ContainsFunc(tok.Prefixes, func(p string) bool { return covers(f, p, key) })
}

func page(values []any, pagelen string) map[string]any {
	if values == nil {
		values = []any{}
	}
	n := len(values)
	if pagelen == "1" && n > 1 {
		values = values[:1]
	}
	return map[string]any{"pagelen": len(values), "size": n, "page": 1, "values": values}
}

func dcPage(values []any) map[string]any {
	if values == nil {
		values = []any{}
	}
	return map[string]any{"size": len(values), "limit": 25, "isLastPage": true, "start": 0, "values": values}
}

// apiError writes the flavor's error body: Cloud's
// {"type":"error","error":{"message":...}} or Data Center's
// {"errors":[{"message":...,"exceptionName":...}]}.
func (s *Server) apiError(w http.ResponseWriter, code int, message, exception string) {
	if s.flavor == Cloud {
		writeJSON(w, code, map[string]any{"type": "error", "error": map[string]string{"message": message}})
		return
	}
	e := map[string]any{"context": nil, "message": message}
	if exception != "" {
		e["exceptionName"] = exception
	}
	writeJSON(w, code, map[string]any{"errors": []any{e}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
