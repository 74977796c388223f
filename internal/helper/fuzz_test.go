package helper_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// fzNow is FuzzGet's clock.
var fzNow = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

// fzEntries is FuzzGet's store: every kind, level and flavour, with
// entries that are expired, rejected, rejected for one repository, stored
// with and without a username, Bearer, under a context path, on another
// port, and on a host that setup recorded as Cloud. Each secret is unique,
// so an answer names the entry it came from.
var fzEntries = []fzEntry{
	{e: store.Entry{ID: "e01", URL: "https://bitbucket.org/ws/repo", Kind: store.KindRepository, Username: helper.UserAccessToken}, secret: "S01-repo"},
	{e: store.Entry{ID: "e02", URL: "https://bitbucket.org/ws", Kind: store.KindWorkspace, Username: helper.UserAccessToken, RejectedFor: []string{"ws/blocked"}}, secret: "S02-workspace"},
	{e: store.Entry{ID: "e03", URL: "https://bitbucket.org", Kind: store.KindAPI, Username: "alice", RejectedFor: []string{"Team/Blocked2"}}, secret: "S03-api-alice"},
	{e: store.Entry{ID: "e04", URL: "https://bitbucket.org/ws3", Kind: store.KindAPI, Username: helper.UserAPIToken}, secret: "S04-api-fixed"},
	{e: store.Entry{ID: "e05", URL: "https://bitbucket.org/ws/old", Kind: store.KindRepository, Username: helper.UserAccessToken, Expires: "2026-01-01"}, secret: "S05-expired"},
	{e: store.Entry{ID: "e06", URL: "https://bitbucket.org/ws/bad", Kind: store.KindRepository, Username: helper.UserAccessToken, State: store.StateRejected}, secret: "S06-rejected"},
	{e: store.Entry{ID: "e07", URL: "https://bitbucket.org/ws/dated", Kind: store.KindRepository, Username: helper.UserAccessToken, Expires: "2027-03-01"}, secret: "S07-dated"},
	{e: store.Entry{ID: "e08", URL: "https://bitbucket.org/other/thing", Kind: store.KindStored, Username: "bob", UsernameSet: true}, secret: "S08-stored-bob"},
	{e: store.Entry{ID: "e09", URL: "https://bitbucket.org/nouser", Kind: store.KindStored}, secret: "S09-stored-nouser"},
	{e: store.Entry{ID: "e10", URL: "https://bitbucket.org/emptyuser", Kind: store.KindStored, UsernameSet: true}, secret: "S10-stored-empty"},
	{e: store.Entry{ID: "e11", URL: "https://bitbucket.org/other/thing", Kind: store.KindStored, Username: "carol", UsernameSet: true, Expires: "2026-08-01T00:00:00Z"}, secret: "S11-stored-expired"},
	{e: store.Entry{ID: "e12", URL: "https://bb.example.com", Kind: store.KindPersonal, Username: "bob"}, secret: "S12-dc-personal"},
	{e: store.Entry{ID: "e13", URL: "https://bb.example.com/scm/PROJ", Kind: store.KindProject, AuthType: "Bearer", RejectedFor: []string{"scm/PROJ/blocked"}}, secret: "S13-dc-project"},
	{e: store.Entry{ID: "e14", URL: "https://bb.example.com/scm/PROJ/repo", Kind: store.KindRepository, AuthType: "Bearer"}, secret: "S14-dc-repo"},
	{e: store.Entry{ID: "e15", URL: "https://bb.example.com/scm/~bob/r", Kind: store.KindRepository, AuthType: "Bearer"}, secret: "S15-dc-user-repo"},
	{e: store.Entry{ID: "e16", URL: "https://ctx.example.com/bitbucket/scm/P/r", Kind: store.KindRepository, AuthType: "Bearer"}, secret: "S16-dc-context"},
	{e: store.Entry{ID: "e17", URL: "https://bb.example.com:8443", Kind: store.KindPersonal, Username: "alice"}, secret: "S17-dc-port"},
	{e: store.Entry{ID: "e18", URL: "https://cloud.example.com/ws/repo", Kind: store.KindRepository, Username: helper.UserAccessToken}, secret: "S18-cloud-setup"},
	{e: store.Entry{ID: "e19", URL: "https://bb.example.com/scm/OTHER/x", Kind: store.KindStored, AuthType: "Bearer"}, secret: "S19-stored-bearer"},
	{e: store.Entry{ID: "e20", URL: "https://bb.example.com/scm/PROJ/lfs", Kind: store.KindStored, Username: "alice", UsernameSet: true, Format: store.SecretJSON},
		secret: "S20-stored-json", raw: `{"password":"S20-stored-json","oauth_refresh_token":"R20-refresh"}`},
	{e: store.Entry{ID: "e21", URL: "https://[::1]:8443/scm/P/r", Kind: store.KindRepository, AuthType: "Bearer"}, secret: "S21-ipv6"},
	{e: store.Entry{ID: "e22", URL: "https://bb.example.com/scm/PROJ/rejected", Kind: store.KindRepository, AuthType: "Bearer", State: store.StateRejected}, secret: "S22-dc-rejected"},
	{e: store.Entry{ID: "e23", URL: "https://bitbucket.org/kstore", Kind: store.KindStored, Username: "kate", UsernameSet: true}, secret: "S23-stored-kate"},
}

