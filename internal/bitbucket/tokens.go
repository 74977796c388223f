package bitbucket

import (
	"math"
	"strings"
)

// Token prefixes observed on Bitbucket Cloud (undocumented: used to default
// a token's kind and to recognise dead app passwords, never to refuse an
// unknown token).
const (
	PrefixAPIToken    = "ATATT"
	PrefixAccessToken = "ATCTT"
	PrefixAppPassword = "ATBB"
	// PrefixDataCenter is what Data Center HTTP access tokens have been
	// seen to start with.
	PrefixDataCenter = "BBDC-"
)

// tokenPrefixes are every prefix above, for recognising a token anywhere.
var tokenPrefixes = []string{PrefixAPIToken, PrefixAccessToken, PrefixAppPassword, PrefixDataCenter}

// IsAppPassword reports whether a secret is a Bitbucket app password,
// which stopped working on 28 July 2026.
func IsAppPassword(secret string) bool { return strings.HasPrefix(secret, PrefixAppPassword) }

// What every message about an app password says, said here once.
const (
	// AppPasswordsEnded is why an app password is of no use.
	AppPasswordsEnded = "Bitbucket app passwords stopped working on 28 July 2026 (git gets HTTP 410)"
	// CreateAPIToken is how to make what replaces one.
	CreateAPIToken = "create an API token at https://id.atlassian.com/manage-profile/security/api-tokens with the scopes read:repository:bitbucket and write:repository:bitbucket"
)

// ReplaceAppPassword is the whole fix for an app password used at
// hostURL: create an API token and add it with command (the helper's
// name). An empty user is a placeholder for the user to fill in.
func ReplaceAppPassword(command, hostURL, user string) string {
	if user == "" {
		user = "YOUR_BITBUCKET_USERNAME"
	}
	return CreateAPIToken + ", then: " + command + " add " + hostURL + " --kind api --username " + user
}

// HasTokenPrefix reports whether s starts with a known Bitbucket token
// prefix. Letter case counts: host names such as bbdc-prod.example.com
// are not tokens.
func HasTokenPrefix(s string) bool {
	for _, p := range tokenPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// MinMaskedToken is the shortest text taken for a token by its prefix
// alone: "ATATT" in a sentence is a word, not a secret.
const MinMaskedToken = 16

// LooksLikeToken reports whether s may be a token, for masking it where a
// name is expected (a URL's user name, a command's argument). It errs
// towards yes: a known prefix, or long text in a token's alphabet that
// mixes upper case, lower case and digits with little repetition (or is
// long hexadecimal). Names people choose (alice, x-token-auth,
// jenkins-build-2024, first.last) are not.
func LooksLikeToken(s string) bool {
	if !inTokenAlphabet(s) {
		return false
	}
	if HasTokenPrefix(s) && len(s) >= MinMaskedToken {
		return true
	}
	if len(s) >= 32 && isHex(s) {
		return true
	}
	return len(s) >= 20 && mixesClasses(s) && charEntropy(s) >= 3.5
}

// Checkable reports whether a keyed check of s (a salted MAC kept in a
// file) reveals nothing about it: only a Bitbucket token of a known
// format, whose prefix is followed by machine-made random text (Cloud's
// API and access tokens run to some 190 characters, Data Center's to some
// 45). Nothing else, however random it looks: how random a value a person
// chose is cannot be measured from the value, and a dictionary recovers a
// password from its check.
func Checkable(s string) bool {
	if !inTokenAlphabet(s) {
		return false
	}
	switch {
	case strings.HasPrefix(s, PrefixAPIToken), strings.HasPrefix(s, PrefixAccessToken):
		return len(s) >= minCloudToken
	case strings.HasPrefix(s, PrefixDataCenter):
		return len(s) >= minDataCenterToken
	}
	return false
}

// The shortest Cloud and Data Center tokens Checkable takes: well under
// the real ones, well over any password that would start the same way.
const (
	minCloudToken      = 60
	minDataCenterToken = 40
)

// inTokenAlphabet: tokens are base64 or base64url, possibly with '-', '.'
// or '~' separators; anything else (spaces, '@', ':') is not one.
func inTokenAlphabet(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '+', c == '/', c == '=', c == '_', c == '-', c == '.', c == '~':
		default:
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// mixesClasses: upper case, lower case and digits all occur.
func mixesClasses(s string) bool {
	var upper, lower, digit bool
	for i := range len(s) {
		c := s[i]
		upper = upper || 'A' <= c && c <= 'Z'
		lower = lower || 'a' <= c && c <= 'z'
		digit = digit || '0' <= c && c <= '9'
	}
	return upper && lower && digit
}

// charEntropy is the Shannon entropy of s's byte distribution, in bits
// per byte.
func charEntropy(s string) float64 {
	var counts [256]int
	for i := range len(s) {
		counts[s[i]]++
	}
	h, n := 0.0, float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
