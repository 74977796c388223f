// Command git-credential-bbtoken is a git credential helper that serves
// scoped Bitbucket tokens from the OS keyring. See internal/cli.
//
// git starts it for every fetch and push and it lives a few milliseconds:
// the runtime need not size GOMAXPROCS to a container's CPU quota (reading
// cgroup files at start-up) nor watch it change.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"os"

	"golang.org/x/term"

	"github.com/bbtoken/git-credential-bbtoken/internal/cli"
)

func main() {
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
