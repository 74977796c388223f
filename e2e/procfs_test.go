//go:build linux

package e2e

// Secret hygiene in /proc: tokens reach the helper only on stdin, so while
// it runs, no process it starts carries one in its command line or
// environment (readable by other processes of the user, the command line
// by everyone), and no file it holds open contains one. The helper is kept
// alive by writing its stdin slowly, and by a fake Secret Service that
// holds it inside a keyring call.

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/fakesecrets"
)

// procRun is a helper process whose stdin the test writes piece by piece.
type procRun struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr bytes.Buffer
	start          time.Time
	done           chan struct{}
	err            error
}

func startPiped(t *testing.T, env []string, dir string, args ...string) *procRun {
	t.Helper()
	p := &procRun{cmd: exec.Command(helperBin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	in, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = in
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *procRun) write(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil {
		t.Fatalf("writing the helper's stdin: %v", err)
	}
}

// alive fails the test if the process has exited.
func (p *procRun) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("the helper exited early (%v): stdout %q stderr %q", p.err, p.stdout.String(), p.stderr.String())
	default:
	}
}

// finish closes stdin and waits for the exit.
func (p *procRun) finish(t *testing.T) result {
	t.Helper()
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(cmdTimeout):
		t.Fatalf("the helper did not exit within %s", cmdTimeout)
	}
	r := result{args: p.cmd.Args, stdout: p.stdout.String(), stderr: p.stderr.String(), dur: time.Since(p.start)}
	if p.err != nil {
		r.code = p.cmd.ProcessState.ExitCode()
	}
	return r
}

// kill ends the process and those it started, and waits for it.
func (p *procRun) kill() {
	kids := descendants(p.cmd.Process.Pid) // before they are orphaned
	_ = p.cmd.Process.Kill()
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	<-p.done
}

// wantCleanProc fails if any secret, or a piece of one (the test writes
// tokens in pieces), shows where other processes could find it while the
// helper runs: see procLeaks. Its own command line and environment were
// built by this test and cannot change, so what this watches is what the
// helper does: the processes it starts, and the files it opens.
func wantCleanProc(t *testing.T, p *procRun, when string, secrets []string) {
	t.Helper()
	p.alive(t)
	var pieces []string
	for _, s := range secrets {
		pieces = append(pieces, s, s[:len(s)/2], s[len(s)/2:])
	}
	seen, leaks := procLeaks(p.cmd.Process.Pid, pieces)
	// Not vacuous: the scan read the helper itself.
	if !slices.ContainsFunc(seen, func(s string) bool { return strings.Contains(s, "git-credential-bbtoken") }) {
		t.Fatalf("%s: the scan did not read the helper's /proc entries (read %v)", when, seen)
	}
	for _, l := range leaks {
		t.Errorf("%s: %s", when, l)
	}
	t.Logf("%s: scanned %d process(es): %s", when, len(seen), strings.Join(seen, "; "))
	p.alive(t)
}

// procLeaks scans pid and every process it started (its descendants): the
// command line and environment of each, and the content of every regular
// file each has open. It returns what it read (one line per process) and
// each place where one of secrets shows.
func procLeaks(pid int, secrets []string) (seen, leaks []string) {
	for _, p := range append([]int{pid}, descendants(pid)...) {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if err != nil {
			continue // exited meanwhile
		}
		seen = append(seen, fmt.Sprintf("%d %q", p, bytes.ReplaceAll(cmdline, []byte{0}, []byte(" "))))
		what := map[string][]byte{"command line": cmdline}
		if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p)); err == nil {
			what["environment"] = env
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		for _, fd := range fds {
			link := fmt.Sprintf("/proc/%d/fd/%s", p, fd.Name())
			target, err := os.Readlink(link)
			if err != nil || !strings.HasPrefix(target, "/") {
				continue // a pipe, a socket
			}
			if st, err := os.Stat(link); err != nil || !st.Mode().IsRegular() || st.Size() > 16<<20 {
				continue
			}
			if data, err := os.ReadFile(link); err == nil {
				what["open file "+target] = data
			}
		}
		for name, data := range what {
			for _, s := range secrets {
				if bytes.Contains(data, []byte(s)) {
					leaks = append(leaks, fmt.Sprintf("process %d: its %s holds a token (or a piece of one, …%s)", p, name, s[len(s)-4:]))
				}
			}
		}
	}
	return seen, leaks
}

// descendants lists the processes pid started, and theirs. A Go program
// starts processes from any of its threads, and each thread lists its own
// children: every task is read.
func descendants(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(children)) {
			var c int
			if _, err := fmt.Sscan(f, &c); err == nil && !slices.Contains(out, c) {
				out = append(out, c)
				out = append(out, descendants(c)...)
			}
		}
	}
	return out
}

