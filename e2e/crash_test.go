package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/crashpoint"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
	"github.com/bbtoken/git-credential-bbtoken/internal/testkeyring"
)

// startAndKill starts the binary for o, sends SIGKILL after delay and
// reports whether the kill ended it (false: it had already exited, and
// res.code is its exit code).
func (f *fixture) startAndKill(o op, extraEnv []string, delay time.Duration) (res opResult, killed bool) {
	cmd := exec.Command(helperBin, o.argv...)
	cmd.Dir = f.home
	cmd.Env = append(slices.Clone(f.env), extraEnv...)
	cmd.Stdin = strings.NewReader(o.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	res = opResult{op: o}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		res.err = fmt.Errorf("starting %q: %v", o.argv, err)
		return res, false
	}
	time.Sleep(delay)
	// A process that has exited but was not waited for is a zombie: the
	// signal is a no-op and Wait reports its own exit.
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	res.result = result{
		args:   append([]string{filepath.Base(helperBin)}, o.argv...),
		stdout: stdout.String(), stderr: stderr.String(), dur: time.Since(start),
	}
	f.mu.Lock()
	f.outputs = append(f.outputs, res.result)
	f.mu.Unlock()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return res, true
		}
		res.code = exit.ExitCode()
	case err != nil:
		res.err = fmt.Errorf("waiting for %q: %v", o.argv, err)
	}
	return res, false
}

