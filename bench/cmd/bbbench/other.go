//go:build !linux

// Command bbbench measures git-credential-bbtoken against git's own
// credential helpers; it needs Linux (gnome-keyring, D-Bus). See bench/run.sh.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bbbench: the benchmark runs on Linux only (gnome-keyring in a private D-Bus session)")
	os.Exit(1)
}
