package bitbucket

import "strings"

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

// IsAppPassword reports whether a secret is a Bitbucket app password,
// which stopped working on 28 July 2026.
func IsAppPassword(secret string) bool { return strings.HasPrefix(secret, PrefixAppPassword) }
