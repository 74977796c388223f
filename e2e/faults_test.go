package e2e

// Keyring faults, end to end: the real binary meets a Secret Service that
// is missing, dies inside a call, never answers, or is locked behind an
// unlock prompt nobody answers. Whatever the fault, every operation must
// fail within a few seconds with one line on stderr naming the cause and
// the fix, print nothing on stdout (so git moves on to its next helper or
// its prompt), and change nothing it stores.
//
// The faults come from internal/fakesecrets (a fake Secret Service on a
// private dbus-daemon, deterministic), from a private bus with nothing on
// it, from no bus at all, and from a real gnome-keyring on a private bus
// with its login collection locked.

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/bbtoken/git-credential-bbtoken/internal/fakesecrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
	"github.com/bbtoken/git-credential-bbtoken/internal/testkeyring"
)

const (
	// kfTimeout is GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT for the runs here.
	kfTimeout = "2s"
	// kfHost is the host of every scope here (Bitbucket Cloud; the helper
	// never contacts it).
	kfHost = "bitbucket.org"
)

// kfRequireDBus stops tests that need the Secret Service's world: Linux
// (elsewhere the helper uses no D-Bus) and a dbus-daemon to run.
func kfRequireDBus(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the Secret Service (D-Bus) is the Linux keyring")
	}
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		if os.Getenv(testkeyring.RequireEnv) == "1" {
			t.Fatalf("%s=1 but dbus-daemon is not installed (Debian package dbus)", testkeyring.RequireEnv)
		}
		t.Skip("dbus-daemon is not installed (Debian package dbus)")
	}
}

// kfHome is one user's HOME whose keyring works in one environment (to
// seed it) and fails in another. The embedded fixture holds no server: it
// records outputs and secrets for the harness's hygiene check.
type kfHome struct {
	*fixture
	base []string // the environment without any D-Bus variable

	secA string // repository token of ws/repo, added
	secS string // password git stored for ws/other after a prompt
	idA  string
	idS  string
}

func newKFHome(t *testing.T) *kfHome {
	t.Helper()
	home := t.TempDir()
	h := &kfHome{
		fixture: &fixture{home: home},
		base: []string{
			"HOME=" + home,
			"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_TERMINAL_PROMPT=0",
			"GIT_ASKPASS=",
			"SSH_ASKPASS=",
			"PATH=" + os.Getenv("PATH"),
			"LC_ALL=C",
			"GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT=" + kfTimeout,
		},
	}
	t.Cleanup(func() { h.checkHygiene(t) })
	return h
}

// withBus is the base environment with the given session bus.
func (h *kfHome) withBus(address string) []string {
	return append(slices.Clone(h.base), "DBUS_SESSION_BUS_ADDRESS="+address)
}

func (h *kfHome) secret(t testing.TB, prefix string) string {
	s := newSecret(t, prefix)
	h.secrets = append(h.secrets, s)
	return s
}

// runIn runs a process with exactly the environment env (the fixture's
// own env is empty, so exec's extra environment is all of it).
func (h *kfHome) runIn(t testing.TB, env []string, stdin, name string, args ...string) result {
	t.Helper()
	r, err := h.exec("", stdin, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (h *kfHome) helperIn(t testing.TB, env []string, stdin string, args ...string) result {
	t.Helper()
	return h.runIn(t, env, stdin, helperBin, args...)
}

func (h *kfHome) listIn(t testing.TB, env []string) []listed {
	t.Helper()
	r := h.helperIn(t, env, "", "list", "--json")
	wantCode(t, r, 0)
	var rows []listed
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("list --json: %v: %s", err, r.stdout)
	}
	return rows
}

// forgetLast drops the last recorded output from the hygiene check.
func (h *kfHome) forgetLast() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.outputs = h.outputs[:len(h.outputs)-1]
}