type fzEntry struct {
	e      store.Entry
	secret string // the password or the Bearer credential
	raw    string // the keyring value when it is not the secret alone
}

// fzCloudHosts are the hosts whose paths compare as Cloud's.
var fzCloudHosts = map[string]bool{"bitbucket.org": true, "cloud.example.com": true}

// FuzzGet feeds get fuzzed requests over fzEntries and checks every answer
// against an oracle written from the README's rules, not from the helper's
// code: the entry whose secret comes back must have a scope that covers the
// request (https only; the same host once ASCII letters are lower-cased and
// the default port dropped; a path scope only for a request with a clean
// path that it prefixes on whole segments, with the flavour's case rules),
// must be neither expired, nor rejected, nor rejected for the request's
// repository, must suit the request's username, and is Bearer only when git
// offered capability[]=authtype. get never echoes the request, writes no
// secret, and names no secret in a notice.
func FuzzGet(f *testing.F) {
	seeds := []struct {
		protocol, host, path, username string
		hasUser                        bool
		caps                           string
	}{
		{"https", "bitbucket.org", "ws/repo.git", "", false, ""},
		{"https", "bitbucket.org", "ws/repo.git/info/lfs", "alice", true, "authtype"},
		{"https", "BITBUCKET.ORG:443", "WS/Repo", "", false, "authtype,state"},
		{"HTTPS", "bitbucket.org", "ws/repo2.git", "", false, ""},
		{"https", "bitbucket.org", "ws/blocked.git", "", false, ""},
		{"https", "bitbucket.org", "team/BLOCKED2.git/info/lfs", "", false, ""},
		{"https", "bitbucket.org", "ws3/x.git", "carol", true, ""},
		{"https", "bitbucket.org", "ws/old.git", "", false, ""},
		{"https", "bitbucket.org", "ws/bad.git", "", false, ""},
		{"https", "bitbucket.org", "ws/dated.git", "", false, ""},
		{"https", "bitbucket.org", "other/thing.git", "bob", true, ""},
		{"https", "bitbucket.org", "other/thing.git", "carol", true, ""},
		{"https", "bitbucket.org", "other/thing.git", "", false, ""},
		{"https", "bitbucket.org", "nouser/x", "", true, ""},
		{"https", "bitbucket.org", "emptyuser/x", "", true, ""},
		{"https", "bitbucket.org", "", "alice", true, ""},
		{"https", "bitbucket.org", "", "ALICE", true, ""},
		{"https", "bitbucket.org", "ws/../ws/repo.git", "", false, ""},
		{"https", "bitbucket.org", "ws/%2e%2e/repo.git", "", false, ""},
		{"https", "bitbucket.org", "ws//repo.git", "", false, ""},
		{"https", "bitbucket.org", "ws/repo.git/../../x", "", false, ""},
		{"https", "bitbucket.org", "ws/...git/repo", "", false, ""},
		{"https", "bitbucket.org", "ws/repo?x", "", false, ""},
		{"https", "bitbucket.org", "ws/repo.git/..;/..;/ws2/x.git", "", false, ""},
		{"https", "bitbucket.org", "ws/repo/.;/x.git", "", false, ""},
		{"https", "bitbucket.org", "ws/repo.git/..;jsessionid=1/x", "", false, ""},
		{"https", "bitbucket.org", "ws/;x/repo.git", "", false, ""},
		{"https", "bb.example.com", "scm/PROJ/..;/OTHER/repo.git", "", false, "authtype"},
		{"https", "bb.example.com", "scm/PROJ/repo;x.git", "", false, "authtype"},
		{"http", "bitbucket.org", "ws/repo.git", "", false, ""},
		{"https", "bitbucket.org:8443", "ws/repo.git", "", false, ""},
		{"https", "bitbucket.org.", "ws/repo.git", "", false, ""},
		{"https", "alice@bitbucket.org", "ws/repo.git", "", false, ""},
		{"https", "bitbuc\u212aet.org", "ws/repo.git", "", false, ""},
		{"https", "bb.example.com", "scm/PROJ/repo.git", "", false, "authtype"},
		{"https", "bb.example.com", "scm/proj/repo.git", "carol", true, "authtype"},
		{"https", "bb.example.com", "scm/PROJ/Repo.git", "", false, "authtype"},
		{"https", "bb.example.com", "scm/PROJ/repo.git", "", false, ""},
		{"https", "bb.example.com", "scm/PROJ/blocked.git", "", false, "authtype"},
		{"https", "bb.example.com", "scm/PROJ/rejected.git", "", false, "authtype"},
		{"https", "bb.example.com", "scm/~bob/r.git", "", false, "authtype"},
		{"https", "bb.example.com", "scm/~BOB/r.git", "", false, "authtype"},
		{"https", "bb.example.com", "scm/OTHER/x.git", "", false, "authtype"},
		{"https", "bb.example.com", "scm/PROJ/lfs.git", "alice", true, "state"},
		{"https", "bb.example.com", "", "Bob", true, ""},
		{"https", "bb.example.com:8443", "scm/X/y.git", "alice", true, ""},
		{"https", "ctx.example.com", "bitbucket/scm/p/r.git/info/lfs", "", false, "authtype"},
		{"https", "ctx.example.com", "scm/P/r.git", "", false, "authtype"},
		{"https", "cloud.example.com", "WS/REPO.git", "", false, ""},
		{"https", "[::1]:443", "scm/P/r.git", "", false, "authtype"},
		{"https", "[::1]:8443", "scm/P/r.git", "", false, "authtype"},
		{"https", "bitbucket.org", "kstore/x.git", "Kate", true, ""},
		{"", "bitbucket.org", "ws/repo.git", "", false, ""},
		{"https", "", "ws/repo.git", "", false, ""},
	}
	for _, s := range seeds {
		f.Add(s.protocol, s.host, s.path, s.username, s.hasUser, s.caps)
	}

	h, sec, notices := fzHelper(f)
	sets, deletes := sec.sets.Load(), sec.deletes.Load()

	f.Fuzz(func(t *testing.T, protocol, host, path, username string, hasUser bool, caps string) {
		q := &credential.Credential{Protocol: protocol, Host: host, Path: path, Username: username, HasUsername: hasUser || username != ""}
		if caps != "" {
			q.Capabilities = strings.Split(caps, ",")
		}
		notices.Reset()
		a, err := h.Get(context.Background(), q)
		for _, x := range fzEntries {
			if strings.Contains(notices.String(), x.secret) {
				t.Fatalf("a notice shows the secret of %s: %q", x.e.ID, notices.String())
			}
		}
		if sec.sets.Load() != sets || sec.deletes.Load() != deletes {
			t.Fatalf("get wrote to the keyring")
		}
		if err != nil {
			if !errors.Is(err, helper.ErrBadRequest) || (protocol != "" && host != "") {
				t.Fatalf("get %#v: unexpected error %v", q, err)
			}
			return
		}
		if a == nil {
			return
		}
		fzCheckAnswer(t, q, a)
	})
}

