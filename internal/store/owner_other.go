//go:build !unix

package store

import "os"

// checkOwner: Windows guards files with ACLs, not owners and mode bits.
func checkOwner(os.FileInfo, string) error { return nil }
