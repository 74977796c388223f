package bbapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/redact"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/trace"
)

// Status is the verdict of a check.
type Status string

// Verdicts. StatusUnverifiable is never returned by Check: callers use it
// when they could not send a request at all (no e-mail for an API token,
// no API URL, no secret).
const (
	StatusValid        Status = "valid"
	StatusRejected     Status = "rejected"      // 401: revoked, expired or mistyped
	StatusLackingScope Status = "lacking-scope" // 403 (Data Center: 401 for an authenticated user without permission)
	StatusNotFound     Status = "not-found"     // 404
	StatusGone         Status = "gone"          // 410: app passwords after their removal
	StatusRateLimited  Status = "rate-limited"  // 429 beyond the bounded wait
	StatusError        Status = "error"         // no answer, TLS, 5xx, redirect refused, anything else
	StatusUnverifiable Status = "unverifiable"
)

// Defaults.
const (
	DefaultTimeout = 15 * time.Second
	DefaultMaxWait = 10 * time.Second
	// maxAttempts bounds the requests of one check that keep getting 429.
	maxAttempts = 4
	// maxRedirects bounds same-host redirects.
	maxRedirects = 3
	// maxBody is how much of a response is read (for its error message).
	maxBody = 64 << 10
)

// Auth is how a check presents the token.
type Auth struct {
	// Bearer sends "Authorization: Bearer <secret>"; otherwise Basic with
	// Username.
	Bearer   bool
	Username string
	Secret   credential.Secret
}

// String describes the auth for traces: never the secret.
func (a Auth) String() string {
	if a.Bearer {
		return "Bearer " + a.Secret.String()
	}
	return fmt.Sprintf("Basic %s:%s", a.Username, a.Secret)
}

func (a Auth) header() string {
	if a.Bearer {
		return "Bearer " + a.Secret.Reveal()
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Secret.Reveal()))
}

// Result is what a check found.
type Result struct {
	Status Status
	// HTTPStatus is the final answer's status code; 0 when none came.
	HTTPStatus int
	// CredentialType is Cloud's x-credential-type ("" when not sent).
	CredentialType string
	// Scopes are Cloud's x-oauth-scopes: nil when the header was not sent,
	// empty when it was sent empty.
	Scopes []string
	// AcceptedScopes are x-accepted-oauth-scopes: what the endpoint takes.
	AcceptedScopes []string
	// Account is Data Center's X-AUSERNAME: who the credentials are.
	Account string
	// Detail explains the verdict in one line (never holding the secret).
	Detail string
	// Waited is how long the check waited on rate limiting.
	Waited time.Duration
}

// Options configure a Client.
type Options struct {
	// RootCAs verifies servers; nil means the system's roots (on Linux
	// SSL_CERT_FILE and SSL_CERT_DIR are honoured).
	RootCAs *x509.CertPool
	// Timeout bounds each request from dialling to the end of its body;
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxWait bounds the total time the Client waits on 429 answers,
	// across all its checks; 0 never waits.
	MaxWait time.Duration
	// UserAgent is sent as User-Agent.
	UserAgent string
	// Trace gets one line per request and answer (secrets masked).
	Trace *trace.Logger
	// Redactor learns each secret sent, in every form a server could echo
	// (the token, the Authorization value), and masks what servers say.
	Redactor *redact.Redactor
	// Sleep waits between attempts (tests replace it).
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for Retry-After dates.
	Now func() time.Time
}

// Client checks tokens. It is safe for concurrent use.
type Client struct {
	transport *http.Transport
	opts      Options

	mu     sync.Mutex
	waited time.Duration // spent of opts.MaxWait
}