// fzHelper is a Helper over fzEntries, a memory keyring and fzNow.
func fzHelper(tb testing.TB) (*helper.Helper, *countingSecrets, *bytes.Buffer) {
	sec := &countingSecrets{Backend: memory.New()}
	notices := &bytes.Buffer{}
	h := &helper.Helper{
		Store:   &store.Store{Dir: filepath.Join(tb.TempDir(), "config"), Secrets: sec},
		Now:     func() time.Time { return fzNow },
		Notices: notices,
	}
	err := h.Store.Update(context.Background(), func(tx *store.Tx) error {
		tx.Index.Hosts = map[string]store.HostConfig{"cloud.example.com": {Flavor: "cloud"}}
		for _, x := range fzEntries {
			e := x.e
			e.State = fzOr(e.State, store.StateActive)
			e.Created, e.Updated = fzNow.Add(-time.Hour), fzNow.Add(-time.Hour)
			if _, err := tx.SetSecret(e.ID, fzOr(x.raw, x.secret)); err != nil {
				return err
			}
			tx.Index.Entries = append(tx.Index.Entries, e)
		}
		tx.Changed()
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h, sec, notices
}

// TestFuzzGetFixture shows that FuzzGet's oracle is not vacuous: the
// fixture answers the requests it was built for, each with the entry the
// README picks, and the oracle accepts those answers.
func TestFuzzGetFixture(t *testing.T) {
	h, _, _ := fzHelper(t)
	tests := []struct {
		protocol, host, path, username string
		caps                           string
		want                           string // entry ID, "" for no answer
	}{
		{"https", "bitbucket.org", "ws/repo.git", "", "", "e01"},
		{"https", "BITBUCKET.ORG:443", "WS/Repo.git/info/lfs", "mallory", "", "e01"},
		{"https", "bitbucket.org", "ws/repo2.git", "", "", "e02"},
		{"https", "bitbucket.org", "ws/blocked.git", "", "", "e03"},
		{"https", "bitbucket.org", "ws/blocked2.git", "", "", "e02"},
		{"https", "bitbucket.org", "ws/Blocked2.git", "bob", "", "e02"},
		{"https", "bitbucket.org", "team/blocked2.git/info/lfs", "", "", ""},
		{"https", "bitbucket.org", "team/other.git", "", "", "e03"},
		{"https", "bitbucket.org", "ws3/x.git", "carol", "", "e04"},
		{"https", "bitbucket.org", "ws/old.git", "", "", "e02"},
		{"https", "bitbucket.org", "ws/bad.git", "", "", "e02"},
		{"https", "bitbucket.org", "ws/dated.git", "", "", "e07"},
		{"https", "bitbucket.org", "other/thing.git", "bob", "", "e08"},
		{"https", "bitbucket.org", "other/thing.git", "carol", "", ""},
		{"https", "bitbucket.org", "nouser/x.git", "", "", "e09"},
		{"https", "bitbucket.org", "", "ALICE", "", "e03"},
		{"https", "bitbucket.org", "ws/../ws/repo.git", "", "", "e03"},
		{"https", "bitbucket.org", "ws/repo.git/..;/..;/ws/x.git", "", "", "e03"},
		{"https", "bitbucket.org", "ws/repo/.;/x.git", "", "", "e03"},
		{"https", "bitbucket.org", "ws/;x/repo.git", "", "", "e03"},
		{"https", "bb.example.com", "scm/PROJ/..;/OTHER/repo.git", "", "authtype", "e12"},
		{"https", "bb.example.com", "scm/PROJ/..;x/PROJ/repo.git", "", "authtype", "e12"},
		{"http", "bitbucket.org", "ws/repo.git", "", "", ""},
		{"https", "bb.example.com", "scm/proj/repo.git", "carol", "authtype", "e14"},
		{"https", "bb.example.com", "scm/PROJ/Repo.git", "", "authtype", "e13"},
		{"https", "bb.example.com", "scm/PROJ/blocked.git", "", "authtype", "e12"},
		{"https", "bb.example.com", "scm/PROJ/repo.git", "", "", "e12"},
		{"https", "bb.example.com", "scm/~bob/r.git", "", "authtype", "e15"},
		{"https", "bb.example.com", "scm/OTHER/x.git", "", "authtype", "e19"},
		{"https", "bb.example.com", "scm/PROJ/lfs.git", "alice", "state", "e20"},
		{"https", "bb.example.com:8443", "scm/X/y.git", "alice", "", "e17"},
		{"https", "ctx.example.com", "bitbucket/scm/p/r.git/info/lfs", "", "authtype", "e16"},
		{"https", "cloud.example.com", "WS/REPO.git", "", "", "e18"},
		{"https", "[::1]:8443", "scm/P/r.git", "", "authtype", "e21"},
		{"https", "bitbucket.org", "kstore/x.git", "KATE", "", "e23"},
		{"https", "bitbucket.org", "kstore/x.git", "kat", "", ""},
	}
	for _, tt := range tests {
		q := &credential.Credential{Protocol: tt.protocol, Host: tt.host, Path: tt.path, Username: tt.username, HasUsername: tt.username != ""}
		if tt.caps != "" {
			q.Capabilities = strings.Split(tt.caps, ",")
		}
		a, err := h.Get(context.Background(), q)
		if err != nil {
			t.Fatalf("%s %s %s: %v", tt.protocol, tt.host, tt.path, err)
		}
		got := ""
		if a != nil {
			fzCheckAnswer(t, q, a)
			for _, x := range fzEntries {
				if x.secret == a.Password.Reveal() || x.secret == a.Credential.Reveal() {
					got = x.e.ID
				}
			}
		}
		if got != tt.want {
			t.Errorf("%s %s %s username %q: answered by %q, want %q", tt.protocol, tt.host, tt.path, tt.username, got, tt.want)
		}
	}
}

func fzOr[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

// fzCheckAnswer is the oracle: why may this entry answer this request?
func fzCheckAnswer(t *testing.T, q, a *credential.Credential) {
	t.Helper()
	secret := a.Password.Reveal()
	if a.AuthType != "" {
		secret = a.Credential.Reveal()
		if a.HasPassword || a.Password != "" || a.HasUsername {
			t.Fatalf("answer %v mixes Bearer with username/password", a)
		}
	} else if a.Credential != "" {
		t.Fatalf("answer %v has a credential without authtype", a)
	}
	i := slices.IndexFunc(fzEntries, func(x fzEntry) bool { return x.secret == secret })
	if i < 0 {
		t.Fatalf("answer %v holds no known secret", a)
	}
	e := fzEntries[i].e
	why := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("request protocol=%q host=%q path=%q username=%q (set %v) capabilities=%q got %s (%s %s): "+format,
			append([]any{q.Protocol, q.Host, q.Path, q.Username, q.HasUsername, q.Capabilities, e.ID, e.Kind, e.URL}, args...)...)
	}

	// Nothing of the request is echoed; capabilities only as offered.
	if a.Protocol != "" || a.Host != "" || a.Path != "" || len(a.WWWAuth) > 0 || a.Ephemeral || a.Quit || a.Continue {
		why("the answer echoes request attributes: %#v", a)
	}
	for _, c := range a.Capabilities {
		if !q.HasCapability(c) {
			why("capability[]=%s was not offered", c)
		}
	}
	if len(a.State) > 0 && !q.HasCapability("state") {
		why("state[] without capability[]=state")
	}

	// https only, ASCII case aside.
	if oracleLower(q.Protocol) != "https" {
		why("protocol %q is not https", q.Protocol)
	}

	// Same host.
	scopeHost, scopePath, _ := strings.Cut(strings.TrimPrefix(e.URL, "https://"), "/")
	host := strings.TrimSuffix(oracleLower(q.Host), ":443")
	if host != scopeHost {
		why("host %q is not %q", q.Host, scopeHost)
	}
	cloud := fzCloudHosts[scopeHost]

	// Path: a path scope needs a clean request path that it prefixes.
	var scopeSegs []string
	if scopePath != "" {
		scopeSegs = strings.Split(scopePath, "/")
	}
	segs, clean := oracleSegments(cloud, q.Path)
	if len(scopeSegs) > 0 {
		switch {
		case q.Path == "":
			why("a request without a path gets a %d-segment scope", len(scopeSegs))
		case !clean:
			why("an unsafe path gets a path scope")
		case !oraclePrefix(cloud, segs, scopeSegs):
			why("the scope does not prefix the path %q", segs)
		}
	}

	// Usable.
	if e.State == store.StateRejected {
		why("the entry is rejected")
	}
	if exp, ok := oracleExpiry(e.Expires); ok && !fzNow.Before(exp) {
		why("the entry expired %s", e.Expires)
	}
	if clean && len(segs) > 0 {
		repo := oracleRepo(cloud, segs)
		for _, p := range e.RejectedFor {
			r, _ := oracleSegments(cloud, p)
			if len(r) == len(repo) && oraclePrefix(cloud, repo, r) {
				why("the entry is rejected for %s", p)
			}
		}
	}
	fixed := e.Kind != store.KindStored &&
		(e.Username == helper.UserAccessToken || e.Username == helper.UserAPIToken || e.AuthType != "")
	if q.HasUsername {
		switch {
		case e.Kind == store.KindStored && (!e.UsernameSet || !oracleSameUser(cloud, e.Username, q.Username)):
			why("stored for username %q (set %v)", e.Username, e.UsernameSet)
		case e.Kind != store.KindStored && !fixed && q.Username != "" && !oracleSameUser(cloud, e.Username, q.Username):
			why("added for username %q", e.Username)
		}
	}

	// What goes on the wire.
	if e.AuthType != "" {
		if !q.HasCapability("authtype") {
			why("Bearer without capability[]=authtype")
		}
		if a.AuthType != e.AuthType {
			why("authtype %q, want %q", a.AuthType, e.AuthType)
		}
	} else {
		if a.AuthType != "" {
			why("authtype %q for a password", a.AuthType)
		}
		if e.Kind != store.KindStored || e.UsernameSet {
			if !a.HasUsername || a.Username != e.Username {
				why("username %q (set %v), want %q", a.Username, a.HasUsername, e.Username)
			}
		} else if a.HasUsername {
			why("a username %q for an entry stored without one", a.Username)
		}
	}
	wantExpiry := int64(0)
	if exp, ok := oracleExpiry(e.Expires); ok {
		wantExpiry = exp.Unix()
	}
	if a.PasswordExpiryUTC != wantExpiry {
		why("password_expiry_utc %d, want %d", a.PasswordExpiryUTC, wantExpiry)
	}
}

// oracleLower lower-cases ASCII letters only: Unicode case mapping would
// fold look-alikes such as U+212A KELVIN SIGN or U+017F LONG S into them.
func oracleLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// oracleSegments splits a path as the README reads it: slashes at either
// end do not count, a trailing ".git" on the repository segment (Cloud's
// second, Data Center's after scm/KEY) is ignored, and a path with an
// empty, '.' or '..' segment (the repository's also after dropping
// ".git"; and what comes before a ';' counts, as Tomcat reads "..;x"), an
// escape, a backslash, '?', '#' or a control character is unsafe.
func oracleSegments(cloud bool, p string) ([]string, bool) {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil, true
	}
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if strings.ContainsAny(s, "%\\?#\x7f") || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' }) {
			return nil, false
		}
		if name, _, _ := strings.Cut(s, ";"); name == "" || name == "." || name == ".." {
			return nil, false
		}
		segs = append(segs, s)
	}
	repo := 1
	if !cloud {
		repo = slices.Index(segs, "scm") + 2
		if repo < 2 {
			repo = -1
		}
	}
	if repo >= 0 && repo < len(segs) {
		v := strings.TrimSuffix(segs[repo], ".git")
		if name, _, _ := strings.Cut(v, ";"); name == "" || name == "." || name == ".." {
			return nil, false
		}
		segs[repo] = v
	}
	return segs, true
}

