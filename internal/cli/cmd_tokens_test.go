package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// The command line of create, rotate and revoke where no server is
// reached: every mistake is one line on stderr, nothing on stdout, the
// right exit code, and nothing stored changes. (The server's side is
// tested in helper and e2e.)
func TestTokenCommandsRefuse(t *testing.T) {
	t.Parallel()
	const (
		dc       = "https://bb.example.com/scm/PRJ/repo.git"
		password = "hunter2-but-longer-0001"
	)
	seed := func(f *fixture) (handAdded, created string) {
		mutateIndex(t, f, func(ix *store.Index) {
			ix.Hosts = map[string]store.HostConfig{"bb.example.com": {Flavor: "datacenter"}}
		})
		handAdded = f.add("BBDC-handaddedxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx1", "https://bb.example.com/scm/PRJ/other.git")
		created = f.add("BBDC-createdxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx2", "https://bb.example.com/scm/PRJ/third.git")
		mutateIndex(t, f, func(ix *store.Index) {
			e, _ := ix.Find(created)
			e.Server = &store.ServerToken{ID: "1001", Name: "n", API: "https://bb.example.com", Owner: "projects/PRJ/repos/third", Permissions: []string{"REPO_WRITE"}, By: "alice", Pending: "n (rotated x)"}
		})
		return handAdded, created
	}
	tests := []struct {
		name  string
		stdin string
		args  func(hand, created string) []string
		code  int
		want  string
	}{
		{"create without URL", "", func(_, _ string) []string { return []string{"create"} }, ExitUsage, "usage: git-credential-bbtoken create URL"},
		{"create with two URLs", "", func(_, _ string) []string { return []string{"create", dc, dc} }, ExitUsage, "usage:"},
		{"create with a Cloud kind", "", func(_, _ string) []string { return []string{"create", dc, "--kind", "workspace"} }, ExitUsage, "personal, project or repository"},
		{"create with zero days", "", func(_, _ string) []string { return []string{"create", dc, "--expiry-days", "0"} }, ExitUsage, "--expiry-days"},
		{"create with days not a number", "", func(_, _ string) []string { return []string{"create", dc, "--expiry-days", "90d"} }, ExitUsage, "--expiry-days"},
		{"create with a token as URL", "", func(_, _ string) []string { return []string{"create", repoTok} }, ExitUsage, "looks like a token"},
		{"create on Cloud", "", func(_, _ string) []string { return []string{"create", "https://bitbucket.org/ws/repo"} }, ExitError, "no API for creating or rotating tokens: make the token at https://bitbucket.org/ws/repo/admin/access-tokens"},
		{"create without username or login", password + "\n", func(_, _ string) []string { return []string{"create", dc} }, ExitError, "--username"},
		{"create without a password", "", func(_, _ string) []string { return []string{"create", dc, "--username", "alice"} }, ExitError, "no password for alice on stdin"},
		{"create with empty permissions", password + "\n", func(_, _ string) []string {
			return []string{"create", dc, "--username", "alice", "--permissions", " , "}
		}, ExitUsage, "--permissions is empty"},
		{"create with a name like a token", password + "\n", func(_, _ string) []string { return []string{"create", dc, "--username", "alice", "--name", repoTok} }, ExitError, "invalid name: the name looks like a token"},
		{"create with an unknown permission", password + "\n", func(_, _ string) []string {
			return []string{"create", dc, "--username", "alice", "--permissions", "REPO_READ,REPO_GOD"}
		}, ExitError, `invalid permissions: "REPO_GOD"`},
		{"create for a slot a created token holds", password + "\n", func(_, _ string) []string {
			return []string{"create", "https://bb.example.com/scm/PRJ/third.git", "--username", "alice"}
		}, ExitError, "rotate"},
		{"create with a token as username", password + "\n", func(_, _ string) []string { return []string{"create", dc, "--username", repoTok} }, ExitError, "looks like a token"},
		{"rotate with a token as argument", password + "\n", func(_, _ string) []string { return []string{"rotate", repoTok} }, ExitUsage, "looks like a token"},
		{"revoke with a token as argument", password + "\n", func(_, _ string) []string { return []string{"revoke", "BBDC-" + strings.Repeat("x", 44)} }, ExitUsage, "looks like a token"},
		{"rotate without argument", "", func(_, _ string) []string { return []string{"rotate"} }, ExitUsage, "usage: git-credential-bbtoken rotate ID|URL"},
		{"rotate with bad days", "", func(_, c string) []string { return []string{"rotate", c, "--expiry-days", "-3"} }, ExitUsage, "--expiry-days"},
		{"rotate a token added by hand", password + "\n", func(h, _ string) []string { return []string{"rotate", h} }, ExitError, "was added by hand"},
		{"rotate an unknown id", password + "\n", func(_, _ string) []string { return []string{"rotate", "deadbeef"} }, ExitError, "no such entry"},
		{"rotate without a password", "", func(_, c string) []string { return []string{"rotate", c} }, ExitError, "no password for alice"},
		{"revoke by URL, added by hand", password + "\n", func(_, _ string) []string { return []string{"revoke", "https://bb.example.com/scm/PRJ/other.git"} }, ExitError, "was added by hand"},
		{"revoke on Cloud", password + "\n", func(_, _ string) []string { return []string{"revoke", "https://bitbucket.org/ws/repo"} }, ExitError, "admin/access-tokens"},
		{"revoke with two arguments", "", func(h, c string) []string { return []string{"revoke", h, c} }, ExitUsage, "usage: git-credential-bbtoken revoke ID|URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			hand, created := seed(f)
			before := f.state()
			r := f.run(tt.stdin, tt.args(hand, created)...)
			assert.Equal(t, tt.code, r.code, r.stderr)
			assert.Empty(t, r.stdout)
			assertOneLine(t, r.stderr)
			assert.Contains(t, r.stderr, tt.want)
			assert.NotContains(t, r.stderr, password)
			assertUnchanged(t, before, f.state())
		})
	}
}

