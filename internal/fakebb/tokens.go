package fakebb

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Data Center HTTP access tokens. The server answers the access-token REST
// API under {context path}/rest/access-tokens/latest/ (and /1.0/, the same
// API) as Bitbucket Data Center documents it:
//
//   - PUT users/{slug}, projects/{KEY} or projects/{KEY}/repos/{slug}
//     creates a token from {"name","permissions":[...],"expiryDays"}: the
//     answer holds id, name, createdDate and expiryDate (epoch
//     milliseconds), permissions, expiryDays and token (the secret, only
//     this once); GET on the same path lists (paged: start, limit,
//     isLastPage, nextPageStart; never the secret); GET and DELETE
//     .../{id} read and revoke one (DELETE answers 204, 404 for an
//     unknown id);
//   - only a user's password (Basic, from the AddUser table) or a live
//     OAuth access token of a consumer with a User may call it; any
//     token, or a wrong password, gets 401;
//   - a user manages their own personal tokens (users/{their slug}) and
//     those of the projects and repositories listed in User.Admin; others
//     get 401 with ...AuthorisationException and X-AUSERNAME;
//   - PUT takes only Content-Type application/json (else 415);
//   - unknown permissions (repositories take only REPO_*), an empty name
//     or no permissions get 400; Options.MaxTokenExpiryDays, when set, is
//     enforced (a longer expiryDays gets 400; none gets that maximum);
//   - an unknown user, project or repository gets 404.
//
// A created token works for git at once: project and repository tokens as
// Bearer only, personal tokens as Bearer or Basic with the user's name;
// write access with REPO_WRITE, REPO_ADMIN, PROJECT_WRITE or PROJECT_ADMIN
// (and, for personal tokens, User.Write). It stops at once when revoked
// or when its expiry passes (the OAuth clock). It appears in the request
// log and in Token lists as "dc:{id}". Requests appear with Service
// "tokens".

// User is a Data Center account of the token API.
type User struct {
	Name, Password string
	// Admin lists project keys ("PRJ") and repositories ("PRJ/repo")
	// whose tokens the user may manage; "*" is every one.
	Admin []string
	// Write lets the user's personal tokens push.
	Write bool
}

// ServerToken is a token the access-token API created, as tests see it.
type ServerToken struct {
	ID, Name    string
	Owner       string // "users/alice", "projects/PRJ", "projects/PRJ/repos/repo"
	Permissions []string
	Secret      string
	Created     time.Time
	Expiry      time.Time // zero: never
	Revoked     bool
}

// TokenName is the request-log name of a created token.
func (t ServerToken) TokenName() string { return "dc:" + t.ID }

type tokenState struct {
	users   []User
	created []ServerToken
	nextID  int
	lose    int // LoseTokenAnswers: creates whose answer is lost
}

// LoseTokenAnswers makes the next n creates make their token and then
// drop the connection before answering, as a proxy timing out would: the
// client learns nothing of a token that exists.
func (s *Server) LoseTokenAnswers(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users.lose = n
}

// AddUser adds (or replaces, by name) a user of the access-token API.
func (s *Server) AddUser(u User) {
	u.Admin = slices.Clone(u.Admin)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users.users = slices.DeleteFunc(s.users.users, func(o User) bool { return strings.EqualFold(o.Name, u.Name) })
	s.users.users = append(s.users.users, u)
}

// ServerTokens lists the tokens the API created for owner (as created,
// e.g. "projects/PRJ/repos/repo"; compared ignoring case), revoked ones
// included; owner "" lists all.
func (s *Server) ServerTokens(owner string) []ServerToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ServerToken
	for _, t := range s.users.created {
		if owner == "" || strings.EqualFold(t.Owner, owner) {
			t.Revoked = s.revoked[t.TokenName()]
			out = append(out, t)
		}
	}
	return out
}

// LiveServerTokens is ServerTokens without the revoked and expired ones.
func (s *Server) LiveServerTokens(owner string) []ServerToken {
	now := s.oauth.now()
	return slices.DeleteFunc(s.ServerTokens(owner), func(t ServerToken) bool {
		return t.Revoked || (!t.Expiry.IsZero() && !now.Before(t.Expiry))
	})
}

func (s *Server) tokensRest(path string) (string, bool) {
	if s.flavor != DataCenter {
		return "", false
	}
	return s.dcRest(path, "access-tokens")
}

// dcRest cuts a Data Center REST path of api ("api", "access-tokens")
// under its version, "latest" or "1.0" (the same API).
func (s *Server) dcRest(path, api string) (string, bool) {
	for _, v := range []string{"latest", "1.0"} {
		if rest, ok := strings.CutPrefix(path, s.ctxPath+"/rest/"+api+"/"+v+"/"); ok {
			return rest, true
		}
	}
	return "", false
}

