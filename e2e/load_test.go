package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// This file holds TestParallelProcesses and the helpers it shares with
// crash_test.go: running the binary without recording secret-bearing
// output, reading the Secret Service directly over D-Bus (never through
// the helper's own keyring code), and checking the index against it.

// procTimeout bounds every process the load and crash tests start.
const procTimeout = 30 * time.Second

// loadLockWait is the load test's GIT_CREDENTIAL_BBTOKEN_LOCK_TIMEOUT:
// long enough that a writer gives up only on a machine far slower than
// any seen, short enough to stay under procTimeout.
const loadLockWait = 25 * time.Second

// op is one run of the helper binary.
type op struct {
	name  string // add, store, erase, remove, get
	scope string // repository path the op is about, e.g. "ws/repo"
	argv  []string
	stdin string
	token string // the secret add or store hands over, or erase rejects
}

// opResult is what an op did.
type opResult struct {
	op
	result
	err error // a hang or a failure to start
}

// runOp runs the binary for o, bounded by procTimeout. The output of get
// (which holds secrets by design) is not recorded for the hygiene check;
// every other output is.
func (f *fixture) runOp(o op, extraEnv []string) opResult {
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, helperBin, o.argv...)
	cmd.Dir = f.home
	cmd.Env = append(slices.Clone(f.env), extraEnv...)
	cmd.Stdin = strings.NewReader(o.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res := opResult{op: o, result: result{
		args:   append([]string{filepath.Base(helperBin)}, o.argv...),
		stdout: stdout.String(), stderr: stderr.String(), dur: time.Since(start),
	}}
	if o.name != "get" {
		f.mu.Lock()
		f.outputs = append(f.outputs, res.result)
		f.mu.Unlock()
	}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.err = fmt.Errorf("timed out after %s (a hang): %s", procTimeout, res.result)
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		res.err = fmt.Errorf("running %q: %v", res.args, err)
	}
	return res
}

// runParallel runs ops with width processes at a time. The first width
// processes are released together; it returns the results in the order of
// ops and the highest number of processes that were running at once.
func (f *fixture) runParallel(ops []op, width int, extraEnv []string) ([]opResult, int) {
	results := make([]opResult, len(ops))
	next := make(chan int)
	var running, peak atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range width {
		wg.Go(func() {
			<-start
			for i := range next {
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				results[i] = f.runOp(ops[i], extraEnv)
				running.Add(-1)
			}
		})
	}
	close(start)
	for i := range ops {
		next <- i
	}
	close(next)
	wg.Wait()
	return results, int(peak.Load())
}

// host is the server's host:port, as git sends it in host=.
func (f *fixture) host() string { return strings.TrimPrefix(f.srv.URL, "https://") }