// journal returns the ids the write journal lists, failing when it exists
// but does not parse (the helper would then forget the orphans it names).
func (f *fixture) journal(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(filepath.Dir(f.indexPath()), store.JournalFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := json.Unmarshal(data, &ids); err != nil {
		t.Fatalf("the write journal %s does not parse: %v\n%s", store.JournalFile, err, data)
	}
	return ids
}

// tempLeftovers counts temporary files a killed writer left in the
// config directory.
func (f *fixture) tempLeftovers(t testing.TB) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(filepath.Dir(f.indexPath()), ".tokens-*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// crashState is what the crash test knows about its scopes.
type crashState struct {
	f         *fixture
	mine      map[string]string // token -> scope URL
	known     map[string]bool   // entry ids ever seen
	history   map[string][]string
	storeUser string
}

// check verifies, after a kill, everything that must hold at any moment:
// the index parses, every entry has exactly one keyring item holding a
// token handed out for the entry's own scope, no scope has two entries,
// every orphan is recorded in the write journal, and get serves each
// scope exactly the secret of its entry (nothing when it has none).
func (cs *crashState) check(t testing.TB, when string, scopes []string) consistency {
	t.Helper()
	f := cs.f
	journal := f.journal(t)
	c := f.checkConsistency(t, cs.known, cs.mine, journal)
	perScope := map[string]int{}
	for _, e := range c.ix.Entries {
		perScope[e.URL]++
		if perScope[e.URL] == 2 {
			t.Errorf("%s: two entries for %s", when, e.URL)
		}
		if sec, ok := c.secretOf(e.ID); ok && cs.mine[sec] != e.URL {
			whose := cs.mine[sec]
			if whose == "" {
				whose = "no scope: garbage"
			}
			t.Errorf("%s: entry %s for %s holds %s, a token for %s", when, e.ID, e.URL, mask(sec), whose)
		}
	}
	for _, it := range c.orphans {
		if !slices.Contains(journal, it.id) && !slices.Contains(journal, "-"+it.id) {
			t.Errorf("%s: orphaned keyring item %s (a token for %s) is not in the write journal %v: neither the next write nor repair would delete it",
				when, it.id, cs.mine[it.secret], journal)
		}
	}
	var gets []op
	for _, s := range scopes {
		gets = append(gets, f.getOp(s))
	}
	res, _ := f.runParallel(gets, len(gets), nil)
	for _, r := range res {
		if r.err != nil || r.code != 0 {
			t.Errorf("%s: get %s: %v %s", when, r.scope, r.err, r.result)
			continue
		}
		a, err := parseAnswer(r.stdout)
		if err != nil {
			t.Errorf("%s: get %s: %v", when, r.scope, err)
			continue
		}
		var wantSec, wantUser string
		for _, e := range c.ix.Entries {
			if e.URL == f.url(r.scope) && e.State == store.StateActive {
				wantSec, _ = c.secretOf(e.ID)
				wantUser = e.Username
			}
		}
		if (a == nil) != (wantSec == "") || (a != nil && (a.password != wantSec || a.username != wantUser)) {
			t.Errorf("%s: get %s answered %s, want %s", when, r.scope, describe(a, cs.mine), describeWant(wantUser, wantSec))
		}
	}
	return c
}

// checkSurviving is check after a kill. gnome-keyring 42 itself can abort
// when a client is killed in the middle of a call (a glib assertion on the
// vanished client, seen in its own log), at once or a few milliseconds
// later, during the check: that is its bug, not ours, and the keyring file
// it leaves is intact. The daemon is then started again and the check run
// once more against it.
func (cs *crashState) checkSurviving(t *testing.T, when string, scopes []string, restarts *int) consistency {
	t.Helper()
	if !testkeyring.Alive() && testkeyring.Restart(t) {
		*restarts++
	}
	rec := &recorder{TB: t}
	c := cs.check(rec, when, scopes)
	if len(rec.errs) == 0 {
		return c
	}
	if !testkeyring.Alive() && testkeyring.Restart(t) {
		*restarts++
		return cs.check(t, when+" (checked again after the keyring daemon's restart)", scopes)
	}
	for _, e := range rec.errs {
		t.Error(e)
	}
	return c
}

// recorder keeps a check's errors for checkSurviving to decide on.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Error(args ...any) { r.errs = append(r.errs, fmt.Sprint(args...)) }

func describeWant(user, secret string) string {
	if secret == "" {
		return "nothing"
	}
	return user + " " + mask(secret)
}

// repairLines sorts repair's stdout into the ids of each kind of line.
type repairLines struct {
	removals                  []string // entries a killed process was removing
	orphans, unknown, missing []string
	consistent                bool
	other                     []string
}

func parseRepair(stdout string) repairLines {
	var r repairLines
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	for i, l := range lines {
		fields := strings.Fields(l)
		switch {
		case l == "":
		case strings.HasPrefix(l, "would delete orphaned secret ") || strings.HasPrefix(l, "deleted orphaned secret "):
			r.orphans = append(r.orphans, fields[slices.Index(fields, "secret")+1])
		case strings.HasPrefix(l, "would complete the interrupted removal of entry ") || strings.HasPrefix(l, "completed the interrupted removal of entry "):
			r.removals = append(r.removals, fields[len(fields)-1])
		case strings.HasPrefix(l, "unknown keyring item "):
			r.unknown = append(r.unknown, fields[3])
		case strings.HasPrefix(l, "entry ") && strings.Contains(l, "has no secret"):
			r.missing = append(r.missing, fields[1])
		case strings.HasPrefix(l, "consistent:") && i == len(lines)-1:
			r.consistent = true
		default:
			r.other = append(r.other, l)
		}
	}
	return r
}

// checkRepair runs `repair --dry-run` and `repair` and checks they find
// exactly the test's orphans, the dry run deletes nothing, and the repair
// leaves the index and keyring consistent. Keyring items of other config
// directories (other tests, other packages) are "unknown" to it: they may
// make it exit 1, but none may be this test's.
func (cs *crashState) checkRepair(t *testing.T, when string, scopes []string) (deleted int) {
	t.Helper()
	f := cs.f
	before := cs.check(t, when+", before repair", scopes)
	var orphanIDs []string
	for _, it := range before.orphans {
		orphanIDs = append(orphanIDs, it.id)
	}
	slices.Sort(orphanIDs)
	// Entries a killed process was removing (journaled "-ID", the entry
	// still there): repair must report them, then complete the removal.
	journal := f.journal(t)
	var removalIDs []string
	for _, j := range journal {
		if id, ok := strings.CutPrefix(j, "-"); ok && before.ix.HasID(id) {
			removalIDs = append(removalIDs, id)
		}
	}
	slices.Sort(removalIDs)
	for _, dry := range []bool{true, false} {
		argv := []string{"repair"}
		name := "repair"
		if dry {
			argv = append(argv, "--dry-run")
			name = "repair --dry-run"
		}
		r := f.runOp(op{name: "repair", argv: argv}, nil)
		if r.err != nil {
			t.Fatalf("%s: %s: %v", when, name, r.err)
		}
		lines := parseRepair(r.stdout)
		slices.Sort(lines.orphans)
		if !slices.Equal(lines.orphans, orphanIDs) {
			t.Errorf("%s: %s reports orphans %v, want this test's %v: %s", when, name, lines.orphans, orphanIDs, r.result)
		}
		for _, id := range lines.unknown {
			if cs.known[id] {
				t.Errorf("%s: %s calls this test's item %s unknown (not journaled)", when, name, id)
			}
		}
		if len(lines.missing) > 0 || len(lines.other) > 0 {
			t.Errorf("%s: %s reports entries without secrets %v or unexpected lines %q", when, name, lines.missing, lines.other)
		}
		slices.Sort(lines.removals)
		if !slices.Equal(lines.removals, removalIDs) {
			t.Errorf("%s: %s reports interrupted removals %v, want %v: %s", when, name, lines.removals, removalIDs, r.result)
		}
		foreign := len(lines.unknown) > 0
		needs := foreign || (dry && len(orphanIDs)+len(removalIDs) > 0)
		switch {
		case !needs && (r.code != 0 || !lines.consistent):
			t.Errorf("%s: %s: want exit 0 ending with a consistent: line: %s", when, name, r.result)
		case needs && (r.code != 1 || lines.consistent):
			t.Errorf("%s: %s: want exit 1 (orphans in a dry run, or other directories' items): %s", when, name, r.result)
		}
		removing := journal
		if !dry {
			removing = nil
		}
		after := f.checkConsistency(t, cs.known, cs.mine, removing)
		if !dry {
			for _, id := range removalIDs {
				if after.ix.HasID(id) {
					t.Errorf("%s: repair left the interrupted removal of %s unfinished", when, id)
				}
			}
		}
		var left []string
		for _, it := range after.orphans {
			left = append(left, it.id)
		}
		slices.Sort(left)
		if dry && !slices.Equal(left, orphanIDs) {
			t.Errorf("%s: %s changed the orphans from %v to %v", when, name, orphanIDs, left)
		}
		if !dry && len(left) > 0 {
			t.Errorf("%s: after repair, orphans %v are still in the keyring", when, left)
		}
	}
	if j := f.journal(t); len(j) > 0 {
		t.Errorf("%s: after repair the write journal still lists %v", when, j)
	}
	cs.check(t, when+", after repair", scopes)
	return len(orphanIDs)
}

// TestCrashDuringWrites kills the binary with SIGKILL at random moments of
// add, store, erase and remove (inside keyring calls too, which the named
// steps of TestCrashAtEveryStep never are), and after every kill checks
// that the index parses and get serves each scope exactly the secret
// stored for it (never another scope's token, never an orphan). Orphaned
// secrets must be in the write journal, gone after the next write that
// runs to completion, and found by `repair --dry-run` and deleted by
// `repair`.
//
// The delays are drawn from up to 1.5 times how long each operation takes
// to complete on this machine (measured first), so that a fast and a slow
// machine both kill across the whole run; how many kills land is logged,
// not asserted (the steps that must be reached are TestCrashAtEveryStep's).
//
// Not parallel: repair sees every keyring item of the service.
func TestCrashDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process crash suite: not in the quick tier")
	}
	const (
		iterations  = 160 // 40 per operation
		checkpoints = 4
		storeUser   = "crash-user"
	)
	f := newFixture(t, fixtureOptions{})
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BBTOKEN_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set BBTOKEN_CRASH_SEED to repeat the choices; kill timing still varies)", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))
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
	addScopes := []string{"crash/a0", "crash/a1", "crash/a2", "crash/a3"}
	storeScopes := []string{"crash/s0", "crash/s1", "crash/s2", "crash/s3"}
	// The anchor is never touched: erase always finds something on the
	// host (so it writes), and get must serve it throughout.
	const anchor = "crash/anchor"
	scopes := slices.Concat(addScopes, storeScopes, []string{anchor})

	for _, s := range append(slices.Clone(addScopes), anchor) {
		r := f.runOp(f.addOp(s, token(s)), env)
		if r.err != nil || r.code != 0 {
			t.Fatalf("setup: %v %s", r.err, r.result)
		}
		cs.known[strings.TrimSpace(r.stdout)] = true
	}
	for _, s := range storeScopes {
		r := f.runOp(f.storeOp(s, storeUser, token(s)), env)
		if r.err != nil || r.code != 0 {
			t.Fatalf("setup: %v %s", r.err, r.result)
		}
	}
	c := cs.check(t, "after setup", scopes)

	// current is the secret of the scope's entry in the last snapshot, or
	// the scope's latest token.
	current := func(c consistency, s string) (string, string) {
		for _, e := range c.ix.Entries {
			if e.URL == f.url(s) {
				sec, _ := c.secretOf(e.ID)
				return sec, e.ID
			}
		}
		h := cs.history[s]
		return h[len(h)-1], ""
	}
	next := func(kind string, c consistency) op {
		switch kind {
		case "add":
			s := addScopes[rng.IntN(len(addScopes))]
			return f.addOp(s, token(s))
		case "store":
			s := storeScopes[rng.IntN(len(storeScopes))]
			return f.storeOp(s, storeUser, token(s))
		case "erase":
			if rng.IntN(2) == 0 {
				s := addScopes[rng.IntN(len(addScopes))]
				sec, _ := current(c, s)
				return f.eraseOp(s, userAccess, sec)
			}
			s := storeScopes[rng.IntN(len(storeScopes))]
			sec, _ := current(c, s)
			return f.eraseOp(s, storeUser, sec)
		default:
			s := slices.Concat(addScopes, storeScopes)[rng.IntN(len(addScopes)+len(storeScopes))]
			_, id := current(c, s)
			if rng.IntN(2) == 0 {
				id = ""
			}
			return f.removeOp(s, id)
		}
	}

	kinds := []string{"add", "store", "erase", "remove"}
	// How long each kind takes here, completed (the median of three).
	maxDelay := map[string]time.Duration{}
	for _, kind := range kinds {
		var took []time.Duration
		for range 3 {
			o := next(kind, c)
			r := f.runOp(o, env)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if kind == "add" && r.stdout != "" {
				cs.known[strings.TrimSpace(r.stdout)] = true
			}
			took = append(took, r.dur)
			c = cs.check(t, "while measuring "+kind, scopes)
		}
		slices.Sort(took)
		maxDelay[kind] = took[1] * 3 / 2
	}
	t.Logf("kill delays drawn up to: add %s, store %s, erase %s, remove %s",
		maxDelay["add"].Round(100*time.Microsecond), maxDelay["store"].Round(100*time.Microsecond),
		maxDelay["erase"].Round(100*time.Microsecond), maxDelay["remove"].Round(100*time.Microsecond))
	kills := map[string]int{}
	completed := map[string]int{}
	var delays []time.Duration
	orphansLeft, cleanedByWrite, cleanedByRepair, maxOrphans := 0, 0, 0, 0
	daemonRestarts := 0
	prev := map[string]bool{}
	// observe counts orphans appearing after a kill and disappearing
	// after a later write.
	observe := func(c consistency) {
		now := map[string]bool{}
		for _, it := range c.orphans {
			now[it.id] = true
			if !prev[it.id] {
				orphansLeft++
			}
		}
		for id := range prev {
			if !now[id] {
				cleanedByWrite++
			}
		}
		maxOrphans = max(maxOrphans, len(now))
		prev = now
	}
	began := time.Now()
	for i := range iterations {
		kind := kinds[i%len(kinds)]
		o := next(kind, c)
		delay := time.Duration(rng.Int64N(int64(maxDelay[kind]) + 1))
		r, killed := f.startAndKill(o, env, delay)
		if r.err != nil {
			t.Fatalf("iteration %d: %v", i, r.err)
		}
		when := fmt.Sprintf("iteration %d, %s %s killed after %s", i, o.name, o.scope, delay.Round(100*time.Microsecond))
		if killed {
			kills[kind]++
			delays = append(delays, delay)
		} else {
			completed[kind]++
			when = fmt.Sprintf("iteration %d, %s %s completed in %s", i, o.name, o.scope, r.dur.Round(100*time.Microsecond))
			ok := r.code == 0 || (kind == "remove" && r.code == 1 && strings.Contains(r.stderr, "no such entry"))
			if !ok {
				t.Errorf("%s: %s", when, r.result)
			}
		}
		if kind == "add" && r.stdout != "" {
			cs.known[strings.TrimSpace(r.stdout)] = true
		}
		// gnome-keyring 42 itself can abort when a client is killed in
		// the middle of a call (a glib assertion): that is its bug, not
		// ours, and the keyring file it leaves is intact. Start it again
		// and go on checking our invariants against it.
		c = cs.checkSurviving(t, when, scopes, &daemonRestarts)
		observe(c)
		if !killed && len(c.orphans) > 0 {
			var ids []string
			for _, it := range c.orphans {
				ids = append(ids, it.id)
			}
			t.Errorf("%s: a write ran to completion, yet orphans %v are still in the keyring", when, ids)
		}
		if t.Failed() {
			t.Fatalf("stopping after the first failing iteration (%s)", when)
		}
		if (i+1)%(iterations/checkpoints) == 0 {
			// Make sure repair has a crash leftover to deal with: an add
			// killed once its secret is in the keyring, before its entry.
			if len(c.orphans) == 0 {
				s := addScopes[rng.IntN(len(addScopes))]
				r, stopped := f.stopAndKill(t, f.addOp(s, token(s)), env, crashpoint.SecretWritten)
				if r.err != nil || !stopped {
					t.Fatalf("checkpoint %d: add %s did not stop once its secret was written (%v): %s", i, s, r.err, r.result)
				}
				c = cs.checkSurviving(t, fmt.Sprintf("checkpoint %d, add %s killed once its secret was written", i, s), scopes, &daemonRestarts)
				observe(c)
				if len(c.orphans) == 0 {
					t.Errorf("checkpoint %d: an add killed after writing its secret left no orphan", i)
				}
			}
			cleanedByRepair += cs.checkRepair(t, fmt.Sprintf("checkpoint after iteration %d", i), scopes)
			c = cs.check(t, fmt.Sprintf("after checkpoint %d", i), scopes)
			prev = map[string]bool{}
			if t.Failed() {
				t.FailNow()
			}
		}
	}
	total := 0
	for _, k := range kinds {
		total += kills[k]
	}
	slices.Sort(delays)
	var median time.Duration
	if len(delays) > 0 {
		median = delays[len(delays)/2]
	}
	t.Logf("%d iterations in %s: %d processes killed (add %d, store %d, erase %d, remove %d; median delay %s), %d ran to completion first (add %d, store %d, erase %d, remove %d)",
		iterations, time.Since(began).Round(time.Millisecond), total, kills["add"], kills["store"], kills["erase"], kills["remove"], median.Round(100*time.Microsecond),
		completed["add"]+completed["store"]+completed["erase"]+completed["remove"], completed["add"], completed["store"], completed["erase"], completed["remove"])
	t.Logf("orphaned secrets: %d left by kills (at most %d at once), %d deleted by the next write, %d by repair; none ever served; %d temp file(s) left in the config directory by killed writers",
		orphansLeft, maxOrphans, cleanedByWrite, cleanedByRepair, f.tempLeftovers(t))
	t.Logf("final index: %d entries, each with exactly one keyring item", len(c.ix.Entries))
	if daemonRestarts > 0 {
		t.Logf("gnome-keyring-daemon aborted and was restarted %d time(s) (its own bug when a client is killed mid-call)", daemonRestarts)
	}
}
