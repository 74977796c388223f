// Package fakebb runs a real git smart-HTTP server (git's own
// "git http-backend" behind a loopback TLS listener) that authenticates git
// requests the way Bitbucket Cloud or Bitbucket Data Center does. It exists
// for end-to-end tests of the credential helper: the git client under test
// talks to it exactly as it would talk to Bitbucket.
//
// Authentication rules (see Token):
//   - every git request (info/refs, git-upload-pack, git-receive-pack) needs
//     credentials: "Authorization: Basic" with an accepted username, or
//     "Authorization: Bearer" where the token allows it; OAuth access
//     tokens are accepted as oauth.go describes;
//   - missing, unknown, revoked, wrongly presented or out-of-scope
//     credentials get 401 with the flavor's WWW-Authenticate realm;
//   - a valid token without Write gets 403 on a push;
//   - an unknown repository (for a token that would cover it) gets 404.
//
// Secrets are never logged, printed, or handed to the CGI process.
package fakebb

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Flavor selects which Bitbucket product the server imitates.
type Flavor string

// The supported flavors.
const (
	Cloud      Flavor = "cloud"
	DataCenter Flavor = "datacenter"
)

// Realms sent in WWW-Authenticate on 401 responses.
const (
	CloudRealm      = "Bitbucket.org HTTP"
	DataCenterRealm = "Atlassian Bitbucket"
)

// ScopeErrorBody is the body of a 403 response to a push with a token that
// lacks write access.
const ScopeErrorBody = "Your credentials lack one or more required privilege scopes."

// Token is a credential the server accepts.
type Token struct {
	// Name labels the token in the request log (never the secret).
	Name string `json:"name"`
	// Secret is the token value.
	Secret string `json:"secret"`
	// Usernames are the Basic usernames accepted with this secret; empty
	// means Basic authentication is not accepted for this token.
	Usernames []string `json:"usernames"`
	// Bearer allows "Authorization: Bearer <secret>".
	Bearer bool `json:"bearer"`
	// Prefixes are the repository path prefixes the token covers, matched on
	// '/' boundaries ("ws" covers "ws/repo", "ws/repo" does not cover
	// "ws/repo2"); case-insensitively for Cloud, with only the project key
	// (or ~user) case-insensitive for Data Center. Empty means every
	// repository on the server.
	Prefixes []string `json:"prefixes"`
	// Write allows pushing.
	Write bool `json:"write"`
	// Expires, when set, ends the token then (on the OAuth clock).
	Expires time.Time `json:"expires,omitzero"`
}

// Options configure a Server.
type Options struct {
	// Flavor is Cloud (the default when empty) or DataCenter.
	Flavor Flavor
	// ContextPath is the Data Center context path, e.g. "bitbucket"
	// (ignored for Cloud).
	ContextPath string
	// EchoCredentials makes the REST API's 401 answers quote the
	// credentials presented, as a careless proxy's might: what the helper
	// prints of such an answer must still not show them.
	EchoCredentials bool
	// OAuth configures the OAuth 2.0 endpoints (oauth.go).
	OAuth OAuthOptions
	// MaxTokenExpiryDays is the expiry admins enforce on tokens the
	// access-token API creates (tokens.go); 0: none.
	MaxTokenExpiryDays int
}

// Request is one entry of the request log.
type Request struct {
	Method string
	Path   string // URL path, without the query
	// Service is "git-upload-pack" or "git-receive-pack" when known, from
	// the info/refs query or the POST path.
	Service string
	// Username is the Basic username presented, if any.
	Username string
	// Auth is "none", "basic" or "bearer" (what the client presented).
	Auth string
	// Token is the Name of the token whose secret was presented, whether or
	// not it was accepted; "" when no credentials or an unknown secret.
	Token  string
	Status int
}