// kfCred is git's description of a request on kfHost.
func kfCred(path string, kv ...string) string {
	var b strings.Builder
	b.WriteString("protocol=https\nhost=" + kfHost + "\npath=" + path + "\n")
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(kv[i] + "=" + kv[i+1] + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// seed stores, through a working keyring, an added repository token for
// ws/repo and a credential git stored for ws/other.
func (h *kfHome) seed(t testing.TB, env []string) {
	t.Helper()
	h.secA = h.secret(t, "ATCTT3")
	r := h.helperIn(t, env, h.secA+"\n", "add", "https://"+kfHost+"/ws/repo", "--kind", "repository")
	wantCode(t, r, 0)
	h.idA = strings.TrimSpace(r.stdout)
	h.secS = h.secret(t, "typed")
	r = h.helperIn(t, env, kfCred("ws/other.git", "username", "u", "password", h.secS), "store")
	wantCode(t, r, 0)
	for _, e := range h.listIn(t, env) {
		if e.Kind == string(store.KindStored) {
			h.idS = e.ID
		}
	}
	if h.idA == "" || h.idS == "" {
		t.Fatalf("seeding: added %q, stored %q: %+v", h.idA, h.idS, h.listIn(t, env))
	}
}

// kfOp is one helper operation under test.
type kfOp struct {
	name string
	cmd  string // the command word in the helper's error line
	// input returns stdin and the arguments.
	input func(t testing.TB, h *kfHome) (stdin string, args []string)
}

var kfOps = []kfOp{
	{"get", "get", func(_ testing.TB, h *kfHome) (string, []string) {
		return kfCred("ws/repo.git"), []string{"get"}
	}},
	{"store", "store", func(t testing.TB, h *kfHome) (string, []string) {
		// A password typed at git's prompt for ws/repo, where get would
		// have answered A: store compares with A, then keeps the new one.
		return kfCred("ws/repo.git", "username", "x-token-auth", "password", h.secret(t, "typed")), []string{"store"}
	}},
	{"erase", "erase", func(_ testing.TB, h *kfHome) (string, []string) {
		// git rejected A (401): it is marked rejected, not deleted.
		return kfCred("ws/repo.git", "username", "x-token-auth", "password", h.secA), []string{"erase"}
	}},
	{"erase stored", "erase", func(_ testing.TB, h *kfHome) (string, []string) {
		// git rejected the credential it had stored: it is deleted.
		return kfCred("ws/other.git", "username", "u", "password", h.secS), []string{"erase"}
	}},
	{"add", "add", func(t testing.TB, h *kfHome) (string, []string) {
		return h.secret(t, "ATCTT3") + "\n", []string{"add", "https://" + kfHost + "/ws/new", "--kind", "repository"}
	}},
	{"add replacing", "add", func(t testing.TB, h *kfHome) (string, []string) {
		return h.secret(t, "ATCTT3") + "\n", []string{"add", "https://" + kfHost + "/ws/repo", "--kind", "repository"}
	}},
	{"remove", "remove", func(_ testing.TB, h *kfHome) (string, []string) {
		return "", []string{"remove", h.idA}
	}},
}

// kfBaseline runs op against a well-behaved fake Secret Service and
// returns the D-Bus calls it made, in order.
func kfBaseline(t *testing.T, op kfOp) []string {
	t.Helper()
	bus := fakesecrets.StartBus(t, fakesecrets.BusOptions{})
	svc := fakesecrets.Start(t, bus)
	h := newKFHome(t)
	env := h.withBus(bus.Address)
	h.seed(t, env)
	stdin, args := op.input(t, h)
	mark := len(svc.Calls())
	r := h.helperIn(t, env, stdin, args...)
	if r.code != 0 || (r.stderr != "" && op.cmd != "add") {
		t.Fatalf("%s with a working keyring: %s", op.name, r)
	}
	if op.cmd == "get" {
		if !strings.Contains(r.stdout, "password="+h.secA+"\n") {
			t.Fatalf("get with a working keyring did not answer with the token: %s", r.stderr)
		}
		h.forgetLast() // get's answer carries the token by design
	}
	calls := svc.Calls()[mark:]
	t.Logf("%s makes %d D-Bus calls: %v", op.name, len(calls), calls)
	return calls
}

// kfPoints are the distinct methods among calls, in order of first call,
// except Session.Close: the client awaits its answer but not its success,
// so a service that dies there after the last call that matters broke
// nothing.
func kfPoints(calls []string) []string {
	var out []string
	for _, m := range calls {
		if m != fakesecrets.MethodClose && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// kfWorld is a seeded HOME, a keyring, and a fault to switch on.
type kfWorld struct {
	h *kfHome
	// arm switches the fault on and returns the environment to run in.
	arm func(t testing.TB) []string
	// items returns what the keyring holds for this HOME.
	items func(t testing.TB) any
	// check runs after the operation (e.g. that the fault was reached).
	check func(t testing.TB)
}

// kfFake is a HOME seeded through a fake Secret Service that then
// misbehaves as fault says.
func kfFake(t *testing.T, fault fakesecrets.Fault) kfWorld {
	t.Helper()
	bus := fakesecrets.StartBus(t, fakesecrets.BusOptions{})
	svc := fakesecrets.Start(t, bus)
	h := newKFHome(t)
	env := h.withBus(bus.Address)
	h.seed(t, env)
	return kfWorld{
		h: h,
		arm: func(testing.TB) []string {
			svc.SetFault(fault)
			return env
		},
		items: func(testing.TB) any { return svc.Items() },
		check: func(t testing.TB) {
			if fault.DieOn != "" && svc.Died() != fault.DieOn {
				t.Errorf("the service never got a %s call to die in: calls %v", fault.DieOn, svc.Calls())
			}
			if fault.HangOn != "" {
				select {
				case <-svc.Hung():
				default:
					t.Errorf("the service never got a %s call to hang in: calls %v", fault.HangOn, svc.Calls())
				}
			}
			if fault.Locked && fault.Prompt == fakesecrets.PromptNever && !slices.Contains(svc.Calls(), fakesecrets.MethodPrompt) {
				t.Errorf("the helper never reached the unlock prompt: calls %v", svc.Calls())
			}
		},
	}
}

// kfReal is a HOME seeded through the real Secret Service (the session's
// gnome-keyring) and then run in the environment broken returns.
func kfReal(t *testing.T, broken func(t *testing.T, h *kfHome) []string) kfWorld {
	t.Helper()
	testkeyring.Require(t)
	realBus := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	h := newKFHome(t)
	env := h.withBus(realBus)
	h.seed(t, env)
	c, err := fakesecrets.Dial(realBus)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ids := []string{h.idA, h.idS}
	items := func(t testing.TB) map[string]string {
		out := map[string]string{}
		for _, id := range ids {
			m, err := c.Secrets(map[string]string{"service": secrets.Service, "username": id})
			if err != nil {
				t.Fatalf("reading the real keyring: %v", err)
			}
			for p, v := range m {
				out[id+" "+string(p)] = v
			}
		}
		return out
	}
	t.Cleanup(func() {
		for _, e := range h.listIn(t, env) {
			if r := h.helperIn(t, env, "", "remove", e.ID); r.code != 0 {
				t.Errorf("cleanup: %s", r)
			}
		}
		if left := items(t); len(left) > 0 {
			t.Errorf("cleanup: keyring items left: %v", slices.Collect(maps.Keys(left)))
		}
	})
	return kfWorld{
		h:     h,
		arm:   func(testing.TB) []string { return broken(t, h) },
		items: func(t testing.TB) any { return items(t) },
	}
}

// kfNoService: a session bus on which nothing owns org.freedesktop.secrets
// (and nothing could be activated).
func kfNoService(t *testing.T, h *kfHome) []string {
	return h.withBus(fakesecrets.StartBus(t, fakesecrets.BusOptions{}).Address)
}

// kfNoBus: no session bus at all (no DBUS_SESSION_BUS_ADDRESS, no
// XDG_RUNTIME_DIR), as in a bare SSH session or container.
func kfNoBus(_ *testing.T, h *kfHome) []string { return slices.Clone(h.base) }

const kfGnomePassword = "kf-test-password"

// kfGnomeLocked is a HOME seeded through a real gnome-keyring of its own,
// on a private bus that can start its prompter (which has no display), with
// the login collection then locked.
func kfGnomeLocked(t *testing.T) kfWorld {
	t.Helper()
	bus := fakesecrets.StartBus(t, fakesecrets.BusOptions{Activation: true})
	kfStartGnomeKeyring(t, bus.Address)
	c, err := fakesecrets.Dial(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := newKFHome(t)
	env := h.withBus(bus.Address)
	h.seed(t, env)
	return kfWorld{
		h: h,
		arm: func(t testing.TB) []string {
			if err := c.Lock(fakesecrets.LoginCollection); err != nil {
				t.Fatal(err)
			}
			return env
		},
		items: func(t testing.TB) any {
			if err := c.UnlockWithMasterPassword(fakesecrets.LoginCollection, kfGnomePassword); err != nil {
				t.Fatal(err)
			}
			m, err := c.Secrets(map[string]string{"service": secrets.Service})
			if err != nil {
				t.Fatalf("reading gnome-keyring: %v", err)
			}
			return m
		},
	}
}

// kfStartGnomeKeyring runs gnome-keyring-daemon (secrets only, login
// keyring created and unlocked with kfGnomePassword) on the bus until the
// test ends.
func kfStartGnomeKeyring(t *testing.T, address string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "kf-gk-") // short: it holds a unix socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	cmd.Env = []string{
		"HOME=" + dir,
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_RUNTIME_DIR=" + run,
		"DBUS_SESSION_BUS_ADDRESS=" + address,
		"PATH=" + os.Getenv("PATH"),
	}
	cmd.Stdin = strings.NewReader(kfGnomePassword)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting gnome-keyring-daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c, err := fakesecrets.Dial(address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ok, err := c.HasOwner(); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("gnome-keyring-daemon did not take org.freedesktop.secrets within 10s")
		}
	}
}

// kfFault is what a fault must look like in the helper's one line.
type kfFault struct {
	cause string // in the line
	fix   string // in its "fix:" part
}

var (
	kfUnavailable = kfFault{cause: "keyring unavailable", fix: "Secret Service"}
	kfNoAnswer    = kfFault{cause: "keyring did not answer within " + kfTimeout, fix: "GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT"}
	// A locked keyring needs unlocking: the fix must say so.
	kfLockedNoAnswer = kfFault{cause: "keyring did not answer within " + kfTimeout, fix: "unlock the keyring"}
	kfLocked         = kfFault{cause: "unlock", fix: "unlock the keyring"}
)

// wantKeyringFault checks the contract: exit 1, nothing on stdout,
// exactly one line on stderr from the helper's cmd naming the cause and
// the fix. That the helper gave up within its keyring timeout, rather than
// at the harness's hang limit, shows in the line ("did not answer within
// 2s"); how long it took is not asserted, which would depend on the
// machine's speed.
func wantKeyringFault(t testing.TB, r result, cmd string, want kfFault) {
	t.Helper()
	if r.code != 1 {
		t.Errorf("want exit 1, got %s", r)
	}
	if r.stdout != "" {
		t.Errorf("want nothing on stdout: %s", r)
	}
	wantFaultLine(t, r.stderr, cmd, want)
}

// wantFaultLine checks that stderr is exactly one line from the helper's
// cmd naming the cause and the fix.
func wantFaultLine(t testing.TB, stderr, cmd string, want kfFault) {
	t.Helper()
	prefix := "git-credential-bbtoken: " + cmd + ": "
	line, ok := strings.CutSuffix(stderr, "\n")
	switch {
	case !ok || strings.Contains(line, "\n"):
		t.Errorf("want exactly one line on stderr, got %q", stderr)
	case !strings.HasPrefix(line, prefix):
		t.Errorf("stderr line does not start with %q: %s", prefix, line)
	case !strings.Contains(line, want.cause):
		t.Errorf("stderr line does not name the cause (%q): %s", want.cause, line)
	default:
		_, fix, ok := strings.Cut(line, "fix: ")
		if !ok || !strings.Contains(fix, want.fix) {
			t.Errorf("stderr line has no fix mentioning %q: %s", want.fix, line)
		}
	}
}

// kfCase is one operation in one world.
type kfCase struct {
	name  string
	op    kfOp
	world kfWorld
	want  kfFault

	env         []string
	stdin       string
	args        []string
	index       fileState
	itemsBefore any
	res         result
	err         error
}

// runKFCases arms every case's fault, runs all the operations at once
// (each in its own HOME), then checks each: the fault contract, the index
// file untouched, the keyring unchanged.
func runKFCases(t *testing.T, cases []*kfCase) {
	t.Helper()
	for _, c := range cases {
		h := c.world.h
		c.stdin, c.args = c.op.input(t, h)
		c.itemsBefore = c.world.items(t)
		c.index = stateOf(t, h.indexPath())
		c.env = c.world.arm(t)
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() {
			c.res, c.err = c.world.h.exec("", c.stdin, c.env, helperBin, c.args...)
		})
	}
	wg.Wait()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.err != nil {
				t.Fatal(c.err)
			}
			t.Logf("%s: exit %d after %s: %s", c.op.name, c.res.code, c.res.dur.Round(time.Millisecond), strings.TrimSpace(c.res.stderr))
			wantKeyringFault(t, c.res, c.op.cmd, c.want)
			wantUnchanged(t, c.world.h.indexPath(), c.index)
			after := c.world.items(t)
			// The one change a dead keyring can force: a secret written
			// before the service died cannot be deleted again. It must be
			// recorded in the write journal (so the next write deletes it)
			// and named by no entry (so it is never served).
			if fake, ok := after.(map[dbus.ObjectPath]fakesecrets.Item); ok {
				before, _ := c.itemsBefore.(map[dbus.ObjectPath]fakesecrets.Item)
				journal := c.world.h.journal(t)
				for path, it := range fake {
					id := it.Attributes["username"]
					if _, existed := before[path]; !existed && slices.Contains(journal, id) {
						t.Logf("a secret written before the fault stays for the next write: %s (journaled)", id)
						delete(fake, path)
					}
				}
			}
			if !reflect.DeepEqual(after, c.itemsBefore) {
				t.Errorf("keyring items changed:\nbefore: %v\nafter:  %v", c.itemsBefore, after)
			}
			if c.world.check != nil {
				c.world.check(t)
			}
		})
	}
}