// New returns a Client. Its transport uses the environment's proxy
// settings, TLS 1.2 or newer, and bounded dial and handshake times.
func New(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Sleep == nil {
		o.Sleep = Sleep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	dial := &net.Dialer{Timeout: min(10*time.Second, o.Timeout), KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   min(10*time.Second, o.Timeout),
		ResponseHeaderTimeout: o.Timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
	}
	return &Client{transport: t, opts: o}
}

// Close releases idle connections.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Sleep waits d, or less if ctx ends first (its error then); a d of 0 or
// less returns at once.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Check runs one check: a GET of ep.URL with auth. A 429 is retried after
// the server's Retry-After (seconds or an HTTP date; 1 s, then 2 s, when
// absent) while the Client's wait budget lasts; beyond it the verdict is
// StatusRateLimited.
func (c *Client) Check(ctx context.Context, ep Endpoint, auth Auth) Result {
	c.opts.Redactor.Add(auth.Secret.Reveal(), auth.header(), strings.TrimPrefix(auth.header(), "Basic "))
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		res, retryAfter, hinted := c.once(ctx, ep, auth)
		res.Waited = waited
		if res.HTTPStatus != http.StatusTooManyRequests {
			return res
		}
		wait := retryAfter
		if !hinted {
			wait = time.Duration(attempt) * time.Second
		}
		res.Status = StatusRateLimited
		left := c.budgetLeft()
		switch {
		case attempt >= maxAttempts:
			res.Detail = fmt.Sprintf("still rate-limited (HTTP 429) after %d attempts and %s of waiting: try again later", attempt, waited)
			return res
		case wait > left:
			if hinted {
				res.Detail = fmt.Sprintf("rate-limited (HTTP 429): Bitbucket asks to retry after %s, more than the %s left to wait: try again later", wait, left)
			} else {
				res.Detail = fmt.Sprintf("rate-limited (HTTP 429) and no time left to wait (at most %s in all): try again later", c.opts.MaxWait)
			}
			return res
		}
		if !c.reserve(wait) {
			res.Detail = "rate-limited (HTTP 429): try again later"
			return res
		}
		c.opts.Trace.Printf("verify: rate-limited: waiting %s before attempt %d", wait, attempt+1)
		if err := c.opts.Sleep(ctx, wait); err != nil {
			res.Detail = fmt.Sprintf("rate-limited (HTTP 429), and interrupted while waiting: %v", err)
			return res
		}
		waited += wait
	}
}

func (c *Client) budgetLeft() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(0, c.opts.MaxWait-c.waited)
}

func (c *Client) reserve(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waited+d > c.opts.MaxWait {
		return false
	}
	c.waited += d
	return true
}