// TestRepairUnfinishedRotationNeedsPassword: repair finds the interrupted
// rotation, and without the password says so and fails, changing nothing
// of it.
func TestRepairUnfinishedRotationNeedsPassword(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mutateIndex(t, f, func(ix *store.Index) {
		ix.Hosts = map[string]store.HostConfig{"bb.example.com": {Flavor: "datacenter"}}
	})
	id := f.add("BBDC-createdxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx2", "https://bb.example.com/scm/PRJ/third.git")
	mutateIndex(t, f, func(ix *store.Index) {
		e, _ := ix.Find(id)
		e.Server = &store.ServerToken{ID: "1001", Name: "n", API: "https://bb.example.com", Owner: "projects/PRJ/repos/third", By: "alice", Pending: "n (rotated x)"}
	})
	before := f.state()
	r := f.run("", "repair")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stdout, "the rotation of "+id+" (repository https://bb.example.com/scm/PRJ/third) is unfinished: ")
	assert.Contains(t, r.stdout, "no password for alice")
	assertUnchanged(t, before, f.state())
	dry := f.run("", "repair", "--dry-run")
	assert.Contains(t, dry.stdout, "would finish the rotation of "+id)
	assert.Equal(t, ExitError, dry.code, "a dry run with work left says it needs attention")
}

func mutateIndex(t *testing.T, f *fixture, fn func(ix *store.Index)) {
	t.Helper()
	s := &store.Store{Dir: f.dir, Secrets: f.secrets}
	require.NoError(t, s.Update(context.Background(), func(tx *store.Tx) error {
		fn(tx.Index)
		tx.Changed()
		return nil
	}))
}

func TestUsageListsTokenCommands(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"create", "rotate", "revoke"} {
		assert.Contains(t, usage, "git-credential-bbtoken "+c+" ")
		assert.True(t, strings.HasPrefix(commandUsage[c], "usage: git-credential-bbtoken "+c+" "), c)
	}
}

// TestGraceOnlyWhereItCounts: a bad grace setting stops rotate and
// repair, which use it, and nothing else.
func TestGraceOnlyWhereItCounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.getenv[rotateGraceVar] = "soon"
	r := f.run("", "rotate", "deadbeef")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.stderr, rotateGraceVar)
	r = f.run("", "revoke", "deadbeef")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stderr, `no such entry with id "deadbeef"`)
}