// Server is a running fake Bitbucket git server.
type Server struct {
	// URL is the base URL: https://127.0.0.1:PORT, plus "/"+ContextPath for
	// Data Center with a context path. No trailing slash.
	URL string
	// CAFile is a PEM file holding the server certificate, usable as
	// GIT_SSL_CAINFO.
	CAFile string

	flavor   Flavor
	ctxPath  string // "" or "/bitbucket"
	echo     bool   // Options.EchoCredentials
	reposDir string
	gitEnv   []string // environment for git commands run by the server
	backend  *cgi.Handler
	srv      *httptest.Server
	certPool *x509.CertPool
	reqID    atomic.Uint64

	slowGit atomic.Int64 // SlowGit's delay, in nanoseconds

	mu      sync.Mutex
	repos   map[string]string // canonical repository key -> on-disk path relative to reposDir (without ".git")
	tokens  []Token
	revoked map[string]bool
	log     []Request

	users     tokenState // the access-token API (tokens.go)
	maxExpiry int        // Options.MaxTokenExpiryDays

	api   apiState    // the REST API (api.go)
	oauth *oauthState // OAuth 2.0 (oauth.go)
}

// Start starts a server. dir is a directory the server may use freely
// (repositories, the CA file, a HOME for server-side git); it is not removed
// by Close.
func Start(dir string, opts Options) (*Server, error) {
	flavor := opts.Flavor
	if flavor == "" {
		flavor = Cloud
	}
	if flavor != Cloud && flavor != DataCenter {
		return nil, fmt.Errorf("fakebb: unknown flavor %q", flavor)
	}
	ctxPath := ""
	if flavor == DataCenter {
		if c := strings.Trim(opts.ContextPath, "/"); c != "" {
			ctxPath = "/" + c
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("fakebb: git --exec-path: %w", err)
	}
	backendPath := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backendPath); err != nil {
		return nil, fmt.Errorf("fakebb: git http-backend not found: %w", err)
	}

	s := &Server{
		flavor:    flavor,
		ctxPath:   ctxPath,
		echo:      opts.EchoCredentials,
		reposDir:  filepath.Join(dir, "repos"),
		repos:     map[string]string{},
		revoked:   map[string]bool{},
		oauth:     newOAuthState(flavor, opts.OAuth),
		maxExpiry: opts.MaxTokenExpiryDays,
	}
	home := filepath.Join(dir, "home")
	for _, d := range []string{s.reposDir, home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	s.gitEnv = gitEnv(home)
	s.backend = &cgi.Handler{
		Path: backendPath,
		Dir:  s.reposDir,
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.reposDir,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + home,
		},
		Stderr: io.Discard,
	}

	certPEM, cert, err := selfSignedCert()
	if err != nil {
		return nil, err
	}
	s.CAFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(s.CAFile, certPEM, 0o600); err != nil {
		return nil, err
	}
	s.certPool = x509.NewCertPool()
	s.certPool.AppendCertsFromPEM(certPEM)

	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	s.URL = s.srv.URL + ctxPath
	return s, nil
}

// Close shuts the server down, waiting for requests in flight.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client that trusts the server certificate.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.certPool, MinVersion: tls.VersionTLS12},
	}}
}

// AddToken adds a token, replacing (and un-revoking) any token with the
// same Name.
func (s *Server) AddToken(t Token) {
	t.Usernames = slices.Clone(t.Usernames)
	t.Prefixes = slices.Clone(t.Prefixes)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.revoked, t.Name)
	for i := range s.tokens {
		if s.tokens[i].Name == t.Name {
			s.tokens[i] = t
			return
		}
	}
	s.tokens = append(s.tokens, t)
}

// SlowGit delays every git request by d before its credentials are
// checked, as a busy server does: a client then holds the credentials it
// was given that much longer before they count (0 stops it).
func (s *Server) SlowGit(d time.Duration) { s.slowGit.Store(int64(d)) }

// Revoke makes the named token fail with 401 everywhere.
func (s *Server) Revoke(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[name] = true
}

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// ResetLog empties the request log.
func (s *Server) ResetLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

var segmentRE = regexp.MustCompile(`^~?[A-Za-z0-9][A-Za-z0-9._-]*$`)

