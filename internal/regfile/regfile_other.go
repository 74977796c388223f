//go:build !unix

package regfile

// Windows has no named pipes in the file system and no O_NONBLOCK or
// O_NOFOLLOW: the checks before and after opening are what is left.
const nonBlock = 0

func noFollow(Follow) int { return 0 }

func isLoop(error) bool { return false }

func isNoReader(error) bool { return false }
