package fakebb

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// tokenCall sends one request to the access-token API.
func tokenCall(t *testing.T, s *Server, method, path, auth string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+"/rest/access-tokens/latest/"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func basicAuth(user, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+secret))
}

// gitStatus is the answer to git's first authenticated request for repo.
func gitStatus(t *testing.T, s *Server, repo, auth string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/scm/"+repo+"/info/refs?service=git-upload-pack", nil)
	req.Header.Set("Authorization", auth)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAccessTokenAPI(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := Start(t.TempDir(), Options{Flavor: DataCenter, ContextPath: "bitbucket", OAuth: OAuthOptions{Now: clock}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for _, r := range []string{"PRJ/repo", "PRJ/other"} {
		if _, err := s.CreateRepo(r); err != nil {
			t.Fatal(err)
		}
	}
	s.AddUser(User{Name: "alice", Password: "pw-alice", Admin: []string{"PRJ"}, Write: true})
	s.AddUser(User{Name: "bob", Password: "pw-bob"})
	alice := basicAuth("alice", "pw-alice")

	code, tok := tokenCall(t, s, http.MethodPut, "projects/PRJ/repos/repo", alice, map[string]any{"name": "ci", "permissions": []string{"REPO_WRITE"}, "expiryDays": 2})
	if code != 200 || tok["token"] == nil || tok["id"] == nil || tok["expiryDate"] == nil {
		t.Fatalf("create: %d %v", code, tok)
	}
	secret := tok["token"].(string)
	// Bearer only, this repository only, at once.
	for _, c := range []struct {
		repo, auth string
		want       int
	}{
		{"PRJ/repo.git", "Bearer " + secret, 200},
		{"PRJ/repo.git", basicAuth("alice", secret), 401},
		{"PRJ/other.git", "Bearer " + secret, 401},
	} {
		if got := gitStatus(t, s, c.repo, c.auth); got != c.want {
			t.Errorf("git %s with %.6s…: %d, want %d", c.repo, c.auth, got, c.want)
		}
	}
	// Refusals.
	for _, c := range []struct {
		name, method, path, auth string
		body                     any
		want                     int
	}{
		{"a token creating tokens", http.MethodPut, "projects/PRJ", "Bearer " + secret, map[string]any{"name": "x", "permissions": []string{"REPO_READ"}}, 401},
		{"a wrong password", http.MethodPut, "projects/PRJ", basicAuth("alice", "nope"), map[string]any{"name": "x", "permissions": []string{"REPO_READ"}}, 401},
		{"not an admin", http.MethodPut, "projects/PRJ", basicAuth("bob", "pw-bob"), map[string]any{"name": "x", "permissions": []string{"REPO_READ"}}, 401},
		{"another user's tokens", http.MethodGet, "users/alice", basicAuth("bob", "pw-bob"), nil, 401},
		{"an unknown permission", http.MethodPut, "projects/PRJ", alice, map[string]any{"name": "x", "permissions": []string{"REPO_GOD"}}, 400},
		{"a project permission on a repository", http.MethodPut, "projects/PRJ/repos/repo", alice, map[string]any{"name": "x", "permissions": []string{"PROJECT_READ"}}, 400},
		{"no name", http.MethodPut, "projects/PRJ", alice, map[string]any{"permissions": []string{"REPO_READ"}}, 400},
		{"no such project", http.MethodPut, "projects/NOPE", basicAuth("alice", "pw-alice"), map[string]any{"name": "x", "permissions": []string{"REPO_READ"}}, 401},
		{"no such token", http.MethodDelete, "projects/PRJ/repos/repo/999", alice, nil, 404},
	} {
		if code, out := tokenCall(t, s, c.method, c.path, c.auth, c.body); code != c.want {
			t.Errorf("%s: %d %v, want %d", c.name, code, out, c.want)
		}
	}
	// Paging: 30 personal tokens come in pages of at most 25.
	for i := range 30 {
		if code, _ := tokenCall(t, s, http.MethodPut, "users/alice", alice, map[string]any{"name": fmt.Sprint("t", i), "permissions": []string{"REPO_READ"}}); code != 200 {
			t.Fatalf("create %d: %d", i, code)
		}
	}
	_, page := tokenCall(t, s, http.MethodGet, "users/alice?limit=100", alice, nil)
	if n := len(page["values"].([]any)); n != 25 || page["isLastPage"] != false || page["nextPageStart"] != float64(25) {
		t.Errorf("first page: %d values, isLastPage %v, next %v", n, page["isLastPage"], page["nextPageStart"])
	}
	_, page = tokenCall(t, s, http.MethodGet, "users/alice?start=25", alice, nil)
	if n := len(page["values"].([]any)); n != 5 || page["isLastPage"] != true {
		t.Errorf("second page: %d values, isLastPage %v", n, page["isLastPage"])
	}
	if _, has := page["values"].([]any)[0].(map[string]any)["token"]; has {
		t.Error("a list shows a token's secret")
	}
	// A PUT that is not JSON: 415.
	req, _ := http.NewRequest(http.MethodPut, s.URL+"/rest/access-tokens/latest/users/alice", bytes.NewReader([]byte(`{"name":"x","permissions":["REPO_READ"]}`)))
	req.Header.Set("Authorization", alice)
	if resp, err := s.Client().Do(req); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("a PUT without Content-Type: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Expiry ends it for git; it is still listed, as Bitbucket lists it.
	mu.Lock()
	now = now.Add(49 * time.Hour)
	mu.Unlock()
	if got := gitStatus(t, s, "PRJ/repo.git", "Bearer "+secret); got != 401 {
		t.Errorf("an expired token: %d", got)
	}
	if _, page := tokenCall(t, s, http.MethodGet, "projects/PRJ/repos/repo", alice, nil); len(page["values"].([]any)) != 1 {
		t.Errorf("the expired token is not listed: %v", page)
	}
	id := s.ServerTokens("users/alice")[0].ID
	if code, _ := tokenCall(t, s, http.MethodDelete, "users/alice/"+id, alice, nil); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if n := len(s.LiveServerTokens("users/alice")); n != 29 {
		t.Errorf("%d live personal tokens after one revoke, want 29", n)
	}
}