// splitRepoPath validates "a/b" (optionally ending in ".git") and returns the
// two segments.
func (s *Server) splitRepoPath(repoPath string) (owner, slug string, err error) {
	p := strings.TrimSuffix(strings.Trim(repoPath, "/"), ".git")
	owner, slug, ok := strings.Cut(p, "/")
	if !ok || strings.Contains(slug, "/") || !segmentRE.MatchString(owner) || !segmentRE.MatchString(slug) ||
		strings.HasPrefix(slug, "~") || strings.Contains(p, "..") {
		if s.flavor == Cloud {
			return "", "", fmt.Errorf("fakebb: bad repository path %q (want workspace/repo)", repoPath)
		}
		return "", "", fmt.Errorf("fakebb: bad repository path %q (want PROJ/repo or ~user/repo)", repoPath)
	}
	if s.flavor == Cloud && strings.HasPrefix(owner, "~") {
		return "", "", fmt.Errorf("fakebb: bad Cloud workspace %q", owner)
	}
	return owner, slug, nil
}

// canonical returns the repository key used for lookups and prefix checks:
// all lower case for Cloud; lower-case project key (or ~user) for Data Center.
func canonical(flavor Flavor, p string) string {
	p = strings.Trim(p, "/")
	if flavor == Cloud {
		return strings.ToLower(p)
	}
	first, rest, found := strings.Cut(p, "/")
	if !found {
		return strings.ToLower(first)
	}
	return strings.ToLower(first) + "/" + rest
}

// covers reports whether prefix covers the repository with canonical key repo.
func covers(flavor Flavor, prefix, repo string) bool {
	prefix = canonical(flavor, strings.TrimSuffix(strings.Trim(prefix, "/"), ".git"))
	if prefix == "" {
		return false
	}
	return repo == prefix || strings.HasPrefix(repo, prefix+"/")
}

// CreateRepo creates a bare repository ("ws/repo" for Cloud; "PROJ/repo" or
// "~user/repo" for Data Center) holding one commit on main, with pushes over
// HTTP enabled, and returns its https clone URL.
func (s *Server) CreateRepo(repoPath string) (string, error) {
	owner, slug, err := s.splitRepoPath(repoPath)
	if err != nil {
		return "", err
	}
	rel := owner + "/" + slug
	key := canonical(s.flavor, rel)
	s.mu.Lock()
	if _, dup := s.repos[key]; dup {
		s.mu.Unlock()
		return "", fmt.Errorf("fakebb: repository %q already exists", repoPath)
	}
	s.repos[key] = "" // reserve; filled in when ready
	s.mu.Unlock()

	bare := filepath.Join(s.reposDir, filepath.FromSlash(rel)+".git")
	if err := s.initRepo(bare, rel); err != nil {
		s.mu.Lock()
		delete(s.repos, key)
		s.mu.Unlock()
		return "", err
	}
	s.mu.Lock()
	s.repos[key] = rel
	s.mu.Unlock()
	return s.cloneURL(rel), nil
}

func (s *Server) cloneURL(rel string) string {
	if s.flavor == Cloud {
		return s.URL + "/" + rel + ".git"
	}
	return s.URL + "/scm/" + rel + ".git"
}

// RepoDir returns the on-disk path of the bare repository for repoPath
// (matched like a request path), for inspecting pushes.
func (s *Server) RepoDir(repoPath string) (string, error) {
	key := canonical(s.flavor, strings.TrimSuffix(strings.Trim(repoPath, "/"), ".git"))
	s.mu.Lock()
	rel := s.repos[key]
	s.mu.Unlock()
	if rel == "" {
		return "", fmt.Errorf("fakebb: no repository %q", repoPath)
	}
	return filepath.Join(s.reposDir, filepath.FromSlash(rel)+".git"), nil
}

