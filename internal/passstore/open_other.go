//go:build !unix

package passstore

// No FIFOs to block on, and symbolic links are rare enough to follow.
const (
	nonBlock = 0
	noFollow = 0
)
