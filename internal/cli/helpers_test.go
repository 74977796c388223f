package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Tokens used throughout. Each is at least 16 bytes so that its mask shows
// the last four characters, and each ends in a distinct tail.
const (
	repoTok = "ATCTT3xFfGF0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yrepoTokenAAAA1111" // Cloud access token (repository)
	wsTok   = "ATCTT3xFfGF0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yworkspaceTokB2222" // Cloud access token (workspace)
	apiTok  = "ATATT3xFfGF0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yapiTokenCCCCC3333" // Atlassian API token
	dcTok   = "BBDC-Zq8vR2mK9tW4dataCenterTokenDDDD4444"                     // Data Center HTTP access token
	typedPw = "typed-at-the-prompt-EEEE5555"                                 // what a user typed at git's prompt
	appPw   = "ATBB8sfPvFFg3rWkKEHWq6666"                                    // a dead Bitbucket app password
)

// fixedNow is "now" for in-process runs unless a test moves it.
var fixedNow = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

func newSecrets() *memory.Backend { return memory.New() }

// fixture is one user's configuration: a config directory, a memory
// keyring and a clock.
type fixture struct {
	t       *testing.T
	dir     string
	secrets *memory.Backend
	now     time.Time
	getenv  map[string]string
	wd      string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return &fixture{t: t, dir: t.TempDir(), secrets: newSecrets(), now: fixedNow, getenv: map[string]string{}, wd: t.TempDir()}
}

type result struct {
	code           int
	stdout, stderr string
}

func (f *fixture) env(stdin io.Reader, args []string) (Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	getenv := maps.Clone(f.getenv)
	return Env{
		Args:       args,
		Stdin:      stdin,
		Stdout:     &out,
		Stderr:     &errb,
		Getenv:     func(k string) string { return getenv[k] },
		Dir:        f.wd,
		ConfigDir:  f.dir,
		Secrets:    f.secrets,
		Executable: "/usr/local/bin/git-credential-bbtoken",
		Now:        func() time.Time { return f.now },
	}, &out, &errb
}

// run runs one command in process with stdin.
func (f *fixture) run(stdin string, args ...string) result {
	return f.runWith(nil, stdin, args...)
}

// runWith lets a test adjust the Env before the run.
func (f *fixture) runWith(mod func(*Env), stdin string, args ...string) result {
	f.t.Helper()
	env, out, errb := f.env(strings.NewReader(stdin), args)
	if mod != nil {
		mod(&env)
	}
	code := Main(env)
	return result{code, out.String(), errb.String()}
}

// add adds a token and returns its id.
func (f *fixture) add(token string, args ...string) string {
	f.t.Helper()
	r := f.run(token+"\n", append([]string{"add"}, args...)...)
	require.Equal(f.t, ExitOK, r.code, "add %v: %s", args, r.stderr)
	require.Regexp(f.t, `^[0-9a-f]{8}\n$`, r.stdout)
	return strings.TrimSpace(r.stdout)
}

// state is everything a run may change.
type state struct {
	index   []byte // nil when there is no index file
	secrets map[string]string
}

func (f *fixture) state() state {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, store.IndexFile))
	if errors.Is(err, os.ErrNotExist) {
		b = nil
	} else {
		require.NoError(f.t, err)
	}
	return state{b, f.secrets.Snapshot()}
}

func (f *fixture) index() *store.Index {
	f.t.Helper()
	ix, err := (&store.Store{Dir: f.dir, Secrets: f.secrets}).Load()
	require.NoError(f.t, err)
	return ix
}

func (f *fixture) entry(id string) store.Entry {
	f.t.Helper()
	e, ok := f.index().Find(id)
	require.True(f.t, ok, "entry %s", id)
	return *e
}

// assertUnchanged checks that a run changed no stored data.
func assertUnchanged(t *testing.T, before, after state) {
	t.Helper()
	assert.Equal(t, string(before.index), string(after.index), "index file changed")
	assert.Equal(t, before.secrets, after.secrets, "keyring changed")
}

// assertOneLine checks that s is exactly one non-empty line.
func assertOneLine(t *testing.T, s string) {
	t.Helper()
	assert.True(t, strings.HasSuffix(s, "\n") && strings.Count(s, "\n") == 1 && len(s) > 1,
		"want exactly one line on stderr, got %q", s)
}

// gitEnv is an environment for git that sees no user or system config.
func gitEnv(home string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}
	return append(env, extra...)
}

// git runs the real git binary with env and stdin, returning its output.
func runGit(t *testing.T, env []string, dir, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = errors.Join(err, errors.New(errb.String()))
	}
	return out.String(), err
}

func mustGit(t *testing.T, env []string, dir string, args ...string) string {
	t.Helper()
	out, err := runGit(t, env, dir, "", args...)
	require.NoError(t, err, "git %v", args)
	return out
}

func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
}