func (s *Server) git(dir string, stdin string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = s.gitEnv
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("fakebb: git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func (s *Server) initRepo(bare, rel string) error {
	if err := os.MkdirAll(filepath.Dir(bare), 0o700); err != nil {
		return err
	}
	if _, err := s.git(s.reposDir, "", "init", "--quiet", "--bare", "--initial-branch=main", bare); err != nil {
		return err
	}
	if _, err := s.git(bare, "", "config", "http.receivepack", "true"); err != nil {
		return err
	}
	blob, err := s.git(bare, "# "+rel+"\n", "hash-object", "-w", "--stdin")
	if err != nil {
		return err
	}
	tree, err := s.git(bare, "100644 blob "+blob+"\tREADME.md\n", "mktree")
	if err != nil {
		return err
	}
	commit, err := s.git(bare, "", "commit-tree", tree, "-m", "Initial commit")
	if err != nil {
		return err
	}
	_, err = s.git(bare, "", "update-ref", "refs/heads/main", commit)
	return err
}

// gitEnv is a clean environment for server-side git commands.
func gitEnv(home string) []string {
	env := []string{
		"HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Fake Bitbucket",
		"GIT_AUTHOR_EMAIL=fakebb@example.invalid",
		"GIT_AUTHOR_DATE=2024-01-01T00:00:00Z",
		"GIT_COMMITTER_NAME=Fake Bitbucket",
		"GIT_COMMITTER_EMAIL=fakebb@example.invalid",
		"GIT_COMMITTER_DATE=2024-01-01T00:00:00Z",
		"LC_ALL=C",
	}
	if p, ok := os.LookupEnv("PATH"); ok {
		env = append(env, "PATH="+p)
	}
	return env
}

// gitRequest is a parsed smart-HTTP request path.
type gitRequest struct {
	key     string // canonical repository key
	rest    string // "info/refs", "git-upload-pack" or "git-receive-pack"
	service string
}

var gitEndpoints = []string{"/info/refs", "/git-upload-pack", "/git-receive-pack"}

// parsePath maps a URL path onto a repository; ok is false for paths that
// are not git smart-HTTP endpoints of this flavor.
func (s *Server) parsePath(urlPath, rawQuery string, method string) (gitRequest, bool) {
	p := urlPath
	if s.flavor == DataCenter {
		var ok bool
		if p, ok = strings.CutPrefix(p, s.ctxPath+"/scm/"); !ok {
			return gitRequest{}, false
		}
	} else {
		p = strings.TrimPrefix(p, "/")
	}
	var g gitRequest
	for _, e := range gitEndpoints {
		if repo, ok := strings.CutSuffix(p, e); ok {
			g.rest = e[1:]
			p = repo
			break
		}
	}
	if g.rest == "" {
		return gitRequest{}, false
	}
	p = strings.TrimSuffix(p, ".git")
	owner, slug, ok := strings.Cut(p, "/")
	if !ok || owner == "" || slug == "" || strings.Contains(slug, "/") {
		return gitRequest{}, false
	}
	g.key = canonical(s.flavor, p)
	if g.rest == "info/refs" {
		if q := queryService(rawQuery); q != "" {
			g.service = q
		}
	} else {
		g.service = g.rest
		if method != http.MethodPost {
			return gitRequest{}, false
		}
	}
	return g, true
}

func queryService(rawQuery string) string {
	for _, kv := range strings.Split(rawQuery, "&") {
		if v, ok := strings.CutPrefix(kv, "service="); ok {
			return v
		}
	}
	return ""
}

// statusWriter records the response status.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &statusWriter{ResponseWriter: rw}
	rec := Request{Method: r.Method, Path: r.URL.Path, Auth: "none"}
	defer func() {
		rec.Status = w.status
		if rec.Status == 0 {
			rec.Status = http.StatusOK
		}
		s.mu.Lock()
		s.log = append(s.log, rec)
		s.mu.Unlock()
	}()
	if s.flavor == DataCenter {
		w.Header().Set("X-AREQUESTID", fmt.Sprintf("@FAKEBBx%dx%d", time.Now().Unix()%1440, s.reqID.Add(1)))
	}

	if s.serveOAuth(w, r, &rec) || s.serveTokens(w, r, &rec) || s.serveAPI(w, r, &rec) {
		return
	}
	g, isGit := s.parsePath(r.URL.Path, r.URL.RawQuery, r.Method)
	rec.Service = g.service
	if !isGit {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}

	if d := time.Duration(s.slowGit.Load()); d > 0 {
		time.Sleep(d)
	}
	tok, rejected := s.authenticate(r, &rec)
	if tok == nil || rejected {
		s.unauthorized(w)
		return
	}

	s.mu.Lock()
	rel, exists := s.repos[g.key]
	s.mu.Unlock()

	if len(tok.Prefixes) > 0 && !slices.ContainsFunc(tok.Prefixes, func(p string) bool { return covers(s.flavor, p, g.key) }) {
		s.unauthorized(w)
		return
	}
	if !exists || rel == "" {
		http.Error(w, "Repository not found", http.StatusNotFound)
		return
	}
	if g.service == "git-receive-pack" && !tok.Write {
		http.Error(w, ScopeErrorBody, http.StatusForbidden)
		return
	}
	if g.service != "" && g.service != "git-upload-pack" && g.service != "git-receive-pack" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}

	r2 := r.Clone(r.Context())
	r2.Header.Del("Authorization")
	r2.URL.Path = "/" + rel + ".git/" + g.rest
	r2.URL.RawPath = ""
	if len(r2.TransferEncoding) > 0 && r2.TransferEncoding[0] == "chunked" {
		// net/http/cgi refuses chunked bodies; buffer the body instead.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "bad request body", http.StatusBadRequest)
			return
		}
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.ContentLength = int64(len(body))
		r2.TransferEncoding = nil
	}
	s.backend.ServeHTTP(w, r2)
}