// serveTokens answers the access-token API; false for other paths.
func (s *Server) serveTokens(w http.ResponseWriter, r *http.Request, rec *Request) bool {
	rest, ok := s.tokensRest(r.URL.Path)
	if !ok {
		return false
	}
	rec.Service = "tokens"
	user, ok := s.tokenCaller(r, rec)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+DataCenterRealm+`"`)
		s.apiError(w, http.StatusUnauthorized, "Authentication failed. Please check your credentials and try again.", "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException")
		return true
	}
	w.Header().Set("X-AUSERNAME", user.Name)
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	var owner, id string
	var repoToken bool
	switch {
	case len(segs) == 2 && segs[0] == "users", len(segs) == 2 && segs[0] == "projects":
		owner = segs[0] + "/" + segs[1]
	case len(segs) == 3 && (segs[0] == "users" || segs[0] == "projects"):
		owner, id = segs[0]+"/"+segs[1], segs[2]
	case len(segs) == 4 && segs[0] == "projects" && segs[2] == "repos":
		owner, repoToken = strings.Join(segs, "/"), true
	case len(segs) == 5 && segs[0] == "projects" && segs[2] == "repos":
		owner, id, repoToken = strings.Join(segs[:4], "/"), segs[4], true
	default:
		s.apiError(w, http.StatusNotFound, "Resource not found", "")
		return true
	}
	if code, msg, exc := s.tokenOwnerCheck(user, segs); code != 0 {
		s.apiError(w, code, msg, exc)
		return true
	}
	switch {
	case id == "" && r.Method == http.MethodPut:
		s.createToken(w, r, user, owner, segs, repoToken)
	case id == "" && r.Method == http.MethodGet:
		s.listTokens(w, r, owner)
	case id != "" && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
		s.oneToken(w, r.Method, owner, id)
	default:
		s.apiError(w, http.StatusMethodNotAllowed, "Method not allowed", "")
	}
	return true
}

// tokenCaller authenticates a caller of the token API: a user's password,
// or a live OAuth access token of a consumer acting for a user.
func (s *Server) tokenCaller(r *http.Request, rec *Request) (User, bool) {
	name, secret, ok := credentialsOf(r, rec)
	if !ok {
		return User{}, false
	}
	if rec.Auth == "bearer" {
		o := s.oauth
		o.mu.Lock()
		at := o.access[secret]
		var who string
		if at != nil && !at.dead && o.now().Before(at.expires) && o.consumers[at.client] != nil {
			who = o.consumers[at.client].User
			rec.Token = OAuthTokenName(at.client)
		}
		o.mu.Unlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, u := range s.users.users {
			if who != "" && strings.EqualFold(u.Name, who) {
				return u, true
			}
		}
		return User{}, false
	}
	if u, ok := s.userByPassword(name, secret); ok {
		return u, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(t.Secret), []byte(secret)) == 1 {
			rec.Token = t.Name // a token trying to manage tokens: refused
		}
	}
	return User{}, false
}

// tokenOwnerCheck: 401 when user may not manage the owner's tokens, 404
// when the owner does not exist.
func (s *Server) tokenOwnerCheck(u User, segs []string) (int, string, string) {
	admin := func(what string) bool {
		return slices.ContainsFunc(u.Admin, func(a string) bool { return a == "*" || strings.EqualFold(a, what) })
	}
	if segs[0] == "users" {
		// Only users themselves manage their personal tokens (admins
		// may revoke them in the UI, not make them).
		if segs[1] != userSlug(u.Name) {
			return http.StatusUnauthorized, "You are not permitted to access this resource", notPermitted
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !slices.ContainsFunc(s.users.users, func(o User) bool { return userSlug(o.Name) == segs[1] }) {
			return http.StatusNotFound, "User " + segs[1] + " does not exist.", "com.atlassian.bitbucket.user.NoSuchUserException"
		}
		return 0, "", ""
	}
	key := segs[1]
	if len(segs) >= 4 {
		if !admin(key) && !admin(key+"/"+segs[3]) {
			return http.StatusUnauthorized, "You are not permitted to access this resource", notPermitted
		}
		if !slices.Contains(s.repoKeys(), canonical(s.flavor, key+"/"+segs[3])) {
			return http.StatusNotFound, "Repository " + key + "/" + segs[3] + " does not exist.", "com.atlassian.bitbucket.repository.NoSuchRepositoryException"
		}
		return 0, "", ""
	}
	if !admin(key) {
		return http.StatusUnauthorized, "You are not permitted to access this resource", notPermitted
	}
	if !slices.Contains(s.allOwners(), strings.ToLower(key)) {
		return http.StatusNotFound, "Project " + key + " does not exist.", "com.atlassian.bitbucket.project.NoSuchProjectException"
	}
	return 0, "", ""
}

// userSlug is Bitbucket's slug of a user name: lower case, with every
// character other than letters, digits, '.', '-' and '_' replaced by '_'
// (jane@corp.com → jane_corp.com).
func userSlug(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, name)
}