// TestKeyringNoSecretService: a session bus with no Secret Service on it.
func TestKeyringNoSecretService(t *testing.T) {
	if testing.Short() {
		t.Skip("keyring fault suite: not in the quick tier")
	}
	t.Parallel()
	kfRequireDBus(t)
	var cases []*kfCase
	for _, op := range kfOps {
		cases = append(cases, &kfCase{name: op.name, op: op, world: kfReal(t, kfNoService), want: kfUnavailable})
	}
	runKFCases(t, cases)
}

// TestKeyringNoSessionBus: no D-Bus session bus at all.
func TestKeyringNoSessionBus(t *testing.T) {
	if testing.Short() {
		t.Skip("keyring fault suite: not in the quick tier")
	}
	t.Parallel()
	kfRequireDBus(t)
	var cases []*kfCase
	for _, op := range kfOps {
		cases = append(cases, &kfCase{name: op.name, op: op, world: kfReal(t, kfNoBus), want: kfUnavailable})
	}
	runKFCases(t, cases)
}

// TestKeyringServiceDiesMidCall: the Secret Service drops off the bus
// inside a call, without answering, at each method each operation calls
// (as recorded with the service behaving).
func TestKeyringServiceDiesMidCall(t *testing.T) {
	if testing.Short() {
		t.Skip("keyring fault suite: not in the quick tier")
	}
	t.Parallel()
	kfRequireDBus(t)
	var cases []*kfCase
	for _, op := range kfOps {
		for _, m := range kfPoints(kfBaseline(t, op)) {
			cases = append(cases, &kfCase{
				name: op.name + " dies in " + m, op: op,
				world: kfFake(t, fakesecrets.Fault{DieOn: m}), want: kfUnavailable,
			})
		}
	}
	runKFCases(t, cases)
}