// TestProcScanFindsLeaks shows that procLeaks can fail: a process that
// carries a token in its command line, starts a child with the token in
// its environment, and holds open a file with the token in it is caught
// in each of the three.
func TestProcScanFindsLeaks(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	tok := newSecret(t, "ATCTT3")
	file := filepath.Join(t.TempDir(), "spill")
	if err := os.WriteFile(file, []byte("spilled "+tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `exec 3<"$2"; X="$1" sleep 60 & echo started; wait`, "sh", tok, file)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range descendants(cmd.Process.Pid) {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	buf := make([]byte, 8)
	if _, err := io.ReadFull(out, buf[:len("started")]); err != nil {
		t.Fatal(err)
	}
	wants := []string{"command line", "environment", "open file " + file}
	missing := func(leaks []string) []string {
		var out []string
		for _, want := range wants {
			if !slices.ContainsFunc(leaks, func(l string) bool { return strings.Contains(l, "its "+want+" holds") }) {
				out = append(out, want)
			}
		}
		return out
	}
	// The child's environment shows once it has exec'ed sleep: look again
	// until then (bounded; the three leaks are there within milliseconds).
	var leaks []string
	for try := 0; try < 500 && (try == 0 || len(missing(leaks)) > 0); try++ {
		if try > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		_, leaks = procLeaks(cmd.Process.Pid, []string{tok})
	}
	for _, m := range missing(leaks) {
		t.Errorf("the scan missed the token in a %s: found %v", m, leaks)
	}
}

// waitHeld waits until the fake service holds the helper in a call.
func waitHeld(t *testing.T, svc *fakesecrets.Service, fault fakesecrets.Fault) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	if fault.HangOn != "" {
		select {
		case <-svc.Hung():
			return
		case <-deadline:
			t.Fatalf("the helper never made the %s call: calls %v", fault.HangOn, svc.Calls())
		}
	}
	for !slices.Contains(svc.Calls(), fakesecrets.MethodPrompt) {
		select {
		case <-deadline:
			t.Fatalf("the helper never reached the unlock prompt: calls %v", svc.Calls())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// holdMark marks the helper command that holds doctor's git.
const holdMark = "bbtoken-e2e-hold"

// waitDescendant waits until a process p started runs with mark in its
// command line.
func waitDescendant(t *testing.T, p *procRun, mark string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		for _, d := range descendants(p.cmd.Process.Pid) {
			if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", d)); strings.Contains(string(cmdline), mark) {
				return
			}
		}
		select {
		case <-deadline:
			t.Fatalf("no process with %q in its command line started", mark)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestProcNoTokenInCmdlineOrEnviron: each command that takes a token on
// stdin, inspected while it waits for the rest of its input and again
// while a keyring call holds it with the token read.
func TestProcNoTokenInCmdlineOrEnviron(t *testing.T) {
	if testing.Short() {
		t.Skip("keyring fault suite (a fake service holds the helper): not in the quick tier")
	}
	t.Parallel()
	kfRequireDBus(t)
	read := kfPoints(kfBaseline(t, kfOps[0]))
	lastRead := read[len(read)-1]
	type input struct {
		args        []string
		first, rest string   // stdin before and after the first look
		secrets     []string // what must not show
		holdMark    string   // held once a process with this in its command line runs ("": a keyring fault holds it)
	}
	cases := []struct {
		name  string
		fault fakesecrets.Fault
		input func(t *testing.T, h *kfHome, env []string) input
	}{
		{"add, held in CreateItem", fakesecrets.Fault{HangOn: fakesecrets.MethodCreateItem}, func(t *testing.T, h *kfHome, _ []string) input {
			tok := h.secret(t, "ATCTT3")
			return input{[]string{"add", "https://" + kfHost + "/ws/new", "--kind", "repository"}, tok[:len(tok)/2], tok[len(tok)/2:] + "\n", []string{tok}, ""}
		}},
		{"add, held by an unlock prompt nobody answers", fakesecrets.Fault{Locked: true, Prompt: fakesecrets.PromptNever}, func(t *testing.T, h *kfHome, _ []string) input {
			tok := h.secret(t, "ATCTT3")
			return input{[]string{"add", "https://" + kfHost + "/ws/new", "--kind", "repository"}, tok[:len(tok)/2], tok[len(tok)/2:] + "\n", []string{tok}, ""}
		}},
		{"get, held in " + lastRead, fakesecrets.Fault{HangOn: lastRead}, func(_ *testing.T, h *kfHome, _ []string) input {
			q := kfCred("ws/repo.git")
			i := strings.Index(q, "path=")
			return input{[]string{"get"}, q[:i], q[i:], []string{h.secA, h.secS}, ""}
		}},
		{"store, held in " + lastRead, fakesecrets.Fault{HangOn: lastRead}, func(t *testing.T, h *kfHome, _ []string) input {
			pw := h.secret(t, "typed")
			q := kfCred("ws/repo.git", "username", "x-token-auth", "password", pw)
			i := strings.Index(q, pw) + len(pw)/2
			return input{[]string{"store"}, q[:i], q[i:], []string{pw, h.secA, h.secS}, ""}
		}},
		// doctor runs git credential fill, which runs this helper's get
		// (under the probe it answers nothing and reads no secret) and
		// then the helpers after it: held by one that waits, the
		// processes doctor started (git, the shells, get's) are scanned.
		{"doctor, held in a helper its git runs", fakesecrets.Fault{}, func(t *testing.T, h *kfHome, env []string) input {
			api := h.secret(t, "ATATT3")
			wantCode(t, h.helperIn(t, env, api+"\n", "add", "https://"+kfHost, "--kind", "api", "--username", "alice"), 0)
			wantCode(t, h.runIn(t, env, "", "git", "config", "--global", "--add", "credential.helper", "!sleep 30 && : "+holdMark), 0)
			return input{args: []string{"doctor"}, secrets: []string{api, h.secA, h.secS}, holdMark: holdMark}
		}},
		{"erase, held in " + lastRead, fakesecrets.Fault{HangOn: lastRead}, func(_ *testing.T, h *kfHome, _ []string) input {
			q := kfCred("ws/repo.git", "username", "x-token-auth", "password", h.secA)
			i := strings.Index(q, h.secA) + len(h.secA)/2
			return input{[]string{"erase"}, q[:i], q[i:], []string{h.secA, h.secS}, ""}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bus := fakesecrets.StartBus(t, fakesecrets.BusOptions{})
			svc := fakesecrets.Start(t, bus)
			h := newKFHome(t)
			env := h.withBus(bus.Address)
			h.seed(t, env)
			wantCode(t, h.helperIn(t, env, "", "setup"), 0)
			in := c.input(t, h, env)
			svc.SetFault(c.fault)
			// Long enough to look while held; the test ends it sooner.
			env = append(env, "GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT=60s")
			p := startPiped(t, env, h.home, in.args...)
			p.write(t, in.first)
			time.Sleep(50 * time.Millisecond) // let it read what there is
			wantCleanProc(t, p, "waiting for stdin", in.secrets)
			p.write(t, in.rest)
			if in.holdMark != "" {
				waitDescendant(t, p, in.holdMark)
			} else {
				waitHeld(t, svc, c.fault)
			}
			wantCleanProc(t, p, "held", in.secrets)
			p.kill()
		})
	}
}

// TestProcWorkflowWithRealKeyring: a whole workflow against the real
// Secret Service and the real git: add (piped slowly, inspected in
// /proc), get (likewise), clone, a password git stored and then rejected,
// remove. The fixture's finish then scans every file under HOME, the
// trace included, for every token.
func TestProcWorkflowWithRealKeyring(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo", "ws/other"}, trace: true})
	env := slices.Clone(f.env)
	tok := f.accessToken(t, "repo", "ws/repo")

	p := startPiped(t, env, f.home, "add", f.url("ws/repo.git"), "--kind", "repository")
	p.write(t, tok[:len(tok)/2])
	time.Sleep(50 * time.Millisecond)
	wantCleanProc(t, p, "add waiting for the rest of the token", []string{tok})
	p.write(t, tok[len(tok)/2:]+"\n")
	r := p.finish(t)
	wantCode(t, r, 0)
	id := strings.TrimSpace(r.stdout)

	host := strings.TrimPrefix(f.srv.URL, "https://")
	p = startPiped(t, env, f.home, "get")
	p.write(t, "protocol=https\nhost="+host+"\n")
	time.Sleep(50 * time.Millisecond)
	wantCleanProc(t, p, "get waiting for the rest of the request", []string{tok})
	p.write(t, "path=ws/repo.git\n\n")
	r = p.finish(t)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "password="+tok+"\n") {
		t.Errorf("get did not answer with the token: exit %d, stderr %q", r.code, r.stderr)
	}

	_, r = f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)

	// A password git stored after its prompt, then rejected (erase).
	pw := newSecret(t, "typed")
	f.secrets = append(f.secrets, pw)
	cred := "protocol=https\nhost=" + host + "\npath=ws/other.git\nusername=alice\npassword=" + pw + "\n\n"
	wantCode(t, f.run(t, "", cred, nil, "git", "credential", "approve"), 0)
	if n := len(f.list(t)); n != 2 {
		t.Errorf("after approve: %d entries, want 2 (the token and the stored password)", n)
	}
	wantCode(t, f.run(t, "", cred, nil, "git", "credential", "reject"), 0)
	if n := len(f.list(t)); n != 1 {
		t.Errorf("after reject: %d entries, want 1", n)
	}
	wantCode(t, f.helper(t, "", "remove", id), 0)
}