// once sends one request. It returns the server's Retry-After, if any.
func (c *Client) once(ctx context.Context, ep Endpoint, auth Auth) (res Result, retryAfter time.Duration, hinted bool) {
	scrub := c.opts.Redactor.String
	fail := func(format string, args ...any) (Result, time.Duration, bool) {
		res.Status = StatusError
		res.Detail = scrub(fmt.Sprintf(format, args...))
		c.opts.Trace.Printf("verify: %s", res.Detail)
		return res, 0, false
	}
	start, err := url.Parse(ep.URL)
	if err != nil || start.Scheme != "https" || start.Host == "" || start.User != nil {
		return fail("refusing to send a token to %q: not a plain https URL", ep.URL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.URL, nil)
	if err != nil {
		return fail("building the request: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", auth.header())
	if c.opts.UserAgent != "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	var refused string
	client := &http.Client{
		Transport: c.transport,
		Timeout:   c.opts.Timeout,
		// Credentials go only where the user pointed them: a redirect is
		// followed only to the same scheme, host and port (net/http then
		// resends the Authorization header); anything else is reported.
		CheckRedirect: func(next *http.Request, via []*http.Request) error {
			switch {
			case len(via) > maxRedirects:
				refused = fmt.Sprintf("more than %d redirects", maxRedirects)
			case next.URL.Scheme != "https" || !bitbucket.EqualFoldASCII(next.URL.Host, start.Host):
				refused = "redirected to " + safeURL(next.URL) + ": not followed, credentials go only to " + start.Host
			default:
				c.opts.Trace.Printf("verify: following a redirect to %s", safeURL(next.URL))
				return nil
			}
			return http.ErrUseLastResponse
		},
	}
	c.opts.Trace.Printf("verify: GET %s (%s)", ep.URL, auth)
	resp, err := client.Do(req)
	if err != nil {
		return fail("no answer from %s: %s", start.Host, describeNetError(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))

	res.HTTPStatus = resp.StatusCode
	res.CredentialType = oneLine(resp.Header.Get("X-Credential-Type"), 100)
	if vals, ok := resp.Header[http.CanonicalHeaderKey("X-OAuth-Scopes")]; ok {
		res.Scopes = parseScopes(vals)
	}
	if vals, ok := resp.Header[http.CanonicalHeaderKey("X-Accepted-OAuth-Scopes")]; ok {
		res.AcceptedScopes = parseScopes(vals)
	}
	res.Account = oneLine(resp.Header.Get("X-AUSERNAME"), 100)
	msg := errorMessage(body)
	msg.text = scrub(msg.text)
	c.opts.Trace.Printf("verify: HTTP %d x-credential-type=%q x-oauth-scopes=%q", resp.StatusCode, res.CredentialType, strings.Join(res.Scopes, ","))

	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		res.Status = StatusValid
		res.Detail = ep.Proves
	case code >= 300 && code < 400:
		res.Status = StatusError
		if refused == "" {
			refused = "redirected to " + safeLocation(start, resp.Header.Get("Location"))
		}
		res.Detail = scrub(fmt.Sprintf("HTTP %d: %s", code, refused))
	case code == http.StatusUnauthorized:
		if res.Account != "" || strings.Contains(msg.exception, "AuthorisationException") {
			// Data Center answers 401 to a user it knows but does not
			// permit: the credentials work.
			res.Status = StatusLackingScope
			res.Detail = withMessage("authenticated, but not permitted (HTTP 401)", msg.text)
			break
		}
		res.Status = StatusRejected
		res.Detail = withMessage("Bitbucket refused the credentials (HTTP 401): revoked, expired or mistyped", msg.text)
	case code == http.StatusForbidden && ep.AuthOnly:
		res.Status = StatusValid
		res.Detail = withMessage(ep.Proves+" (HTTP 403 here only means the token lacks a scope git does not need)", msg.text)
	case code == http.StatusForbidden:
		res.Status = StatusLackingScope
		d := withMessage("authenticated, but the token lacks a scope or permission for this (HTTP 403)", msg.text)
		if need := firstNonEmpty(res.AcceptedScopes, msg.required); len(need) > 0 {
			d += "; the endpoint takes " + strings.Join(need, " or ")
		}
		res.Detail = d
	case code == http.StatusNotFound:
		res.Status = StatusNotFound
		res.Detail = withMessage("not found (HTTP 404): it does not exist, was renamed, or the token cannot see it", msg.text)
	case code == http.StatusGone:
		res.Status = StatusGone
		res.Detail = withMessage("Bitbucket no longer accepts this credential (HTTP 410, as for app passwords since 28 July 2026): "+bitbucket.CreateAPIToken, msg.text)
	case code == http.StatusTooManyRequests:
		res.Status = StatusRateLimited
		retryAfter, hinted = parseRetryAfter(resp.Header.Get("Retry-After"), c.opts.Now())
		res.Detail = "rate-limited (HTTP 429)"
	default:
		res.Status = StatusError
		res.Detail = withMessage(fmt.Sprintf("unexpected answer HTTP %d", code), msg.text)
	}
	return res, retryAfter, hinted
}

// parseRetryAfter reads Retry-After: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		const limit = 365 * 24 * 3600
		return time.Duration(min(n, limit)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(0, t.Sub(now)).Round(time.Second), true
}

func parseScopes(vals []string) []string {
	out := []string{}
	for _, v := range vals {
		for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			s = oneLine(s, 100)
			if s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func firstNonEmpty(lists ...[]string) []string {
	for _, l := range lists {
		if len(l) > 0 {
			return l
		}
	}
	return nil
}

// serverMessage is what an error body says.
type serverMessage struct {
	text      string
	exception string   // Data Center's exceptionName
	required  []string // Cloud's error.detail.required
}

// errorMessage reads Cloud's {"error":{"message":...,"detail":...}} or
// Data Center's {"errors":[{"message":...,"exceptionName":...}]}.
func errorMessage(body []byte) serverMessage {
	var v struct {
		Error *struct {
			Message string          `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"error"`
		Errors []struct {
			Message       string `json:"message"`
			ExceptionName string `json:"exceptionName"`
		} `json:"errors"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &v) != nil {
		return serverMessage{}
	}
	var m serverMessage
	switch {
	case v.Error != nil:
		m.text = v.Error.Message
		var d struct {
			Required []string `json:"required"`
		}
		if json.Unmarshal(v.Error.Detail, &d) == nil {
			for _, s := range d.Required {
				if s = oneLine(s, 100); s != "" {
					m.required = append(m.required, s)
				}
			}
		}
	case len(v.Errors) > 0:
		m.text, m.exception = v.Errors[0].Message, v.Errors[0].ExceptionName
	default:
		m.text = v.Message
	}
	m.text = oneLine(m.text, 300)
	m.exception = oneLine(m.exception, 200)
	return m
}

func withMessage(s string, msg string) string {
	if msg == "" {
		return s
	}
	return s + ": " + strings.TrimSuffix(msg, ".")
}

// oneLine keeps at most max runes of s, printable, on one line.
func oneLine(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// safeURL shows a URL without user information or query.
func safeURL(u *url.URL) string {
	v := *u
	v.User = nil
	v.RawQuery, v.ForceQuery, v.Fragment = "", false, ""
	return v.String()
}

func safeLocation(base *url.URL, loc string) string {
	if loc == "" {
		return "nowhere (no Location header)"
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "an unreadable Location"
	}
	return oneLine(safeURL(u), 200)
}

// describeNetError says why no answer came, without Go's wrapping noise.
func describeNetError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timed out"
	case errors.As(err, &unknownCA):
		return "its TLS certificate is not trusted (a private CA can be added with SSL_CERT_FILE)"
	case errors.As(err, &hostname):
		return "its TLS certificate is for another host: " + hostname.Error()
	}
	return oneLine(err.Error(), 300)
}
