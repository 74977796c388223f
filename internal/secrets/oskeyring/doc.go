// Package oskeyring keeps secrets in the OS keyring of macOS (the login
// Keychain) and Windows (the Credential Manager) through go-keyring. On
// other systems it is empty: the Secret Service has a package of its own.
package oskeyring