// TestKeyringUnlockPromptNeverAnswers: the collection is locked and the
// unlock prompt never completes (a dialog nobody sees).
func TestKeyringUnlockPromptNeverAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("keyring fault suite: not in the quick tier")
	}
	t.Parallel()
	kfRequireDBus(t)
	var cases []*kfCase
	for _, op := range kfOps {
		cases = append(cases, &kfCase{
			name: op.name, op: op,
			world: kfFake(t, fakesecrets.Fault{Locked: true, Prompt: fakesecrets.PromptNever}), want: kfLockedNoAnswer,
		})
	}
	runKFCases(t, cases)
}

// TestKeyringUnlockPromptDismissed: the collection is locked and the
// unlock prompt is dismissed (cancelled, or it could not be shown).
func TestKeyringUnlockPromptDismissed(t *testing.T) {
	if testing.Short() {
		t.Skip("keyring fault suite: not in the quick tier")
	}
	t.Parallel()
	kfRequireDBus(t)
	var cases []*kfCase
	for _, op := range kfOps {
		cases = append(cases, &kfCase{
			name: op.name, op: op,
			world: kfFake(t, fakesecrets.Fault{Locked: true, Prompt: fakesecrets.PromptDismiss}), want: kfLocked,
		})
	}
	runKFCases(t, cases)
}

