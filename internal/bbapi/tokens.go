package bbapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Data Center HTTP access tokens, through the REST API at
// BASE/rest/access-tokens/latest/OWNER, where OWNER is users/SLUG,
// projects/KEY or projects/KEY/repos/SLUG:
//
//   - PUT OWNER creates a token: {name, permissions, expiryDays}; the
//     answer holds id, name, createdDate, expiryDate (when set),
//     permissions, and the token itself, shown only this once;
//   - GET OWNER lists them (paged: values, isLastPage, nextPageStart);
//   - GET and DELETE OWNER/ID read and revoke one.
//
// A token cannot create or revoke tokens: these calls take the user's
// password (Basic) or an OAuth access token (Bearer).

// Errors of the token API that callers branch on.
var (
	// ErrRefused: 401 for the credentials themselves (a wrong password,
	// or a token, which cannot manage tokens).
	//lint:ignore ST1005 it starts with a proper noun
	ErrRefused = errors.New("Bitbucket refused the credentials")
	// ErrNotPermitted: the user is known but may not manage these tokens
	// (project or repository tokens need admin permission there).
	ErrNotPermitted = errors.New("not permitted")
	// ErrNoSuchToken: the server does not know the token (revoked, or
	// created elsewhere and deleted).
	ErrNoSuchToken = errors.New("no such token on the server")
	// ErrNotFound: not found (HTTP 404), for a reason the server did not
	// name (a proxy's page, a wrong API URL).
	ErrNotFound = errors.New("not found")
	// ErrOwnerGone: the user, project or repository does not exist (any
	// token it had is gone with it).
	ErrOwnerGone = errors.New("no such user, project or repository")
	// ErrBadRequest: the server refused what was asked (an unknown
	// permission, an expiry beyond what the admins allow).
	//lint:ignore ST1005 it starts with a proper noun
	ErrBadRequest = errors.New("Bitbucket refused the request")
	// ErrNoAnswer: no answer, a 5xx, a redirect or rate limiting: nothing
	// is known to have happened; try again.
	ErrNoAnswer = errors.New("no usable answer")
)

// Permissions a Data Center token may hold.
var (
	RepoPermissions    = []string{"REPO_READ", "REPO_WRITE", "REPO_ADMIN"}
	ProjectPermissions = []string{"PROJECT_READ", "PROJECT_WRITE", "PROJECT_ADMIN"}
)

// TokenOwner is whose tokens a call manages: "users/SLUG",
// "projects/KEY" or "projects/KEY/repos/SLUG" (escaped).
type TokenOwner string

// UserTokens, ProjectTokens and RepoTokens name an owner.
func UserTokens(slug string) TokenOwner { return TokenOwner("users/" + esc(slug)) }

// ProjectTokens is a project's.
func ProjectTokens(key string) TokenOwner { return TokenOwner("projects/" + esc(key)) }

// RepoTokens is a repository's.
func RepoTokens(key, slug string) TokenOwner {
	return TokenOwner("projects/" + esc(key) + "/repos/" + esc(slug))
}

// UserSlug asks the server for the slug of the user called name (not
// always the name in lower case: jane@corp.com is jane_corp.com).
func (a *TokenAPI) UserSlug(ctx context.Context, name string) (string, error) {
	var page struct {
		Values []struct {
			Name string `json:"name"`
			Slug string `json:"slug"`
		} `json:"values"`
	}
	u := strings.TrimRight(a.Base, "/") + "/rest/api/latest/users?limit=100&filter=" + url.QueryEscape(name)
	if err := a.call(ctx, http.MethodGet, u, nil, &page); err != nil {
		return "", fmt.Errorf("looking up user %s: %w", name, err)
	}
	for _, v := range page.Values {
		if strings.EqualFold(v.Name, name) && v.Slug != "" {
			return v.Slug, nil
		}
	}
	return "", fmt.Errorf("%w: Bitbucket knows no user %q (check --username)", ErrNotFound, name)
}

// AccessToken is a Data Center HTTP access token as the server describes it.
type AccessToken struct {
	ID          string
	Name        string
	Permissions []string
	Created     time.Time
	Expiry      time.Time // zero: never expires
	// Secret is the token itself: only in Create's answer.
	Secret string
}

