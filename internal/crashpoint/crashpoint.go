// Package crashpoint marks the steps of a write at which the crash test
// kills the helper. A kill at a random moment lands where a machine's speed
// puts it (on a fast machine most processes finish first, on a slow one
// most die before they touch anything); a process that waits at a named
// step is killed there whatever the speed. Only a binary built with the
// tag crashpoint (the end-to-end tests build one) waits: in any other,
// Reached does nothing.
package crashpoint

// EnvVar names the step at which the process tells the test it is there
// (a line on file descriptor 3) and waits to be killed.
const EnvVar = "GIT_CREDENTIAL_BBTOKEN_TEST_STOP_AT"

// The steps of store.Update, in order.
const (
	Journaled       = "journaled"        // a secret's id is in the journal; the keyring is untouched
	SecretWritten   = "secret-written"   // the secret is in the keyring; no entry names it
	DeleteJournaled = "delete-journaled" // removals are in the journal; secrets still there
	SecretDeleted   = "secret-deleted"   // a removed entry's secret is gone; the entry is not
	IndexSaved      = "index-saved"      // the index is saved; the journal still lists its work
	JournalReplayed = "journal-replayed" // a killed writer's leftovers are deleted; the index not yet saved
)

// The steps of a create (helper.Create), in order.
const (
	CreateIntent  = "create-intent"  // the request is recorded; the server not asked yet
	CreateCreated = "create-created" // the server made the token; nothing kept of it
)

// The steps of a rotation (helper.Rotate), in order.
const (
	RotateIntent   = "rotate-intent"   // the new token's name is recorded as pending; the server not asked yet
	RotateCreated  = "rotate-created"  // the server created the new token; nothing recorded of it
	RotateSwitched = "rotate-switched" // the entry serves the new token; the old one is not revoked
	RotateRevoked  = "rotate-revoked"  // the old token is revoked on the server; the entry still names it
)
