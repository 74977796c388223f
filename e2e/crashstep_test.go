package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/crashpoint"
)

// stopAndKill runs the binary for o with the crash point step armed: the
// process says so on file descriptor 3 when it gets there and waits, and
// is then killed with SIGKILL. stopped is false when it exited without
// reaching the step (its exit code is in res.code). Where the kill lands
// does not depend on the machine's speed.
func (f *fixture) stopAndKill(t testing.TB, o op, extraEnv []string, step string) (res opResult, stopped bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, helperBin, o.argv...)
	cmd.Dir = f.home
	cmd.Env = append(slices.Concat(f.env, extraEnv), crashpoint.EnvVar+"="+step)
	cmd.Stdin = strings.NewReader(o.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	there, tell, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{tell} // its descriptor 3
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q: %v", o.argv, err)
	}
	tell.Close()
	// A line when it reaches the step; end of file when it exits first.
	line, _ := bufio.NewReader(there).ReadString('\n')
	there.Close()
	if stopped = line == step+"\n"; stopped {
		_ = cmd.Process.Kill()
	}
	err = cmd.Wait()
	res = opResult{op: o, result: result{
		args:   append([]string{filepath.Base(helperBin)}, o.argv...),
		stdout: stdout.String(), stderr: stderr.String(), dur: time.Since(start),
	}}
	f.mu.Lock()
	f.outputs = append(f.outputs, res.result)
	f.mu.Unlock()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.err = fmt.Errorf("%q neither reached %s nor exited within %s (a hang): %s", o.argv, step, procTimeout, res.result)
	case stopped:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		res.err = fmt.Errorf("waiting for %q: %v", o.argv, err)
	}
	return res, stopped
}

