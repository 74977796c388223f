package bbapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/redact"
)

const password = "correct-horse-battery-staple"

// TestTokenAPIRequests: what goes on the wire for each call, and how the
// answers are read (dates in epoch milliseconds or RFC 3339).
func TestTokenAPIRequests(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pw, _ := r.BasicAuth()
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s %s %s:%t xsrf=%s ct=%s", r.Method, r.URL.Path, strings.TrimSpace(string(body)), user, pw == password, r.Header.Get("X-Atlassian-Token"), r.Header.Get("Content-Type")))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.Method {
		case http.MethodPut:
			fmt.Fprint(w, `{"id":"1234","name":"ci","createdDate":1767225600000,"expiryDate":"2027-01-31T00:00:00Z","permissions":["REPO_WRITE"],"token":"BBDC-newsecretxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
		case http.MethodGet:
			start, _ := strconv.Atoi(r.URL.Query().Get("start"))
			if start == 0 {
				fmt.Fprint(w, `{"values":[{"id":"1","name":"a"},{"id":"2","name":"b"}],"isLastPage":false,"nextPageStart":2}`)
			} else {
				fmt.Fprint(w, `{"values":[{"id":3,"name":"c","expiryDate":1767225600000}],"isLastPage":true}`)
			}
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	red := redact.New()
	api := &TokenAPI{HTTP: New(Options{RootCAs: pool, Redactor: red}), Base: srv.URL + "/bitbucket/", Auth: Auth{Username: "alice", Secret: password}}
	ctx := context.Background()
	tok, err := api.Create(ctx, RepoTokens("PRJ", "my repo"), "ci", []string{"REPO_WRITE"}, 30)
	require.NoError(t, err)
	assert.Equal(t, AccessToken{
		ID: "1234", Name: "ci", Permissions: []string{"REPO_WRITE"}, Secret: "BBDC-newsecretxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Expiry: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC),
	}, tok)
	assert.Equal(t, "****xxxx", red.String(tok.Secret)[:8], "the new token is registered for redaction")
	list, err := api.List(ctx, UserTokens("alice"))
	require.NoError(t, err)
	require.Len(t, list, 3)
	assert.Equal(t, "3", list[2].ID, "a numeric id")
	assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), list[2].Expiry)
	require.NoError(t, api.Delete(ctx, ProjectTokens("PRJ"), "1234"))
	assert.Equal(t, []string{
		`PUT /bitbucket/rest/access-tokens/latest/projects/PRJ/repos/my repo {"expiryDays":30,"name":"ci","permissions":["REPO_WRITE"]} alice:true xsrf=no-check ct=application/json`,
		`GET /bitbucket/rest/access-tokens/latest/users/alice  alice:true xsrf=no-check ct=`,
		`GET /bitbucket/rest/access-tokens/latest/users/alice  alice:true xsrf=no-check ct=`,
		`DELETE /bitbucket/rest/access-tokens/latest/projects/PRJ/1234  alice:true xsrf=no-check ct=`,
	}, got)
}

// TestTokenAPIErrors: each answer maps to the error callers branch on, in
// one line that never holds the password.
func TestTokenAPIErrors(t *testing.T) {
	dcErr := func(msg, exc string) string {
		b, _ := json.Marshal(map[string]any{"errors": []any{map[string]string{"message": msg, "exceptionName": exc}}})
		return string(b)
	}
	cases := []struct {
		name   string
		method string
		status int
		header map[string]string
		body   string
		want   error
		msg    string
	}{
		{"wrong password", http.MethodPut, 401, nil, dcErr("Authentication failed. Please check your credentials and try again.", "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"), ErrRefused, "tokens cannot manage tokens"},
		{"not an admin", http.MethodPut, 401, map[string]string{"X-AUSERNAME": "bob"}, dcErr("You are not permitted to access this resource", "com.atlassian.bitbucket.AuthorisationException"), ErrNotPermitted, "You are not permitted"},
		{"forbidden", http.MethodPut, 403, nil, dcErr("Project tokens are disabled", ""), ErrNotPermitted, "HTTP 403"},
		{"bad permission", http.MethodPut, 400, nil, dcErr("Invalid permission: REPO_GOD.", ""), ErrBadRequest, "Invalid permission: REPO_GOD"},
		{"a 404 without a reason", http.MethodPut, 404, nil, dcErr("Not found.", ""), ErrNotFound, "HTTP 404"},
		{"no such token", http.MethodDelete, 404, nil, dcErr("No token with ID 1 exists.", "com.atlassian.bitbucket.auth.NoSuchAccessTokenException"), ErrNoSuchToken, "HTTP 404"},
		{"a 404 page, the list failing too", http.MethodDelete, 404, nil, "<html>not here</html>", ErrNotFound, "could not be listed"},
		{"no such project on delete", http.MethodDelete, 404, nil, dcErr("Project PRJ does not exist.", "com.atlassian.bitbucket.project.NoSuchProjectException"), ErrOwnerGone, "does not exist"},
		{"no such project on create", http.MethodPut, 404, nil, dcErr("Project PRJ does not exist.", "com.atlassian.bitbucket.project.NoSuchProjectException"), ErrOwnerGone, "does not exist"},
		{"server error", http.MethodPut, 502, nil, "<html>bad gateway</html>", ErrNoAnswer, "HTTP 502"},
		{"rate limited", http.MethodPut, 429, nil, "", ErrNoAnswer, "rate-limited"},
		{"redirect", http.MethodPut, 302, map[string]string{"Location": "https://evil.example/steal"}, "", ErrNoAnswer, "not followed"},
		{"password echoed", http.MethodPut, 400, nil, dcErr("bad password "+password, ""), ErrBadRequest, "bad password ****"},
		{"no token in the answer", http.MethodPut, 200, nil, `{"id":"1","name":"x"}`, ErrNoAnswer, "holds no token"},
		{"not JSON", http.MethodPut, 200, nil, `<html>login</html>`, ErrNoAnswer, "not the expected JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				fmt.Fprint(w, c.body)
			})
			red := redact.New()
			api := &TokenAPI{HTTP: New(Options{RootCAs: pool, Redactor: red}), Base: srv.URL, Auth: Auth{Username: "alice", Secret: password}}
			var err error
			if c.method == http.MethodDelete {
				err = api.Delete(context.Background(), ProjectTokens("PRJ"), "1")
			} else {
				_, err = api.Create(context.Background(), ProjectTokens("PRJ"), "ci", []string{"REPO_READ"}, 0)
			}
			require.Error(t, err)
			assert.True(t, errors.Is(err, c.want), "%v is not %v", err, c.want)
			msg := red.String(err.Error())
			assert.Contains(t, msg, c.msg)
			assert.NotContains(t, msg, password)
			assert.NotContains(t, msg, "\n")
		})
	}
}

// TestTokenAPIRefusesPlainHTTP: credentials go only over https.
func TestTokenAPIRefusesPlainHTTP(t *testing.T) {
	api := &TokenAPI{HTTP: New(Options{}), Base: "http://bb.example.com", Auth: Auth{Username: "alice", Secret: password}}
	_, err := api.Create(context.Background(), ProjectTokens("PRJ"), "ci", []string{"REPO_READ"}, 0)
	require.ErrorIs(t, err, ErrBadBaseURL)
}

// TestTokenAPIDeleteNotFound: a 404 that does not say the token is
// missing counts as gone only when the owner's list lacks the token.
func TestTokenAPIDeleteNotFound(t *testing.T) {
	for _, listed := range []bool{false, true} {
		srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete {
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, "<html>Not Found</html>")
				return
			}
			values := `[]`
			if listed {
				values = `[{"id":"7","name":"ci"}]`
			}
			fmt.Fprintf(w, `{"values":%s,"isLastPage":true}`, values)
		})
		api := &TokenAPI{HTTP: New(Options{RootCAs: pool}), Base: srv.URL, Auth: Auth{Username: "alice", Secret: password}}
		err := api.Delete(context.Background(), ProjectTokens("PRJ"), "7")
		if listed {
			assert.ErrorIs(t, err, ErrNotFound)
			assert.NotErrorIs(t, err, ErrNoSuchToken)
			assert.Contains(t, err.Error(), "still lists")
		} else {
			assert.ErrorIs(t, err, ErrNoSuchToken)
		}
	}
}
