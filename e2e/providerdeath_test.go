//go:build linux

package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// KillProviderEnv lets TestProviderDiesUnderLoad kill the Secret Service
// provider whose pid is in SS_PROVIDER_PID: scripts/providers.sh sets both,
// in a provider instance of the test's own.
const KillProviderEnv = "BBTOKEN_TEST_KILL_PROVIDER"

// TestProviderDiesUnderLoad: the Secret Service provider (KeePassXC,
// KWallet) is killed while 64 helper processes add, store, get, erase and
// remove. Every process ends within its bound, says what went wrong in one
// line on stderr and nothing on stdout, and the index stays whole: an add
// or store that reported success has its entry, one that failed has none,
// a remove or erase that failed changed nothing, a get answered its token
// or nothing. After the death, the
// helper says in one line that no Secret Service runs, and that it may
// have crashed.
//
// The kill comes once a fixed number of processes have finished, whatever
// the machine's speed; how many fail is not asserted.
func TestProviderDiesUnderLoad(t *testing.T) {
	pid, _ := strconv.Atoi(os.Getenv("SS_PROVIDER_PID"))
	switch {
	case os.Getenv(KillProviderEnv) != "1":
		t.Skipf("kills the Secret Service provider: run by scripts/providers.sh (%s=1 and SS_PROVIDER_PID)", KillProviderEnv)
	case pid <= 0:
		t.Fatalf("%s=1 but SS_PROVIDER_PID=%q names no process to kill", KillProviderEnv, os.Getenv("SS_PROVIDER_PID"))
	}
	const (
		width     = 64
		nBefore   = 24 // entries added before the load: erased, removed and read
		nAdd      = 64 // adds on new scopes during the load
		nStore    = 64 // stores on new scopes during the load
		killAfter = 40 // finished processes before the kill
		storeUser = "death-user"
	)
	f := newFixture(t, fixtureOptions{})
	// The provider will be gone: nothing is left to clean up in it, and
	// the fixture's own clean-up (remove every entry) cannot run.
	t.Cleanup(func() { _ = os.Remove(f.indexPath()) })
	token := func() string {
		s := newSecret(t, "ATCTT3")
		f.secrets = append(f.secrets, s)
		return s
	}
	before := map[string]string{} // scope -> its token
	idOf := map[string]string{}
	for i := range nBefore {
		scope := fmt.Sprintf("before/r%d", i)
		before[scope] = token()
		r := f.runOp(f.addOp(scope, before[scope]), nil)
		if r.err != nil || r.code != 0 {
			t.Fatalf("add before the load: %s", r.result)
		}
		idOf[scope] = strings.TrimSpace(r.stdout)
	}

	var ops []op
	for i := range nAdd {
		ops = append(ops, f.addOp(fmt.Sprintf("add/r%d", i), token()))
	}
	for i := range nStore {
		ops = append(ops, f.storeOp(fmt.Sprintf("store/r%d", i), storeUser, token()))
	}
	for i := range nBefore {
		scope := fmt.Sprintf("before/r%d", i)
		switch i % 3 {
		case 0:
			ops = append(ops, f.getOp(scope))
		case 1:
			ops = append(ops, f.removeOp(scope, idOf[scope]))
		case 2:
			ops = append(ops, f.eraseOp(scope, "x-token-auth", before[scope]))
		}
	}
	// Interleave the kinds, so that every kind runs around the kill.
	slices.SortStableFunc(ops, func(a, b op) int {
		return strings.Compare(a.scope[strings.IndexByte(a.scope, '/'):], b.scope[strings.IndexByte(b.scope, '/'):])
	})

	results := make([]opResult, len(ops))
	var finished atomic.Int64
	var killed sync.Once
	kill := func() {
		killed.Do(func() {
			t.Logf("killing the provider (pid %d) after %d processes", pid, finished.Load())
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Errorf("killing the provider: %v", err)
			}
		})
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range width {
		wg.Go(func() {
			for i := range next {
				results[i] = f.runOp(ops[i], nil)
				if finished.Add(1) >= killAfter {
					kill()
				}
			}
		})
	}
	for i := range ops {
		next <- i
	}
	close(next)
	wg.Wait()
	kill() // in case fewer ran

	failed := 0
	said := map[string]int{} // what the failures said, ids masked
	mask := func(s string) string {
		for _, w := range strings.Fields(s) {
			if w = strings.Trim(w, ":,()"); len(w) == 8 && strings.Trim(w, "0123456789abcdef") == "" {
				s = strings.ReplaceAll(s, w, "ID")
			}
		}
		return s
	}
	for _, r := range results {
		if r.err != nil {
			t.Errorf("%s %s: %v (%s)", r.name, r.scope, r.err, r.result)
			continue
		}
		if r.code == 0 {
			continue
		}
		failed++
		said[r.name+": "+mask(strings.TrimSpace(r.stderr))]++
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], "Secret Service") {
			t.Errorf("%s %s failed without one line naming the Secret Service: %s", r.name, r.scope, r.result)
		}
		if r.stdout != "" {
			t.Errorf("%s %s failed but wrote to stdout: %s", r.name, r.scope, r.result)
		}
	}
	t.Logf("%d of %d processes failed once the provider was gone:", failed, len(results))
	for msg, n := range said {
		t.Logf("  %3d× %s", n, msg)
	}

	ix := f.readIndex(t)
	for _, r := range results {
		i := slices.IndexFunc(ix.Entries, func(e store.Entry) bool { return e.URL == f.url(r.scope) })
		present := i >= 0
		switch {
		case r.err != nil:
		case r.name == "get" && r.code == 0:
			// Served while the provider lived, or nothing: never another
			// token, never an empty one.
			if a, err := parseAnswer(r.stdout); err != nil || (a != nil && a.password != before[r.scope]) {
				t.Errorf("get %s answered %q (%v), want its token or nothing", r.scope, mask(r.stdout), err)
			}
		case r.name == "erase" && r.code != 0 && (!present || ix.Entries[i].State != store.StateActive):
			t.Errorf("erase %s failed but changed its entry", r.scope)
		case (r.name == "add" || r.name == "store") && r.code == 0 && !present:
			t.Errorf("%s %s succeeded but its entry is gone", r.name, r.scope)
		case (r.name == "add" || r.name == "store") && r.code != 0 && present:
			t.Errorf("%s %s failed but left an entry", r.name, r.scope)
		case r.name == "remove" && r.code == 0 && present:
			t.Errorf("remove %s succeeded but its entry is still there", r.scope)
		case r.name == "remove" && r.code != 0 && !present:
			t.Errorf("remove %s failed but its entry is gone", r.scope)
		}
	}

	// Once it is gone, one line says so.
	start := time.Now()
	r := f.runOp(f.getOp("before/r0"), nil)
	if r.code == 0 || strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") != 0 ||
		!strings.Contains(r.stderr, "no Secret Service is running on the session bus (none was started, or it quit or crashed)") {
		t.Errorf("get after the provider died: %s", r.result)
	}
	if r.stdout != "" {
		t.Errorf("get after the provider died wrote to stdout: %q", r.stdout)
	}
	t.Logf("get after the death answered in %s", time.Since(start).Round(time.Millisecond))
}