// TestCrashAtEveryStep kills the helper at each step of each kind of
// write, reached by the process itself (see internal/crashpoint), and
// after every kill checks what TestCrashDuringWrites checks: the index
// parses, every entry has exactly one keyring item holding the token
// handed out for its own scope, every orphan is journaled, and get serves
// each scope exactly its entry's secret. A kill that leaves an orphan is
// followed by a write killed while it replays the journal. Every step of
// every kind must be reached: the test fails if one is not.
//
// Not parallel: repair sees every keyring item of the service.
func TestCrashAtEveryStep(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the Secret Service")
	}
	if testing.Short() {
		t.Skip("multi-process crash suite: not in the quick tier")
	}
	const storeUser = "step-user"
	f := newFixture(t, fixtureOptions{})
	env := []string{"GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT=5s"}
	cs := &crashState{f: f, mine: map[string]string{}, known: map[string]bool{}, history: map[string][]string{}, storeUser: storeUser}
	t.Cleanup(func() { f.cleanupKeyring(t, cs.known, cs.mine) })
	token := func(scope string) string {
		s := newSecret(t, "ATCTT3")
		cs.mine[s] = f.url(scope)
		cs.history[scope] = append(cs.history[scope], s)
		f.secrets = append(f.secrets, s)
		return s
	}
	must := func(o op) opResult {
		t.Helper()
		r := f.runOp(o, env)
		if r.err != nil || r.code != 0 {
			t.Fatalf("%s %s: %v %s", o.name, o.scope, r.err, r.result)
		}
		if o.name == "add" {
			cs.known[strings.TrimSpace(r.stdout)] = true
		}
		return r
	}
	const anchor = "step/anchor"
	must(f.addOp(anchor, token(anchor)))

	write := []string{crashpoint.Journaled, crashpoint.SecretWritten}
	replace := []string{crashpoint.DeleteJournaled, crashpoint.SecretDeleted}
	saved := []string{crashpoint.IndexSaved}
	type kind struct {
		name  string
		steps []string
		// prepare makes the scope's state before the op; op is the write
		// that is killed.
		prepare func(scope string)
		op      func(scope string) op
	}
	lastID := map[string]string{}
	kinds := []kind{
		{"add, new scope", slices.Concat(write, saved),
			func(string) {},
			func(s string) op { return f.addOp(s, token(s)) }},
		{"add, replacing a token", slices.Concat(write, replace, saved),
			func(s string) { lastID[s] = strings.TrimSpace(must(f.addOp(s, token(s))).stdout) },
			func(s string) op { return f.addOp(s, token(s)) }},
		{"store, new scope", slices.Concat(write, saved),
			func(string) {},
			func(s string) op { return f.storeOp(s, storeUser, token(s)) }},
		{"store, replacing a password", slices.Concat(write, replace, saved),
			func(s string) { must(f.storeOp(s, storeUser, token(s))) },
			func(s string) op { return f.storeOp(s, storeUser, token(s)) }},
		{"erase of a stored password", slices.Concat(replace, saved),
			func(s string) { must(f.storeOp(s, storeUser, token(s))) },
			func(s string) op { h := cs.history[s]; return f.eraseOp(s, storeUser, h[len(h)-1]) }},
		{"erase of an added token (marked rejected)", saved,
			func(s string) { must(f.addOp(s, token(s))) },
			func(s string) op { h := cs.history[s]; return f.eraseOp(s, userAccess, h[len(h)-1]) }},
		{"remove by id", slices.Concat(replace, saved),
			func(s string) { lastID[s] = strings.TrimSpace(must(f.addOp(s, token(s))).stdout) },
			func(s string) op { return f.removeOp(s, lastID[s]) }},
		{"remove by URL", slices.Concat(replace, saved),
			func(s string) { must(f.addOp(s, token(s))) },
			func(s string) op { return f.removeOp(s, "") }},
	}
	restarts, n := 0, 0
	var scopes []string
	for _, k := range kinds {
		for _, step := range k.steps {
			n++
			scope := fmt.Sprintf("step/s%d", n)
			scopes = append(scopes, scope)
			k.prepare(scope)
			o := k.op(scope)
			r, stopped := f.stopAndKill(t, o, env, step)
			when := fmt.Sprintf("%s, killed at %s", k.name, step)
			if r.err != nil {
				t.Fatalf("%s: %v", when, r.err)
			}
			if !stopped {
				t.Errorf("%s: the process never got there: it exited %d: %s", when, r.code, r.result)
				continue
			}
			if o.name == "add" && r.stdout != "" {
				cs.known[strings.TrimSpace(r.stdout)] = true
			}
			c := cs.checkSurviving(t, when, []string{scope, anchor}, &restarts)
			// An orphan left here is deleted by the next write, which is
			// killed in the middle of that (the journal is replayed
			// before anything else), then by the one after.
			if len(c.orphans) > 0 {
				s2 := scope + "-next"
				scopes = append(scopes, s2)
				r, stopped := f.stopAndKill(t, f.addOp(s2, token(s2)), env, crashpoint.JournalReplayed)
				if r.err != nil || !stopped {
					t.Errorf("%s: the next write did not replay the journal (stopped %v, %v): %s", when, stopped, r.err, r.result)
				}
				cs.checkSurviving(t, when+", then the next write killed while replaying the journal", []string{scope, s2, anchor}, &restarts)
				must(f.addOp(s2, token(s2)))
				if c := cs.check(t, when+", after a write that ran to completion", []string{scope, s2, anchor}); len(c.orphans) > 0 {
					t.Errorf("%s: a write ran to completion, yet %d orphan(s) are still in the keyring", when, len(c.orphans))
				}
			}
			if t.Failed() {
				t.FailNow()
			}
		}
	}
	cs.checkRepair(t, "after every step", append(scopes, anchor))
	t.Logf("%d kills at named steps; final index: %d entries", n, len(cs.check(t, "at the end", append(scopes, anchor)).ix.Entries))
	if restarts > 0 {
		t.Logf("gnome-keyring-daemon aborted and was restarted %d time(s) (its own bug when a client goes mid-call)", restarts)
	}
}