// userByPassword finds the user a Basic name and password authenticate.
func (s *Server) userByPassword(name, password string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users.users {
		if strings.EqualFold(u.Name, name) && subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1 {
			return u, true
		}
	}
	return User{}, false
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, u User, owner string, segs []string, repoToken bool) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.apiError(w, http.StatusUnsupportedMediaType, "Unsupported media type: "+ct, "")
		return
	}
	var body struct {
		Name        string   `json:"name"`
		Permissions []string `json:"permissions"`
		ExpiryDays  *int     `json:"expiryDays"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
		s.apiError(w, http.StatusBadRequest, "The request body could not be read as JSON.", "")
		return
	}
	allowed := []string{"REPO_READ", "REPO_WRITE", "REPO_ADMIN"}
	if !repoToken {
		allowed = append(allowed, "PROJECT_READ", "PROJECT_WRITE", "PROJECT_ADMIN")
	}
	switch {
	case strings.TrimSpace(body.Name) == "":
		s.apiError(w, http.StatusBadRequest, "A name is required.", "")
		return
	case len(body.Permissions) == 0:
		s.apiError(w, http.StatusBadRequest, "At least one permission is required.", "")
		return
	case body.ExpiryDays != nil && *body.ExpiryDays <= 0:
		s.apiError(w, http.StatusBadRequest, "Expiry days must be a positive number.", "")
		return
	case s.maxExpiry > 0 && body.ExpiryDays != nil && *body.ExpiryDays > s.maxExpiry:
		s.apiError(w, http.StatusBadRequest, fmt.Sprintf("Expiry days cannot exceed %d.", s.maxExpiry), "")
		return
	}
	for _, p := range body.Permissions {
		if !slices.Contains(allowed, p) {
			s.apiError(w, http.StatusBadRequest, "Invalid permission: "+p+".", "")
			return
		}
	}
	days := 0
	if body.ExpiryDays != nil {
		days = *body.ExpiryDays
	} else if s.maxExpiry > 0 {
		days = s.maxExpiry
	}
	now := s.oauth.now()
	s.mu.Lock()
	s.users.nextID++
	t := ServerToken{
		ID: strconv.Itoa(100000000000 + s.users.nextID), Name: body.Name, Owner: owner,
		Permissions: slices.Clone(body.Permissions), Secret: "BBDC-" + randomToken(32), Created: now,
	}
	if days > 0 {
		t.Expiry = now.Add(time.Duration(days) * 24 * time.Hour)
	}
	s.users.created = append(s.users.created, t)
	s.mu.Unlock()

	git := Token{Name: t.TokenName(), Secret: t.Secret, Bearer: true, Expires: t.Expiry}
	writes := slices.ContainsFunc(t.Permissions, func(p string) bool {
		return p == "REPO_WRITE" || p == "REPO_ADMIN" || p == "PROJECT_WRITE" || p == "PROJECT_ADMIN"
	})
	switch segs[0] {
	case "users":
		git.Usernames = []string{u.Name}
		git.Write = writes && u.Write
	default:
		git.Prefixes = []string{segs[1]}
		if repoToken {
			git.Prefixes = []string{segs[1] + "/" + segs[3]}
		}
		git.Write = writes
	}
	s.AddToken(git)
	s.mu.Lock()
	lose := s.users.lose > 0
	if lose {
		s.users.lose--
	}
	s.mu.Unlock()
	if lose {
		panic(http.ErrAbortHandler) // the connection drops, unanswered
	}
	out := restTokenJSON(t)
	if days > 0 {
		out["expiryDays"] = days
	}
	out["token"] = t.Secret
	writeJSON(w, http.StatusOK, out)
}

func restTokenJSON(t ServerToken) map[string]any {
	m := map[string]any{
		"id": t.ID, "name": t.Name, "permissions": t.Permissions,
		"createdDate": t.Created.UnixMilli(),
	}
	if !t.Expiry.IsZero() {
		m["expiryDate"] = t.Expiry.UnixMilli()
	}
	return m
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, owner string) {
	var values []any
	for _, t := range s.ServerTokens(owner) {
		if t.Revoked {
			continue // expired ones are listed, as Bitbucket lists them
		}
		values = append(values, restTokenJSON(t))
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("start"))
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 25 {
		limit = 25 // Bitbucket's default page, also when more is asked
	}
	start = max(0, min(start, len(values)))
	end := min(len(values), start+limit)
	page := map[string]any{"size": end - start, "limit": limit, "start": start, "isLastPage": end == len(values), "values": append([]any{}, values[start:end]...)}
	if end < len(values) {
		page["nextPageStart"] = end
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) oneToken(w http.ResponseWriter, method, owner, id string) {
	for _, t := range s.ServerTokens(owner) {
		if t.ID != id || t.Revoked {
			continue
		}
		if method == http.MethodGet {
			writeJSON(w, http.StatusOK, restTokenJSON(t))
			return
		}
		s.Revoke(t.TokenName())
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.apiError(w, http.StatusNotFound, "No token with ID "+id+" exists.", "com.atlassian.bitbucket.auth.NoSuchAccessTokenException")
}
