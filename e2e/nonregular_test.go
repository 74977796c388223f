//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// TestNamedPipeGitCarriesOn: a named pipe where the index, its journal or
// its lock belongs made get, `git credential fill` and store hang forever.
// Now, with the real git, our helper first and a second helper after it,
// git gets the second helper's answer and approve and reject succeed; our
// helper's stderr is one line naming the path and what it is. No keyring
// is needed to get there (none is reachable here).
func TestNamedPipeGitCarriesOn(t *testing.T) {
	t.Parallel()
	const second = `!f() { echo username=u; echo password=p; }; f`
	for _, name := range []string{store.IndexFile, store.JournalFile, store.LockFile} {
		for _, sub := range []string{"fill", "approve", "reject"} {
			t.Run(name+"/"+sub, func(t *testing.T) {
				t.Parallel()
				h := newKFHome(t)
				env := h.base
				wantCode(t, h.helperIn(t, env, "", "setup"), 0)
				wantCode(t, h.runIn(t, env, "", "git", "config", "--global", "--add", "credential.https://"+kfHost+".helper", second), 0)
				dir := filepath.Join(h.home, ".config", "git-credential-bbtoken")
				pipe := filepath.Join(dir, name)
				_ = os.Remove(pipe)
				if err := syscall.Mkfifo(pipe, 0o600); err != nil {
					t.Fatal(err)
				}
				stdin := kfCred("ws/repo.git")
				switch sub {
				case "approve":
					stdin = kfCred("ws/repo.git", "username", "u", "password", "p-"+h.secret(t, "typed"))
				case "reject":
					stdin = kfCred("ws/repo.git", "username", "u", "password", "p")
				}
				r := h.runIn(t, env, stdin, "git", "credential", sub)
				wantCode(t, r, 0)
				if sub == "fill" {
					want := "protocol=https\nhost=" + kfHost + "\npath=ws/repo.git\nusername=u\npassword=p\n"
					if r.stdout != want {
						t.Errorf("fill answered %q, want the second helper's %q", r.stdout, want)
					}
				}
				// What reaches our helper depends on the file: get reads
				// only the index, reject finds nothing stored to erase.
				touched := name == store.IndexFile || sub == "approve"
				if !touched {
					if r.stderr != "" {
						t.Errorf("stderr %q, want nothing", r.stderr)
					}
					return
				}
				if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, pipe) || !strings.Contains(r.stderr, "named pipe") {
					t.Errorf("stderr %q, want one line naming %s as a named pipe", r.stderr, pipe)
				}
				if st, err := os.Lstat(pipe); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
					t.Errorf("the named pipe was replaced or removed (%v)", err)
				}
			})
		}
	}
}
