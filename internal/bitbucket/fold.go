package bitbucket

// LowerASCII lower-cases ASCII letters only, for the same reason.
func LowerASCII(s string) string { return asciiLower(s) }

// EqualFoldASCII compares case-insensitively for ASCII letters only.
// Protocols, hosts, slugs and Bitbucket usernames are ASCII; Unicode case
// folding (strings.EqualFold) would let look-alikes such as U+017F (ſ) or
// the Kelvin sign stand in for 's' and 'K'.
func EqualFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
