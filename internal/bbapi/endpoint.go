// Package bbapi checks Bitbucket tokens against the Bitbucket REST API
// (Cloud's api.bitbucket.org/2.0 and Data Center's /rest/api/1.0) for
// `git-credential-bbtoken verify`. It is never used on git's path (get,
// store, erase): git operations stay offline.
//
// A check is one GET whose answer says whether the server accepts the
// credentials and, where the server tells, what they may do:
//
//   - 2xx: the credentials work for the endpoint (see Endpoint.Proves);
//   - 401: refused: revoked, expired or mistyped (Data Center also answers
//     401 to an authenticated user without permission: that is told apart);
//   - 403: authenticated, but without the scope the endpoint needs;
//   - 404: no such repository, workspace or project (or not visible);
//   - 410: a credential Bitbucket no longer accepts (app passwords);
//   - 429: rate-limited, retried after Retry-After within a bounded wait.
//
// Bitbucket Cloud reports the credential's type and scopes in the response
// headers x-credential-type and x-oauth-scopes; Data Center reports neither.
package bbapi

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
)

// CloudAPI is the REST API of bitbucket.org.
const CloudAPI = "https://api.bitbucket.org"

// ErrBadBaseURL is returned for an API base URL that cannot be used.
var ErrBadBaseURL = errors.New("invalid API URL")

// ErrNoBaseURL means a host has no known API base URL: a Cloud-flavoured
// host other than bitbucket.org, whose API nobody configured.
var ErrNoBaseURL = errors.New("no API URL known for this host")

// ParseBaseURL checks an API base URL (what `setup --api-url` takes) and
// returns it in canonical form: https, no user information, query or
// fragment, no trailing slash; a path (a proxy's prefix, a Data Center
// context path) is kept.
func ParseBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("%w: cannot parse %q", ErrBadBaseURL, raw)
	}
	switch {
	case !bitbucket.EqualFoldASCII(u.Scheme, "https"):
		return "", fmt.Errorf("%w: %q is not an https URL (tokens never travel over plain http)", ErrBadBaseURL, raw)
	case u.User != nil:
		return "", fmt.Errorf("%w: it must not hold a user name or password", ErrBadBaseURL)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("%w: %q has a query or fragment", ErrBadBaseURL, raw)
	case u.Opaque != "":
		return "", fmt.Errorf("%w: cannot parse %q", ErrBadBaseURL, raw)
	}
	host, err := bitbucket.NormalizeHost(u.Host)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadBaseURL, err)
	}
	segs, ok := bitbucket.CleanPath(u.Path)
	if !ok || strings.Contains(u.Path, "//") {
		return "", fmt.Errorf("%w: the path of %q has empty, '.' or '..' segments or escapes", ErrBadBaseURL, raw)
	}
	if len(segs) > 0 && strings.HasSuffix(strings.TrimRight(u.Path, "/"), ".git") {
		return "", fmt.Errorf("%w: %q looks like a clone URL, not an API URL", ErrBadBaseURL, raw)
	}
	base := "https://" + host
	if len(segs) > 0 {
		base += "/" + strings.Join(segs, "/")
	}
	return base, nil
}

// DefaultBase is the API base URL of a scope when setup recorded none:
// https://api.bitbucket.org for bitbucket.org; for Data Center the
// instance's own URL, context path included (everything before /scm/ in
// the scope, or the whole path of a host-wide scope). Other Cloud-flavoured
// hosts (proxies, test servers) have none: a token is never sent to a host
// the user did not name.
func DefaultBase(f bitbucket.Flavor, sc bitbucket.Scope) (string, error) {
	if f == bitbucket.Cloud {
		if sc.Host == bitbucket.CloudHost {
			return CloudAPI, nil
		}
		return "", fmt.Errorf("%w: %s is set up as Bitbucket Cloud but is not bitbucket.org", ErrNoBaseURL, sc.Host)
	}
	ctx, _ := splitContext(sc.Segments())
	base := "https://" + sc.Host
	if len(ctx) > 0 {
		base += "/" + strings.Join(ctx, "/")
	}
	return base, nil
}

// splitContext splits a Data Center scope path into the context path and
// what follows "scm" (project or ~user, then repository).
func splitContext(segs []string) (ctx, rest []string) {
	for i, s := range segs {
		if s == "scm" {
			return segs[:i], segs[i+1:]
		}
	}
	return segs, nil
}