// TokenAPI manages the tokens of one instance with one user's credentials.
type TokenAPI struct {
	HTTP *Client
	// Base is the instance URL with its context path.
	Base string
	Auth Auth
}

func (a *TokenAPI) url(owner TokenOwner, id string) string {
	u := strings.TrimRight(a.Base, "/") + "/rest/access-tokens/latest/" + string(owner)
	if id != "" {
		u += "/" + esc(id)
	}
	return u
}

// Create makes a token; expiryDays 0 asks for none (the server may
// enforce one).
func (a *TokenAPI) Create(ctx context.Context, owner TokenOwner, name string, perms []string, expiryDays int) (AccessToken, error) {
	body := map[string]any{"name": name, "permissions": perms}
	if expiryDays > 0 {
		body["expiryDays"] = expiryDays
	}
	var out restToken
	if err := a.call(ctx, http.MethodPut, a.url(owner, ""), body, &out); err != nil {
		return AccessToken{}, fmt.Errorf("creating a token for %s: %w", owner, err)
	}
	t := out.token()
	if t.ID == "" || t.Secret == "" {
		return AccessToken{}, fmt.Errorf("creating a token for %s: %w: the answer holds no token or id", owner, ErrNoAnswer)
	}
	return t, nil
}

// List returns every token of owner, following the pages.
func (a *TokenAPI) List(ctx context.Context, owner TokenOwner) ([]AccessToken, error) {
	var all []AccessToken
	start := 0
	for range 1000 { // a bound on a server that never says isLastPage
		var page struct {
			Values        []restToken `json:"values"`
			IsLastPage    bool        `json:"isLastPage"`
			NextPageStart *int        `json:"nextPageStart"`
		}
		u := a.url(owner, "") + "?limit=100&start=" + strconv.Itoa(start)
		if err := a.call(ctx, http.MethodGet, u, nil, &page); err != nil {
			return nil, fmt.Errorf("listing the tokens of %s: %w", owner, err)
		}
		for _, v := range page.Values {
			all = append(all, v.token())
		}
		if page.IsLastPage || page.NextPageStart == nil || *page.NextPageStart <= start {
			return all, nil
		}
		start = *page.NextPageStart
	}
	return nil, fmt.Errorf("listing the tokens of %s: %w: the pages never end", owner, ErrNoAnswer)
}

// Delete revokes a token; ErrNoSuchToken when the server does not know
// it. A 404 that does not say so is checked against the owner's list:
// only a token the server does not list is taken as gone.
func (a *TokenAPI) Delete(ctx context.Context, owner TokenOwner, id string) error {
	err := a.call(ctx, http.MethodDelete, a.url(owner, id), nil, nil)
	if errors.Is(err, ErrNotFound) {
		list, lerr := a.List(ctx, owner)
		switch {
		case lerr != nil:
			err = fmt.Errorf("%w, and the tokens could not be listed to tell whether it is gone: %w", err, lerr)
		case slices.ContainsFunc(list, func(t AccessToken) bool { return t.ID == id }):
			err = fmt.Errorf("%w, yet the server still lists the token", err)
		default:
			err = fmt.Errorf("%w (HTTP 404, and it is not listed)", ErrNoSuchToken)
		}
	}
	if err != nil {
		return fmt.Errorf("revoking token %s of %s: %w", id, owner, err)
	}
	return nil
}

// restToken is the server's JSON; dates are epoch milliseconds (or, from
// some proxies, RFC 3339 strings).
type restToken struct {
	ID          json.RawMessage `json:"id"`
	Name        string          `json:"name"`
	Permissions []string        `json:"permissions"`
	CreatedDate json.RawMessage `json:"createdDate"`
	ExpiryDate  json.RawMessage `json:"expiryDate"`
	Token       string          `json:"token"`
}

func (r restToken) token() AccessToken {
	id := strings.Trim(string(r.ID), `"`)
	return AccessToken{
		// The name whole: rotations find their tokens by it.
		ID: oneLine(id, 100), Name: r.Name, Permissions: r.Permissions,
		Created: restTime(r.CreatedDate), Expiry: restTime(r.ExpiryDate), Secret: r.Token,
	}
}