// oraclePrefix reports whether prefix covers segs: Cloud paths compare
// without ASCII case, Data Center project keys (after "scm", but not a
// "~user" space) too, the rest of a Data Center path exactly.
func oraclePrefix(cloud bool, segs, prefix []string) bool {
	if len(prefix) > len(segs) {
		return false
	}
	for i, p := range prefix {
		fold := cloud || (i > 0 && prefix[i-1] == "scm" && !strings.HasPrefix(p, "~"))
		if fold && oracleLower(p) != oracleLower(segs[i]) || !fold && p != segs[i] {
			return false
		}
	}
	return true
}

// oracleRepo is the repository part of a path: Cloud's workspace/repo, a
// Data Center [context/]scm/KEY/repo; anything after it is an endpoint.
func oracleRepo(cloud bool, segs []string) []string {
	n := 2
	if !cloud {
		n = len(segs)
		if i := slices.Index(segs, "scm"); i >= 0 {
			n = i + 3
		}
	}
	return segs[:min(n, len(segs))]
}

func oracleSameUser(cloud bool, stored, asked string) bool {
	if cloud {
		return oracleLower(stored) == oracleLower(asked)
	}
	return stored == asked
}

func oracleExpiry(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	return time.Time{}, true // unreadable: treated as long expired
}
