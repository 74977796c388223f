//go:build unix

package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// shortDir is a fresh private directory with a short path (a unix socket's
// path must fit in 108 bytes).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "bb")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	require.NoError(t, os.Chmod(d, 0o700))
	return d
}

// plant puts a thing of the given kind at path.
func plant(t *testing.T, kind, path string) {
	t.Helper()
	switch kind {
	case "fifo":
		require.NoError(t, syscall.Mkfifo(path, 0o600))
	case "socket":
		l, err := net.Listen("unix", path)
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
	case "directory":
		require.NoError(t, os.Mkdir(path, 0o700))
	case "link to /dev/zero":
		require.NoError(t, os.Symlink("/dev/zero", path))
	case "link to /dev/null":
		require.NoError(t, os.Symlink("/dev/null", path))
	case "dangling link":
		require.NoError(t, os.Symlink(filepath.Join(filepath.Dir(path), "nowhere", "x"), path))
	default:
		t.Fatalf("unknown kind %q", kind)
	}
}

// described is how the error names what is there.
var described = map[string]string{
	"fifo":              "named pipe (FIFO)",
	"socket":            "socket",
	"directory":         "directory",
	"link to /dev/zero": "character device",
	"link to /dev/null": "character device",
	"dangling link":     "symbolic link",
}

// describe is how the error names what is at one of the files: the index
// is followed through links (to what they lead to), the others are never.
func describe(file, kind string) string {
	if file != store.IndexFile && strings.Contains(kind, "link") {
		return "symbolic link"
	}
	return described[kind]
}

// TestNonRegularFilesNeverHang: whatever is found under the config
// directory instead of a regular file (a named pipe, a socket, a
// directory, a link to a device, a link to nothing), every command that
// touches it answers at once with one line naming the path and what is
// there, exits non-zero, prints nothing on stdout and changes nothing.
// The named pipes made get, git credential fill and store hang forever
// before.
func TestNonRegularFilesNeverHang(t *testing.T) {
	const (
		getQ   = "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n"
		storeQ = "protocol=https\nhost=bitbucket.org\npath=ws/new.git\nusername=bob\npassword=" + typedPw + "\n"
		eraseQ = "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\nusername=x-token-auth\npassword=" + repoTok + "\n"
	)
	type command struct {
		stdin string
		args  []string
	}
	var (
		getCmd    = command{getQ, []string{"get"}}
		storeCmd  = command{storeQ, []string{"store"}}
		eraseCmd  = command{eraseQ, []string{"erase"}}
		listCmd   = command{"", []string{"list"}}
		addCmd    = command{wsTok + "\n", []string{"add", "https://bitbucket.org/ws", "--kind", "workspace"}}
		removeCmd = command{"", []string{"remove", "https://bitbucket.org/ws/repo"}}
		configCmd = command{"", []string{"config", "expiry-warnings", "off"}}
		repairCmd = command{"", []string{"repair"}}
	)
	files := []struct {
		name     string
		commands []command
	}{
		{store.IndexFile, []command{getCmd, storeCmd, eraseCmd, listCmd, addCmd, removeCmd, configCmd, repairCmd}},
		{store.JournalFile, []command{storeCmd, eraseCmd, addCmd, removeCmd, configCmd, repairCmd}},
		{store.LockFile, []command{storeCmd, eraseCmd, addCmd, removeCmd, configCmd, repairCmd}},
	}
	kinds := []string{"fifo", "socket", "directory", "link to /dev/zero", "link to /dev/null", "dangling link"}
	for _, file := range files {
		for _, kind := range kinds {
			for _, c := range file.commands {
				t.Run(file.name+"/"+kind+"/"+c.args[0], func(t *testing.T) {
					t.Parallel()
					f := newFixture(t)
					f.dir = shortDir(t)
					if file.name != store.IndexFile {
						f.add(repoTok, "https://bitbucket.org/ws/repo")
					}
					path := filepath.Join(f.dir, file.name)
					_ = os.Remove(path) // the lock file the add left
					plant(t, kind, path)
					before := f.secrets.Snapshot()
					r := f.runBounded(c.stdin, c.args...)
					assert.NotEqual(t, ExitOK, r.code, "stderr %q", r.stderr)
					assert.Empty(t, r.stdout)
					assertOneLine(t, r.stderr)
					assert.Contains(t, r.stderr, path)
					assert.Contains(t, r.stderr, describe(file.name, kind))
					assert.Equal(t, before, f.secrets.Snapshot(), "the keyring changed")
					st, err := os.Lstat(path)
					require.NoError(t, err, "what was there is gone")
					assert.False(t, st.Mode().IsRegular(), "what was there was replaced by a file")
				})
			}
		}
	}
}

// TestExpiryNotesFileNeverHangs: the file that remembers expiry warnings
// is read on get's path; a named pipe there costs one notice naming it,
// and the token is still served.
func TestExpiryNotesFileNeverHangs(t *testing.T) {
	for _, kind := range []string{"fifo", "directory", "link to /dev/zero"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			f.add(repoTok, "https://bitbucket.org/ws/repo", "--expires", fixedNow.AddDate(0, 0, 3).Format(time.DateOnly))
			path := filepath.Join(f.dir, store.WarnedFile)
			plant(t, kind, path)
			r := f.runBounded("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n", "get")
			require.Equal(t, ExitOK, r.code, r.stderr)
			assert.Contains(t, r.stdout, "password="+repoTok+"\n")
			assertOneLine(t, r.stderr)
			assert.Contains(t, r.stderr, path)
			assert.Contains(t, r.stderr, describe(store.WarnedFile, kind))
		})
	}
}

// TestDoctorNeverWaitsOnPlaintextFiles: doctor reads git's plaintext
// credential files; a named pipe at one is reported, not waited on.
func TestDoctorNeverWaitsOnPlaintextFiles(t *testing.T) {
	f := newDoctorFixture(t)
	path := filepath.Join(f.home, ".git-credentials")
	plant(t, "fifo", path)
	done := make(chan result, 1)
	go func() { done <- f.cmd("", "doctor") }()
	select {
	case r := <-done:
		assert.Contains(t, r.stdout, path+" is a named pipe (FIFO)")
	case <-time.After(hangLimit):
		t.Fatalf("doctor did not return within %s: it waits on %s", hangLimit, path)
	}
}