// credInput is git's description of a request for repository path repo,
// followed by extra key=value lines.
func (f *fixture) credInput(repo string, kv ...string) string {
	var b strings.Builder
	b.WriteString("protocol=https\nhost=" + f.host() + "\npath=" + repo + ".git\n")
	for _, l := range kv {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

func (f *fixture) addOp(repo, token string) op {
	return op{name: "add", scope: repo, token: token, stdin: token + "\n",
		argv: []string{"add", f.url(repo + ".git"), "--kind", "repository"}}
}

func (f *fixture) storeOp(repo, user, password string) op {
	return op{name: "store", scope: repo, token: password, argv: []string{"store"},
		stdin: f.credInput(repo, "username="+user, "password="+password)}
}

func (f *fixture) eraseOp(repo, user, password string) op {
	return op{name: "erase", scope: repo, token: password, argv: []string{"erase"},
		stdin: f.credInput(repo, "username="+user, "password="+password)}
}

func (f *fixture) getOp(repo string) op {
	return op{name: "get", scope: repo, argv: []string{"get"}, stdin: f.credInput(repo)}
}

// removeOp removes by id, or by the scope's URL when id is "".
func (f *fixture) removeOp(repo, id string) op {
	arg := id
	if arg == "" {
		arg = f.url(repo)
	}
	return op{name: "remove", scope: repo, argv: []string{"remove", arg}}
}

// answer is what get printed: nil for no answer.
type answer struct{ username, password string }

func parseAnswer(stdout string) (*answer, error) {
	if stdout == "" {
		return nil, nil
	}
	a := &answer{}
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok || seen[k] {
			return nil, fmt.Errorf("get printed a malformed or repeated line %q", redactLine(l))
		}
		seen[k] = true
		switch k {
		case "username":
			a.username = v
		case "password":
			a.password = v
		case "password_expiry_utc", "capability[]", "state[]":
		default:
			return nil, fmt.Errorf("get printed an unexpected attribute %q", k)
		}
	}
	if !seen["username"] || !seen["password"] {
		return nil, fmt.Errorf("get printed no username or no password (%d lines)", len(seen))
	}
	return a, nil
}

// redactLine keeps the key of a key=value line.
func redactLine(l string) string {
	if k, _, ok := strings.Cut(l, "="); ok {
		return k + "=****"
	}
	return fmt.Sprintf("(%d bytes)", len(l))
}

// mask shows a token as its last four characters.
func mask(s string) string {
	if len(s) <= 4 {
		return "****"
	}
	return "****" + s[len(s)-4:]
}

// keyringItem is one Secret Service item of the helper's service.
type keyringItem struct {
	path   dbus.ObjectPath
	id     string // the "username" attribute: the entry id
	secret string
}

// Secret Service API names (freedesktop.org Secret Service API 0.2).
const (
	secretsName    = "org.freedesktop.secrets"
	secretsPath    = "/org/freedesktop/secrets"
	secretsService = "org.freedesktop.Secret.Service"
	secretsItem    = "org.freedesktop.Secret.Item"
)

// secretStruct is the API's Secret: (oayays).
type secretStruct struct {
	Session     dbus.ObjectPath
	Parameters  []byte
	Value       []byte
	ContentType string
}

// keyringItems lists every item with service=git-credential-bbtoken in any
// collection, with its id and secret, straight over D-Bus (like
// `secret-tool search --all service git-credential-bbtoken`), never
// through the helper's own keyring code. Another process deleting an item
// meanwhile makes it retry.
func keyringItems(t testing.TB) []keyringItem {
	t.Helper()
	var err error
	for range 5 {
		var items []keyringItem
		if items, err = listKeyring(); err == nil {
			return items
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("listing the Secret Service items: %v", err)
	return nil
}

func listKeyring() ([]keyringItem, error) {
	conn, err := dbus.SessionBus()
	if err != nil {
		return nil, err
	}
	svc := conn.Object(secretsName, secretsPath)
	var unlocked, locked []dbus.ObjectPath
	if err := svc.Call(secretsService+".SearchItems", 0, map[string]string{"service": secrets.Service}).Store(&unlocked, &locked); err != nil {
		return nil, err
	}
	if len(locked) > 0 {
		return nil, fmt.Errorf("%d item(s) of service %s are locked: the checks need an unlocked keyring", len(locked), secrets.Service)
	}
	if len(unlocked) == 0 {
		return nil, nil
	}
	var ignored dbus.Variant
	var session dbus.ObjectPath
	if err := svc.Call(secretsService+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&ignored, &session); err != nil {
		return nil, err
	}
	defer conn.Object(secretsName, session).Call("org.freedesktop.Secret.Session.Close", 0)
	var secrets map[dbus.ObjectPath]secretStruct
	if err := svc.Call(secretsService+".GetSecrets", 0, unlocked, session).Store(&secrets); err != nil {
		return nil, err
	}
	var items []keyringItem
	for _, p := range unlocked {
		v, err := conn.Object(secretsName, p).GetProperty(secretsItem + ".Attributes")
		if err != nil {
			return nil, fmt.Errorf("item %s: %w", p, err)
		}
		attrs, ok := v.Value().(map[string]string)
		if !ok {
			return nil, fmt.Errorf("item %s: attributes of type %T", p, v.Value())
		}
		sec, ok := secrets[p]
		if !ok {
			return nil, fmt.Errorf("item %s: GetSecrets returned no secret", p)
		}
		items = append(items, keyringItem{path: p, id: attrs["username"], secret: string(sec.Value)})
	}
	return items, nil
}

// deleteKeyringItem deletes one item straight over D-Bus (cleanup only).
func deleteKeyringItem(p dbus.ObjectPath) error {
	conn, err := dbus.SessionBus()
	if err != nil {
		return err
	}
	var prompt dbus.ObjectPath
	if err := conn.Object(secretsName, p).Call(secretsItem+".Delete", 0).Store(&prompt); err != nil {
		return err
	}
	if prompt != "/" {
		return fmt.Errorf("deleting %s wants a prompt", p)
	}
	return nil
}

// rawIndex is the index file decoded independently of the store package,
// strictly: unknown top-level structure would still decode, but broken JSON
// or trailing garbage would not.
type rawIndex struct {
	Version int `json:"version"`
	Entries []struct {
		ID          string   `json:"id"`
		URL         string   `json:"url"`
		Kind        string   `json:"kind"`
		Username    string   `json:"username"`
		State       string   `json:"state"`
		RejectedFor []string `json:"rejected_for"`
	} `json:"entries"`
}

// readIndex loads the index both through the store package (what the
// helper sees) and with a plain JSON decoder, and checks they agree.
func (f *fixture) readIndex(t testing.TB) *store.Index {
	t.Helper()
	ix, err := (&store.Store{Dir: filepath.Dir(f.indexPath())}).Load()
	if err != nil {
		t.Fatalf("the index does not load: %v", err)
	}
	data, err := os.ReadFile(f.indexPath())
	if errors.Is(err, os.ErrNotExist) {
		return ix
	}
	if err != nil {
		t.Fatal(err)
	}
	var raw rawIndex
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("the index is not JSON: %v\n%s", err, data)
	}
	if dec.More() {
		t.Fatalf("the index has data after its JSON value:\n%s", data)
	}
	if raw.Version != store.IndexVersion || len(raw.Entries) != len(ix.Entries) {
		t.Fatalf("the index decodes to version %d with %d entries, the store package reads %d entries:\n%s", raw.Version, len(raw.Entries), len(ix.Entries), data)
	}
	ids := map[string]bool{}
	for i, e := range raw.Entries {
		if e.ID == "" || ids[e.ID] || e.ID != ix.Entries[i].ID {
			t.Fatalf("the index has an empty, duplicate or unreadable id %q:\n%s", e.ID, data)
		}
		ids[e.ID] = true
	}
	return ix
}

// consistency is the index compared with the keyring items of one test.
type consistency struct {
	ix      *store.Index
	byID    map[string][]keyringItem // items of the index's entries
	orphans []keyringItem            // items of this test that no entry names
}

// secretOf returns the secret of an entry that has exactly one item.
func (c consistency) secretOf(id string) (string, bool) {
	if items := c.byID[id]; len(items) == 1 {
		return items[0].secret, true
	}
	return "", false
}

// checkConsistency reads the index and the keyring and fails unless every
// entry has exactly one secret, except entries whose removal a killed
// process left recorded in the write journal ("-ID"): those may already
// have lost their secret, and the next write completes their removal. An
// item is this test's when its id was ever seen in this test (known) or
// its secret is one the test handed out (mine): other tests and processes
// share the keyring.
func (f *fixture) checkConsistency(t testing.TB, known map[string]bool, mine map[string]string, removing []string) consistency {
	t.Helper()
	c := consistency{ix: f.readIndex(t), byID: map[string][]keyringItem{}}
	for _, e := range c.ix.Entries {
		known[e.ID] = true
	}
	for _, it := range keyringItems(t) {
		if c.ix.HasID(it.id) {
			c.byID[it.id] = append(c.byID[it.id], it)
			continue
		}
		if _, ok := mine[it.secret]; ok || known[it.id] {
			c.orphans = append(c.orphans, it)
		}
	}
	for _, e := range c.ix.Entries {
		if n := len(c.byID[e.ID]); n != 1 && !(n == 0 && slices.Contains(removing, "-"+e.ID)) {
			t.Errorf("entry %s (%s %s) has %d keyring items, want exactly 1", e.ID, e.Kind, e.URL, n)
		}
	}
	return c
}

// lockTimedOut reports whether a process gave up waiting for the index
// lock: a clean failure that must have changed nothing.
func lockTimedOut(r opResult) bool {
	return r.err == nil && r.code == 1 && strings.Contains(r.stderr, "token index is locked by another process")
}

// expectation is what one scope must hold after the load test: nothing,
// or exactly one entry whose keyring secret is one of tokens (and whose id
// is id, when known).
type expectation struct {
	group  string
	absent bool
	kind   store.Kind
	user   string
	state  store.State
	tokens []string
	id     string
}

// TestParallelProcesses runs 64 helper processes at a time, several hundred
// in all, mixing add, store, erase, remove and get on disjoint and shared
// scopes against the real Secret Service, then checks that the index
// parses, every entry has exactly one secret, no secret of the test lacks
// an entry, and every effect of a process that succeeded survived (and
// none of one that failed).
//
// A writer may give up waiting for the index lock (exit 1, "locked by
// another process"): the lock wait is raised to loadLockWait so that this
// takes a machine far slower than any seen, and a writer that still gives
// up is run again once its phase is over (and logged). How many gave up is
// not asserted: that depends on the machine's speed. Any other failure
// fails the test.
//
// Not parallel with other tests: it measures its own concurrency, and 64
// processes on a small CI machine would slow the timing checks of others.
func TestParallelProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process load suite: not in the quick tier")
	}
	const (
		width     = 64 // processes at a time
		nAddKeep  = 64 // phase 1 adds on disjoint scopes that stay
		nAddRm    = 32 // phase 1 adds removed in phase 2 (half by id, half by URL)
		nAddRej   = 16 // phase 1 adds that phase 2's erase marks rejected
		nHot      = 8  // shared scopes receiving concurrent adds (and stores)
		nHotAdds  = 6  // phase 2 adds per shared scope
		nHotStore = 4  // phase 2 stores per shared stored scope
		nStKeep   = 32 // phase 1 stores that stay
		nStErase  = 32 // phase 1 stores erased in phase 2
		nStDiff   = 16 // phase 1 stores erased with another password: kept
		nAddNew   = 32 // phase 2 adds on disjoint scopes
		nGetHot   = 32 // phase 2 gets on shared scopes
		nGetKeep  = 32 // phase 2 gets on scopes nobody changes
		storeUser = "load-user"
	)
	f := newFixture(t, fixtureOptions{})
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BBTOKEN_LOAD_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set BBTOKEN_LOAD_SEED to repeat the order)", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	mine := map[string]string{} // every token handed out -> its scope URL
	known := map[string]bool{}  // every entry id ever seen
	token := func(scope string) string {
		s := newSecret(t, "ATCTT3")
		mine[s] = f.url(scope)
		f.secrets = append(f.secrets, s)
		return s
	}
	t.Cleanup(func() { f.cleanupKeyring(t, known, mine) })

	scopes := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s/r%d", prefix, i)
		}
		return out
	}
	addKeep, addRm, addRej := scopes("add-keep", nAddKeep), scopes("add-rm", nAddRm), scopes("add-rej", nAddRej)
	hot, hotSt := scopes("hot", nHot), scopes("hot-stored", nHot)
	stKeep, stErase, stDiff := scopes("st-keep", nStKeep), scopes("st-erase", nStErase), scopes("st-diff", nStDiff)
	addNew := scopes("add-new", nAddNew)
	stable := slices.Concat(addKeep, stKeep, stDiff)

	lockTimeouts := 0
	lockEnv := []string{"GIT_CREDENTIAL_BBTOKEN_LOCK_TIMEOUT=" + loadLockWait.String()}
	// rerunGaveUp runs again, one at a time, the writers of a phase that
	// gave up on the lock (which changed nothing).
	rerunGaveUp := func(phase string, res []opResult) {
		for i := range res {
			for try := 0; lockTimedOut(res[i]); try++ {
				lockTimeouts++
				t.Logf("%s: %s %s gave up on the lock after %s: run again", phase, res[i].name, res[i].scope, res[i].dur.Round(time.Millisecond))
				if try == 3 {
					t.Errorf("%s: %s %s gives up on the lock even alone: %s", phase, res[i].name, res[i].scope, res[i].result)
					break
				}
				res[i] = f.runOp(res[i].op, lockEnv)
			}
		}
	}
	// check sorts a writer's result: true when it succeeded; anything else
	// is an error.
	check := func(phase string, r opResult, okCodes ...int) bool {
		switch {
		case r.err != nil:
			t.Errorf("%s: %s %s: %v", phase, r.name, r.scope, r.err)
		case r.code == 0 || slices.Contains(okCodes, r.code):
			return true
		default:
			t.Errorf("%s: %s %s failed: %s", phase, r.name, r.scope, r.result)
		}
		return false
	}

	// Phase 1: adds and stores on disjoint scopes.
	tokenOf := map[string]string{} // scope -> its phase 1 token, or phase 2 for add-new
	var phase1 []op
	for _, s := range slices.Concat(addKeep, addRm, addRej, hot) {
		tokenOf[s] = token(s)
		phase1 = append(phase1, f.addOp(s, tokenOf[s]))
	}
	for _, s := range slices.Concat(stKeep, stErase, stDiff, hotSt) {
		tokenOf[s] = token(s)
		phase1 = append(phase1, f.storeOp(s, storeUser, tokenOf[s]))
	}
	rng.Shuffle(len(phase1), func(i, j int) { phase1[i], phase1[j] = phase1[j], phase1[i] })
	began := time.Now()
	res1, peak1 := f.runParallel(phase1, width, lockEnv)
	d1 := time.Since(began)
	rerunGaveUp("phase 1", res1)
	ok1 := map[string]bool{} // scope -> its phase 1 op succeeded
	idOf := map[string]string{}
	for _, r := range res1 {
		if !check("phase 1", r) {
			continue
		}
		ok1[r.scope] = true
		if r.name == "add" {
			id := strings.TrimSpace(r.stdout)
			idOf[r.scope] = id
			known[id] = true
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	c := f.checkConsistency(t, known, mine, nil)
	if len(c.orphans) > 0 {
		t.Errorf("after phase 1: %d keyring item(s) of this test have no entry", len(c.orphans))
	}
	for _, e := range c.ix.Entries {
		if e.Kind == store.KindStored {
			idOf[strings.TrimPrefix(e.URL, f.srv.URL+"/")] = e.ID
		}
	}
	if len(c.ix.Entries) != len(ok1) {
		t.Fatalf("after phase 1 (%d adds and stores on disjoint scopes succeeded) the index has %d entries", len(ok1), len(c.ix.Entries))
	}
	t.Logf("phase 1: %d processes (%d add, %d store), at most %d at once, in %s", len(phase1),
		len(addKeep)+len(addRm)+len(addRej)+len(hot), len(stKeep)+len(stErase)+len(stDiff)+len(hotSt), peak1, d1.Round(time.Millisecond))

	// Phase 2: everything at once, on what phase 1 made.
	var phase2 []op
	for i, s := range addRm {
		if ok1[s] {
			id := idOf[s]
			if i%2 == 1 {
				id = "" // by URL
			}
			phase2 = append(phase2, f.removeOp(s, id))
		}
	}
	for _, s := range addRej {
		if ok1[s] {
			phase2 = append(phase2, f.eraseOp(s, userAccess, tokenOf[s]))
		}
	}
	for _, s := range stErase {
		if ok1[s] {
			phase2 = append(phase2, f.eraseOp(s, storeUser, tokenOf[s]))
		}
	}
	for _, s := range stDiff {
		phase2 = append(phase2, f.eraseOp(s, storeUser, newSecret(t, "ATCTT3")))
	}
	for _, s := range hot {
		for range nHotAdds {
			phase2 = append(phase2, f.addOp(s, token(s)))
		}
		if ok1[s] {
			// Races with the replacements of the entry it names.
			phase2 = append(phase2, f.removeOp(s, idOf[s]))
		}
	}
	for _, s := range hotSt {
		for range nHotStore {
			phase2 = append(phase2, f.storeOp(s, storeUser, token(s)))
		}
	}
	for _, s := range addNew {
		tokenOf[s] = token(s)
		phase2 = append(phase2, f.addOp(s, tokenOf[s]))
	}
	for i := range nGetHot {
		if i%2 == 0 {
			phase2 = append(phase2, f.getOp(hot[i/2%nHot]))
		} else {
			phase2 = append(phase2, f.getOp(hotSt[i/2%nHot]))
		}
	}
	for range nGetKeep {
		phase2 = append(phase2, f.getOp(stable[rng.IntN(len(stable))]))
	}
	rng.Shuffle(len(phase2), func(i, j int) { phase2[i], phase2[j] = phase2[j], phase2[i] })

	began = time.Now()
	res2, peak2 := f.runParallel(phase2, width, lockEnv)
	d2 := time.Since(began)
	rerunGaveUp("phase 2", res2)
	counts := map[string]int{}
	ok2 := map[string]bool{}              // disjoint scope -> its phase 2 op succeeded
	okHot := map[string]map[string]bool{} // shared scope -> tokens of successful adds and stores
	hotAddID := map[string]string{}       // id printed by a phase 2 add -> its token
	hotRemoved := map[string]bool{}       // shared scope -> remove of its phase 1 entry succeeded
	gets := map[string]int{}
	var slowest time.Duration
	for _, r := range res2 {
		counts[r.name]++
		slowest = max(slowest, r.dur)
		isHot := slices.Contains(hot, r.scope) || slices.Contains(hotSt, r.scope)
		switch {
		case r.name == "get":
			if r.err != nil || r.code != 0 {
				t.Errorf("phase 2: get %s: %v %s", r.scope, r.err, r.result)
				continue
			}
			a, err := parseAnswer(r.stdout)
			if err != nil {
				t.Errorf("phase 2: get %s: %v", r.scope, err)
				continue
			}
			if a == nil {
				gets["empty"]++
			} else {
				gets["answered"]++
			}
			if slices.Contains(stable, r.scope) {
				want, wantUser := tokenOf[r.scope], storeUser
				if strings.HasPrefix(r.scope, "add-") {
					wantUser = userAccess
				}
				if ok1[r.scope] && (a == nil || a.password != want || a.username != wantUser) {
					t.Errorf("phase 2: get %s (nobody changes it) answered %s, want %s %s", r.scope, describe(a, mine), wantUser, mask(want))
				}
			}
			if a != nil && mine[a.password] != f.url(r.scope) {
				t.Errorf("phase 2: get %s answered %s, not a token handed out for it", r.scope, describe(a, mine))
			}
		case r.name == "remove" && isHot:
			// The entry may have been replaced already: nothing to remove.
			if check("phase 2", r, 1) && r.code == 1 && !strings.Contains(r.stderr, "no such entry") {
				t.Errorf("phase 2: remove of a replaced entry: %s", r.result)
			}
			hotRemoved[r.scope] = r.code == 0
		case !check("phase 2", r):
		case isHot:
			if okHot[r.scope] == nil {
				okHot[r.scope] = map[string]bool{}
			}
			okHot[r.scope][r.token] = true
			if r.name == "add" {
				id := strings.TrimSpace(r.stdout)
				known[id] = true
				hotAddID[id] = r.token
			}
		default:
			ok2[r.scope] = true
			if r.name == "add" {
				id := strings.TrimSpace(r.stdout)
				known[id] = true
				idOf[r.scope] = id
			}
		}
	}
	writers := len(phase1) + len(phase2) - counts["get"]
	t.Logf("phase 2: %d processes (%d add, %d store, %d erase, %d remove, %d get), at most %d at once, in %s; slowest process %s; gets answered %d, empty %d",
		len(phase2), counts["add"], counts["store"], counts["erase"], counts["remove"], counts["get"], peak2, d2.Round(time.Millisecond),
		slowest.Round(time.Millisecond), gets["answered"], gets["empty"])
	if peak1 < width || peak2 < width {
		t.Errorf("at most %d and %d processes ran at once, want %d", peak1, peak2, width)
	}
	t.Logf("%d of %d writers gave up waiting %s for the index lock and ran again alone", lockTimeouts, writers, loadLockWait)

	// What each scope must hold now.
	want := map[string]expectation{}
	added := func(group, s string, state store.State) expectation {
		return expectation{group: group, kind: store.KindRepository, user: userAccess, state: state, tokens: []string{tokenOf[s]}, id: idOf[s]}
	}
	stored := func(group string, tokens []string, id string) expectation {
		return expectation{group: group, kind: store.KindStored, user: storeUser, state: store.StateActive, tokens: tokens, id: id}
	}
	gone := func(group string) expectation { return expectation{group: group, absent: true} }
	for _, s := range addKeep {
		want[s] = cmpIf(ok1[s], added("add", s, store.StateActive), gone("add gave up"))
	}
	for _, s := range addNew {
		want[s] = cmpIf(ok2[s], added("add", s, store.StateActive), gone("add gave up"))
	}
	for _, s := range addRm {
		want[s] = cmpIf(ok1[s] && !ok2[s], added("remove gave up", s, store.StateActive), gone("add then remove"))
	}
	for _, s := range addRej {
		switch {
		case !ok1[s]:
			want[s] = gone("add gave up")
		case ok2[s]:
			want[s] = added("add then erase", s, store.StateRejected)
		default:
			want[s] = added("erase gave up", s, store.StateActive)
		}
	}
	for _, s := range slices.Concat(stKeep, stDiff) {
		want[s] = cmpIf(ok1[s], stored("store", []string{tokenOf[s]}, idOf[s]), gone("store gave up"))
	}
	for _, s := range stErase {
		want[s] = cmpIf(ok1[s] && !ok2[s], stored("erase gave up", []string{tokenOf[s]}, idOf[s]), gone("store then erase"))
	}
	for _, s := range hot {
		switch {
		case len(okHot[s]) > 0:
			want[s] = expectation{group: "shared add", kind: store.KindRepository, user: userAccess, state: store.StateActive, tokens: slices.Collect(maps.Keys(okHot[s]))}
		case ok1[s] && !hotRemoved[s]:
			want[s] = added("shared add, all gave up", s, store.StateActive)
		default:
			want[s] = gone("shared add, all gave up")
		}
	}
	for _, s := range hotSt {
		switch {
		case len(okHot[s]) > 0:
			want[s] = stored("shared store", slices.Collect(maps.Keys(okHot[s])), "")
		case ok1[s]:
			want[s] = stored("shared store, all gave up", []string{tokenOf[s]}, idOf[s])
		default:
			want[s] = gone("shared store, all gave up")
		}
	}

	// The outcome: the index, the keyring, and what get serves.
	c = f.checkConsistency(t, known, mine, nil)
	for _, it := range c.orphans {
		t.Errorf("keyring item %s (id %s, a token for %s) has no entry: an orphan after a run without crashes", it.path, it.id, mine[it.secret])
	}
	byScope := map[string][]store.Entry{}
	for _, e := range c.ix.Entries {
		s := strings.TrimPrefix(e.URL, f.srv.URL+"/")
		byScope[s] = append(byScope[s], e)
		if _, ok := want[s]; !ok {
			t.Errorf("entry %s for %s: no process of this test added or stored it", e.ID, e.URL)
		}
	}
	tally := map[string]int{}
	wantEntries := 0
	all := slices.Sorted(maps.Keys(want))
	for _, s := range all {
		w, es := want[s], byScope[s]
		if w.absent {
			if len(es) != 0 {
				t.Errorf("%s: %s must be empty, the index has %+v", w.group, s, es)
			} else {
				tally[w.group]++
			}
			continue
		}
		wantEntries++
		if len(es) != 1 {
			t.Errorf("%s: %s has %d entries, want 1: %+v", w.group, s, len(es), es)
			continue
		}
		e := es[0]
		sec, _ := c.secretOf(e.ID)
		switch {
		case e.Kind != w.kind || e.Username != w.user || e.State != w.state:
			t.Errorf("%s: %s: entry %+v, want kind %s username %s state %s", w.group, s, e, w.kind, w.user, w.state)
		case w.id != "" && e.ID != w.id:
			t.Errorf("%s: %s: entry id %s, want %s", w.group, s, e.ID, w.id)
		case !slices.Contains(w.tokens, sec):
			t.Errorf("%s: %s: the keyring holds %s for entry %s, not the token of a process that succeeded", w.group, s, mask(sec), e.ID)
		case w.group == "shared add" && hotAddID[e.ID] != sec:
			t.Errorf("%s: %s: survivor %s holds %s, but the add that printed that id handed over %s", w.group, s, e.ID, mask(sec), mask(hotAddID[e.ID]))
		default:
			tally[w.group]++
		}
	}
	if n := len(c.ix.Entries); n != wantEntries {
		t.Errorf("the index has %d entries, want %d", n, wantEntries)
	}
	for _, s := range addRm {
		if id := idOf[s]; ok2[s] && (len(c.byID[id]) != 0 || slices.ContainsFunc(c.orphans, func(it keyringItem) bool { return it.id == id })) {
			t.Errorf("removed entry %s still has a keyring item", id)
		}
	}

	var getOps []op
	for _, s := range all {
		getOps = append(getOps, f.getOp(s))
	}
	res3, _ := f.runParallel(getOps, width, nil)
	served := 0
	for _, r := range res3 {
		if r.err != nil || r.code != 0 {
			t.Errorf("final get %s: %v %s", r.scope, r.err, r.result)
			continue
		}
		a, err := parseAnswer(r.stdout)
		if err != nil {
			t.Errorf("final get %s: %v", r.scope, err)
			continue
		}
		var wantSec, wantUser string
		if es := byScope[r.scope]; len(es) == 1 && es[0].State == store.StateActive {
			wantSec, _ = c.secretOf(es[0].ID)
			wantUser = es[0].Username
		}
		switch {
		case wantSec == "" && a != nil:
			t.Errorf("final get %s answered %s, want no answer (removed, erased or rejected)", r.scope, describe(a, mine))
		case wantSec != "" && (a == nil || a.password != wantSec || a.username != wantUser):
			t.Errorf("final get %s answered %s, want %s %s (what the keyring holds for its entry)", r.scope, describe(a, mine), wantUser, mask(wantSec))
		case a != nil:
			served++
		}
	}
	t.Logf("outcome: %d entries, each with exactly one keyring item; as expected: %d disjoint adds present, %d added then rejected by erase, %d disjoint stores present, %d shared add scopes with 1 survivor of up to %d concurrent adds, %d shared store scopes with 1 survivor of up to %d concurrent stores, %d added then removed gone, %d stored then erased gone",
		len(c.ix.Entries), tally["add"], tally["add then erase"], tally["store"], tally["shared add"], nHotAdds, tally["shared store"], nHotStore,
		tally["add then remove"], tally["store then erase"])
	t.Logf("final gets: %d served their entry's keyring secret, %d rightly nothing; %d writers gave up on the lock (no effect, checked); 0 orphans found",
		served, len(res3)-served, lockTimeouts)
	t.Logf("total: %d helper processes (%d writers)", len(phase1)+len(phase2)+len(getOps), writers)
}

// cmpIf is a ternary for expectations.
func cmpIf[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

// describe shows a get answer without its secret, naming the scope its
// token was handed out for.
func describe(a *answer, mine map[string]string) string {
	if a == nil {
		return "nothing"
	}
	whose := mine[a.password]
	if whose == "" {
		whose = "no scope of this test (garbage?)"
	}
	return fmt.Sprintf("%s %s (a token for %s)", a.username, mask(a.password), whose)
}

// cleanupKeyring removes every entry of the test, in parallel, then deletes
// keyring items of the test that no entry names, so the shared keyring is
// left as it was.
func (f *fixture) cleanupKeyring(t *testing.T, known map[string]bool, mine map[string]string) {
	ix, err := (&store.Store{Dir: filepath.Dir(f.indexPath())}).Load()
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	var ops []op
	for _, e := range ix.Entries {
		ops = append(ops, op{name: "remove", argv: []string{"remove", e.ID}})
	}
	res, _ := f.runParallel(ops, 8, nil)
	for _, r := range res {
		if r.err != nil || r.code != 0 {
			t.Errorf("cleanup: %v %s", r.err, r.result)
		}
	}
	var left []string
	for _, it := range keyringItems(t) {
		if _, ok := mine[it.secret]; ok || known[it.id] {
			left = append(left, it.id)
			if err := deleteKeyringItem(it.path); err != nil {
				t.Errorf("cleanup: deleting keyring item %s (id %s): %v", it.path, it.id, err)
			}
		}
	}
	if len(left) > 0 {
		sort.Strings(left)
		t.Logf("cleanup: deleted %d keyring item(s) of this test that no entry named: %v", len(left), left)
	}
}
