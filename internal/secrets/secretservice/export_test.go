//go:build linux

package secretservice

// Provider and LockedFix, for the tests against real providers.
var (
	Provider  = provider
	LockedFix = lockedFix
)
