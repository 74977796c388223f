package bbapi

import "slices"

// Scopes and permissions that let git clone (read) and push (write).
//
// Bitbucket Cloud access tokens (and OAuth): repository reads,
// repository:write implies it and pushes; pullrequest implies repository
// and pullrequest:write implies repository:write. repository:admin implies
// neither. API tokens: read:repository:bitbucket reads; pushing needs
// write:repository:bitbucket as well (write does not imply read).
// Data Center permissions, should a server or proxy ever report them:
// REPO_READ, PROJECT_READ and above read; REPO_WRITE, PROJECT_WRITE and
// above push.
var (
	readScopes = []string{
		"repository", "repository:write", "pullrequest", "pullrequest:write",
		"REPO_READ", "REPO_WRITE", "REPO_ADMIN", "PROJECT_READ", "PROJECT_WRITE", "PROJECT_ADMIN",
	}
	writeScopes = []string{
		"repository:write", "pullrequest:write",
		"REPO_WRITE", "REPO_ADMIN", "PROJECT_WRITE", "PROJECT_ADMIN",
	}
)

const (
	apiRead  = "read:repository:bitbucket"
	apiWrite = "write:repository:bitbucket"
)

// ScopeAccess tells from the scopes a server reported whether git can
// clone and push with them.
func ScopeAccess(scopes []string) (clone, push bool) {
	has := func(set []string) bool {
		return slices.ContainsFunc(scopes, func(s string) bool { return slices.Contains(set, s) })
	}
	clone = has(readScopes) || slices.Contains(scopes, apiRead)
	push = has(writeScopes) || (slices.Contains(scopes, apiRead) && slices.Contains(scopes, apiWrite))
	return clone, push
}

// Access tells whether git can clone and push with the token, from the
// check's outcome and the scopes the server reported; nil means unknown
// (never guessed).
func (r Result) Access(ep Endpoint) (clone, push *bool) {
	switch r.Status {
	case StatusRejected, StatusGone:
		return ptr(false), ptr(false)
	case StatusValid, StatusLackingScope:
	default:
		return nil, nil // not found, rate-limited, no answer: nothing learned
	}
	if r.Scopes != nil {
		c, p := ScopeAccess(r.Scopes)
		clone, push = ptr(c), ptr(p)
	}
	if ep.ReadsRepository {
		switch r.Status {
		case StatusValid:
			clone = ptr(true) // the endpoint itself needs read access
		case StatusLackingScope:
			clone, push = ptr(false), ptr(false) // no read access: no push either
		}
	}
	return clone, push
}

func ptr[T any](v T) *T { return &v }

// KindOf maps Bitbucket Cloud's x-credential-type to the token kinds `add`
// knows ("" when unknown).
func KindOf(credentialType string) string {
	switch credentialType {
	case "repo_access_token", "repository_access_token":
		return "repository"
	case "project_access_token":
		return "project"
	case "workspace_access_token":
		return "workspace"
	case "api_token":
		return "api"
	}
	return ""
}
