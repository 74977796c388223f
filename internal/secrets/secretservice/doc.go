// Package secretservice keeps secrets in the freedesktop.org Secret
// Service (gnome-keyring, KeePassXC, KWallet) with a client of its own:
// it speaks D-Bus over the session bus's unix socket and uses godbus only
// to encode and decode messages. One client serves every operation, each
// in as few round trips as the protocol allows; get, which git runs on
// every fetch, reads a secret in three calls whatever the number of items
// (authentication, Hello and the first call go out in one write).
//
// Items are what go-keyring wrote before this client existed: attributes
// {service: "git-credential-bbtoken", username: ID}, so tokens added by
// older versions are read as they are.
package secretservice
