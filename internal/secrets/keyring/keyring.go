// Package keyring picks the OS keyring: the Secret Service on Linux and
// the BSDs, the Keychain on macOS, the Credential Manager on Windows.
package keyring
