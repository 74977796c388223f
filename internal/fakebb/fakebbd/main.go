// Command fakebbd runs a fake Bitbucket git server for demos. It reads a
// JSON config (see fakebb.Config) on stdin, prints URL=, CA= and REPO= lines
// on stdout and serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bbtoken/git-credential-bbtoken/internal/fakebb"
)

func main() {
	dir := flag.String("dir", "", "directory for repositories and the CA file (required)")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: fakebbd -dir DIR < config.json")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := fakebb.Run(ctx, *dir, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fakebbd:", err)
		os.Exit(1)
	}
}