// TestKeyringCallNeverAnswered: the service takes a call and never
// answers it: the first method each operation calls, and the last.
func TestKeyringCallNeverAnswered(t *testing.T) {
	if testing.Short() {
		t.Skip("keyring fault suite: not in the quick tier")
	}
	t.Parallel()
	kfRequireDBus(t)
	var cases []*kfCase
	for _, op := range kfOps {
		points := kfPoints(kfBaseline(t, op))
		for _, m := range slices.Compact([]string{points[0], points[len(points)-1]}) {
			cases = append(cases, &kfCase{
				name: op.name + " hangs in " + m, op: op,
				world: kfFake(t, fakesecrets.Fault{HangOn: m}), want: kfNoAnswer,
			})
		}
	}
	runKFCases(t, cases)
}

// TestKeyringLockedGnomeKeyring: a real gnome-keyring whose login
// collection is locked, headless (its prompter cannot open a window).
func TestKeyringLockedGnomeKeyring(t *testing.T) {
	if testing.Short() {
		t.Skip("keyring fault suite: not in the quick tier")
	}
	t.Parallel()
	kfRequireDBus(t)
	if _, err := exec.LookPath("gnome-keyring-daemon"); err != nil {
		if os.Getenv(testkeyring.RequireEnv) == "1" {
			t.Fatal("gnome-keyring-daemon is not installed")
		}
		t.Skip("gnome-keyring-daemon is not installed")
	}
	var cases []*kfCase
	for _, op := range kfOps {
		cases = append(cases, &kfCase{name: op.name, op: op, world: kfGnomeLocked(t), want: kfLocked})
	}
	runKFCases(t, cases)
}