func restTime(raw json.RawMessage) time.Time {
	var ms int64
	if json.Unmarshal(raw, &ms) == nil && ms > 0 {
		return time.UnixMilli(ms).UTC()
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// call sends one request and decodes a 2xx answer into out (nil: ignore
// it). Redirects are never followed: these calls carry a password.
func (a *TokenAPI) call(ctx context.Context, method, u string, body, out any) error {
	c := a.HTTP
	c.opts.Redactor.Add(a.Auth.Secret.Reveal(), a.Auth.header(), strings.TrimPrefix(a.Auth.header(), "Basic "))
	parsed, err := url.Parse(u)
	if err != nil || parsed.Scheme != "https" || parsed.Host == "" || parsed.User != nil {
		return fmt.Errorf("%w: refusing to send credentials to %q: not a plain https URL", ErrBadBaseURL, u)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", a.Auth.header())
	// Bitbucket refuses state-changing calls without it (XSRF check).
	req.Header.Set("X-Atlassian-Token", "no-check")
	if c.opts.UserAgent != "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	client := &http.Client{Transport: c.transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c.opts.Trace.Printf("tokens: %s %s (%s)", method, safeURL(parsed), a.Auth)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w from %s: %s", ErrNoAnswer, parsed.Host, describeNetError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%w from %s: reading the answer: %s", ErrNoAnswer, parsed.Host, describeNetError(err))
	}
	code := resp.StatusCode
	c.opts.Trace.Printf("tokens: HTTP %d", code)
	if code >= 200 && code < 300 {
		if out == nil || code == http.StatusNoContent {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%w: HTTP %d with an answer that is not the expected JSON", ErrNoAnswer, code)
		}
		if t, ok := out.(*restToken); ok {
			c.opts.Redactor.Add(t.Token)
		}
		return nil
	}
	msg := errorMessage(data)
	msg.text = c.opts.Redactor.String(msg.text)
	switch {
	case code == http.StatusUnauthorized && (resp.Header.Get("X-AUSERNAME") != "" || strings.Contains(msg.exception, "AuthorisationException")):
		return fmt.Errorf("%w (HTTP 401)%s", ErrNotPermitted, colon(msg.text))
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%w (HTTP 401): a wrong password, or a token (tokens cannot manage tokens: give the password, or log in with OAuth)%s", ErrRefused, colon(msg.text))
	case code == http.StatusForbidden:
		return fmt.Errorf("%w (HTTP 403)%s", ErrNotPermitted, colon(msg.text))
	case code == http.StatusNotFound && ownerMissing(msg.exception):
		return fmt.Errorf("%w (HTTP 404)%s", ErrOwnerGone, colon(msg.text))
	case code == http.StatusNotFound && method == http.MethodDelete && strings.HasSuffix(msg.exception, "NoSuchAccessTokenException"):
		return fmt.Errorf("%w (HTTP 404)%s", ErrNoSuchToken, colon(msg.text))
	case code == http.StatusNotFound:
		return fmt.Errorf("%w (HTTP 404)%s", ErrNotFound, colon(msg.text))
	case code == http.StatusBadRequest:
		return fmt.Errorf("%w (HTTP 400)%s", ErrBadRequest, colon(msg.text))
	case code >= 300 && code < 400:
		return fmt.Errorf("%w: HTTP %d redirecting to %s: not followed (credentials go only to %s; check the API URL)", ErrNoAnswer, code, safeLocation(parsed, resp.Header.Get("Location")), parsed.Host)
	case code == http.StatusTooManyRequests:
		return fmt.Errorf("%w: rate-limited (HTTP 429): try again later", ErrNoAnswer)
	}
	return fmt.Errorf("%w: HTTP %d%s", ErrNoAnswer, code, colon(msg.text))
}

// ownerMissing reports a 404 for the user, project or repository rather
// than the token: the token may well live on (a renamed repository, a user
// whose slug is not their lower-cased name).
func ownerMissing(exception string) bool {
	for _, x := range []string{"NoSuchUserException", "NoSuchProjectException", "NoSuchRepositoryException"} {
		if strings.HasSuffix(exception, x) {
			return true
		}
	}
	return false
}

func colon(s string) string {
	if s == "" {
		return ""
	}
	return ": " + strings.TrimSuffix(s, ".")
}