// credentialsOf reads the Authorization header (Basic or Bearer), filling
// rec's Auth and Username; ok is false when it carries no usable secret.
func credentialsOf(r *http.Request, rec *Request) (username, secret string, ok bool) {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case h == "":
		return "", "", false
	case strings.EqualFold(scheme, "Basic"):
		rec.Auth = "basic"
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return "", "", false
		}
		if username, secret, ok = strings.Cut(string(raw), ":"); !ok {
			return "", "", false
		}
		rec.Username = username
	case strings.EqualFold(scheme, "Bearer"):
		rec.Auth = "bearer"
		secret = cred
	default:
		rec.Auth = strings.ToLower(scheme)
		return "", "", false
	}
	return username, secret, secret != ""
}

// authenticate identifies the presented token. It returns the token (a
// copy) and whether it must be rejected; it fills rec's Auth, Username and
// Token.
func (s *Server) authenticate(r *http.Request, rec *Request) (*Token, bool) {
	username, secret, ok := credentialsOf(r, rec)
	if !ok {
		return nil, true
	}
	if t, rejected, found := s.oauthAuthenticate(username, secret, rec); found {
		return t, rejected
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.tokens {
		t := s.tokens[i]
		if subtle.ConstantTimeCompare([]byte(t.Secret), []byte(secret)) != 1 {
			continue
		}
		rec.Token = t.Name
		if s.revoked[t.Name] || s.expired(t) {
			return &t, true
		}
		if rec.Auth == "bearer" {
			return &t, !t.Bearer
		}
		return &t, !slices.Contains(t.Usernames, username)
	}
	return nil, true
}

// expired reports whether t's expiry has passed.
func (s *Server) expired(t Token) bool {
	return !t.Expires.IsZero() && !s.oauth.now().Before(t.Expires)
}

func (s *Server) unauthorized(w http.ResponseWriter) {
	realm := CloudRealm
	if s.flavor == DataCenter {
		realm = DataCenterRealm
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
}

// selfSignedCert makes a self-signed certificate for 127.0.0.1, ::1 and
// localhost that is also its own CA.
func selfSignedCert() ([]byte, tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "fakebb test server", Organization: []string{"fakebb"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("fakebb: key pair: %w", err)
	}
	return certPEM, cert, nil
}