// TestKeyringFaultGitFallsThrough: with the real git, our helper first
// and a second helper after it, a broken keyring costs one line on stderr:
// `git credential fill` gets the second helper's answer, and approve and
// reject (which run store and erase) succeed, changing nothing of ours.
func TestKeyringFaultGitFallsThrough(t *testing.T) {
	if testing.Short() {
		t.Skip("keyring fault suite: not in the quick tier")
	}
	t.Parallel()
	kfRequireDBus(t)
	// The call in which get receives the secret (get, store and erase all
	// read first).
	getPoints := kfPoints(kfBaseline(t, kfOps[0]))
	read := getPoints[len(getPoints)-1]
	worlds := []struct {
		name  string
		make  func(t *testing.T) kfWorld
		fault kfFault
	}{
		{"no Secret Service", func(t *testing.T) kfWorld { return kfReal(t, kfNoService) }, kfUnavailable},
		{"no session bus", func(t *testing.T) kfWorld { return kfReal(t, kfNoBus) }, kfUnavailable},
		{"service dies in " + read, func(t *testing.T) kfWorld {
			return kfFake(t, fakesecrets.Fault{DieOn: read})
		}, kfUnavailable},
		{"unlock prompt never answers", func(t *testing.T) kfWorld {
			return kfFake(t, fakesecrets.Fault{Locked: true, Prompt: fakesecrets.PromptNever})
		}, kfLockedNoAnswer},
	}
	const second = `!f() { echo username=u; echo password=p; }; f`
	type gitCase struct {
		name  string
		world kfWorld
		cmd   string // git credential subcommand
		op    string // our command in the error line
		fault kfFault
		env   []string
		stdin string
		index fileState
		res   result
		err   error
	}
	var cases []*gitCase
	for _, w := range worlds {
		for _, sub := range []struct{ git, ours string }{{"fill", "get"}, {"approve", "store"}, {"reject", "erase"}} {
			world := w.make(t)
			h := world.h
			// setup needs no keyring; the second helper comes after ours.
			env := world.arm(t)
			wantCode(t, h.helperIn(t, env, "", "setup"), 0)
			wantCode(t, h.runIn(t, env, "", "git", "config", "--global", "--add", "credential.https://"+kfHost+".helper", second), 0)
			c := &gitCase{name: w.name + "/" + sub.git, world: world, cmd: sub.git, op: sub.ours, fault: w.fault, env: env}
			switch sub.git {
			case "fill":
				c.stdin = kfCred("ws/repo.git")
			case "approve":
				c.stdin = kfCred("ws/repo.git", "username", "u", "password", "p")
			case "reject":
				c.stdin = kfCred("ws/repo.git", "username", "x-token-auth", "password", h.secA)
			}
			c.index = stateOf(t, h.indexPath())
			cases = append(cases, c)
		}
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() { c.res, c.err = c.world.h.exec("", c.stdin, c.env, "git", "credential", c.cmd) })
	}
	wg.Wait()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.err != nil {
				t.Fatal(c.err)
			}
			r := c.res
			t.Logf("git credential %s: exit %d after %s: %s", c.cmd, r.code, r.dur.Round(time.Millisecond), strings.TrimSpace(r.stderr))
			wantCode(t, r, 0)
			if c.cmd == "fill" {
				want := "protocol=https\nhost=" + kfHost + "\npath=ws/repo.git\nusername=u\npassword=p\n"
				if r.stdout != want {
					t.Errorf("fill answered %q, want the second helper's %q", r.stdout, want)
				}
			}
			// git adds nothing of its own here: its stderr is our one line.
			wantFaultLine(t, r.stderr, c.op, c.fault)
			wantUnchanged(t, c.world.h.indexPath(), c.index)
		})
	}
}