// Endpoint is one request that checks a token, and what its answer means.
type Endpoint struct {
	// URL is requested with GET.
	URL string
	// Proves says, for people, what a 2xx answer proves.
	Proves string
	// ReadsRepository: the endpoint needs read access to repository
	// content, so a 2xx proves the token can clone (and a refusal for
	// lack of permission that it cannot).
	ReadsRepository bool
	// AuthOnly: the endpoint needs a scope that git never needs, so a 403
	// still proves that the credentials authenticate.
	AuthOnly bool
}

// CheckEndpoint is the request that checks a token for scope sc (or, when
// a user asks about a repository inside a broader token's scope, for that
// repository) against the API at base.
//
// Bitbucket Cloud, base https://api.bitbucket.org:
//   - repository ws/repo: GET /2.0/repositories/ws/repo, which needs
//     repository read access (access tokens: repository; API tokens:
//     read:repository:bitbucket);
//   - workspace ws (workspace or project tokens, or any token asked about a
//     workspace): GET /2.0/repositories/ws?pagelen=1, the same scope;
//   - the whole host (API tokens): GET /2.0/user/workspaces?pagelen=1.
//     Bitbucket removed the cross-workspace endpoints (/2.0/repositories,
//     /2.0/workspaces, /2.0/user/permissions/...) in 2026; this one needs
//     read:workspace:bitbucket, which git does not: a 200 or a 403 both
//     prove that the e-mail and token authenticate, only x-oauth-scopes
//     tells about repositories.
//
// Bitbucket Data Center, base the instance URL with its context path:
//   - repository KEY/slug: GET /rest/api/1.0/projects/KEY/repos/slug
//     (/users/u/repos/slug for ~u), which needs REPO_READ;
//   - project KEY: GET /rest/api/1.0/projects/KEY (/users/u for ~u): the
//     token authenticates and sees the project; permissions are not told;
//   - the whole instance (personal tokens): GET
//     /rest/api/1.0/projects?limit=1 with the username and token git sends:
//     they authenticate; permissions are not told.
func CheckEndpoint(f bitbucket.Flavor, base string, sc bitbucket.Scope) (Endpoint, error) {
	base = strings.TrimRight(base, "/")
	segs := sc.Segments()
	if f == bitbucket.Cloud {
		switch len(segs) {
		case 0:
			return Endpoint{
				URL:      base + "/2.0/user/workspaces?pagelen=1",
				Proves:   "the credentials authenticate an Atlassian account",
				AuthOnly: true,
			}, nil
		case 1:
			return Endpoint{
				URL:             base + "/2.0/repositories/" + esc(segs[0]) + "?pagelen=1",
				Proves:          "the token can list the repositories of workspace " + segs[0],
				ReadsRepository: true,
			}, nil
		case 2:
			return Endpoint{
				URL:             base + "/2.0/repositories/" + esc(segs[0]) + "/" + esc(segs[1]),
				Proves:          "the token can read repository " + segs[0] + "/" + segs[1],
				ReadsRepository: true,
			}, nil
		}
		return Endpoint{}, fmt.Errorf("%w: %s is not a workspace or repository scope", bitbucket.ErrBadURL, sc)
	}
	_, rest := splitContext(segs)
	api := base + "/rest/api/1.0/"
	switch len(rest) {
	case 0:
		return Endpoint{
			URL:    api + "projects?limit=1",
			Proves: "the credentials authenticate",
		}, nil
	case 1:
		if user, ok := strings.CutPrefix(rest[0], "~"); ok {
			return Endpoint{URL: api + "users/" + esc(user), Proves: "the credentials authenticate and see user " + user}, nil
		}
		return Endpoint{URL: api + "projects/" + esc(rest[0]), Proves: "the credentials authenticate and see project " + rest[0]}, nil
	case 2:
		ep := Endpoint{Proves: "the token can read repository " + rest[0] + "/" + rest[1], ReadsRepository: true}
		if user, ok := strings.CutPrefix(rest[0], "~"); ok {
			ep.URL = api + "users/" + esc(user) + "/repos/" + esc(rest[1])
		} else {
			ep.URL = api + "projects/" + esc(rest[0]) + "/repos/" + esc(rest[1])
		}
		return ep, nil
	}
	return Endpoint{}, fmt.Errorf("%w: %s is not a project or repository scope", bitbucket.ErrBadURL, sc)
}

func esc(s string) string { return url.PathEscape(s) }

// DataCenterPath is what a Data Center scope's path names after /scm/:
// the project key (or ~user) and the repository slug, "" where the scope
// is broader.
func DataCenterPath(sc bitbucket.Scope) (project, repo string) {
	_, rest := splitContext(sc.Segments())
	if len(rest) > 0 {
		project = rest[0]
	}
	if len(rest) > 1 {
		repo = rest[1]
	}
	return project, repo
}
