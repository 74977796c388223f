// Command git-credential-bbtoken is a git credential helper that serves
// scoped Bitbucket tokens from the OS keyring. See internal/cli.
package main

import (
	"os"
	"runtime"

	"golang.org/x/term"

	"github.com/bbtoken/git-credential-bbtoken/internal/cli"
)

func main() {
	// A helper process lives a few milliseconds, mostly waiting on the
	// keyring: one P spares the wake-ups of idle ones (about 0.5 ms a call,
	// bench/RESULTS.md).
	runtime.GOMAXPROCS(1)
	dir, _ := os.Getwd()
	exe, _ := os.Executable()
	fd := int(os.Stdin.Fd())
	os.Exit(cli.Main(cli.Env{
		Args:         os.Args[1:],
		Stdin:        os.Stdin,
		Stdout:       os.Stdout,
		Stderr:       os.Stderr,
		Getenv:       os.Getenv,
		Dir:          dir,
		Executable:   exe,
		IsTerminal:   func() bool { return term.IsTerminal(fd) },
		ReadPassword: func() ([]byte, error) { return term.ReadPassword(fd) },
	}))
}
