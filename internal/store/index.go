// Package store keeps tokens: their secrets in the OS keyring (or any
// Secrets backend) and their non-secret metadata in an index file that
// parallel git processes share under a file lock.
package store

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// IndexVersion is the format this build reads and writes. A file with a
// higher version came from a newer build: we read it but never rewrite it.
const IndexVersion = 1

// Kind is what sort of token an entry holds; it decides what goes on the wire.
type Kind string

// Token kinds. KindStored is a credential git approved through `store`
// (typed at git's prompt or supplied by another helper).
const (
	KindRepository Kind = "repository"
	KindProject    Kind = "project"
	KindWorkspace  Kind = "workspace"
	KindAPI        Kind = "api"
	KindPersonal   Kind = "personal"
	KindStored     Kind = "stored"
	KindOAuth      Kind = "oauth" // a login: an access token refreshed with a refresh token
)

// Kinds users may pass to `add --kind`.
var AddKinds = []Kind{KindRepository, KindProject, KindWorkspace, KindAPI, KindPersonal}

// State is an entry's recorded state; "expired" is derived from Expires.
type State string

// Recorded states.
const (
	StateActive   State = "active"
	StateRejected State = "rejected"
	// StateNeedsLogin: an OAuth login whose refresh token was refused
	// (expired, revoked, already used): only `login` revives it.
	StateNeedsLogin State = "needs-login"
	StateExpired    State = "expired" // derived, never written
)

// Where an entry's secret lives (Entry.Store).
const (
	StoreKeyring = "keyring" // the OS keyring (recorded as "")
	StorePass    = "pass"    // the password store (pass, gpg): the entry there is the record, the index a cache of it
	StoreEnv     = "env"     // an environment variable, read when git asks: nothing secret is stored
)

// Stores users may name (`add --store`, `config store`).
var Stores = []string{StoreKeyring, StorePass}

// SecretFormat says how the keyring value of an entry is encoded.
type SecretFormat string

// Secret encodings: a bare token, or a JSON object when git gave us more
// than one confidential field to keep.
const (
	SecretRaw  SecretFormat = ""
	SecretJSON SecretFormat = "json"
)

// Entry is one token's metadata. It never holds the secret.
type Entry struct {
	ID          string       `json:"id"`
	URL         string       `json:"url"` // the scope, see bitbucket.Scope.String
	Kind        Kind         `json:"kind"`
	Username    string       `json:"username,omitempty"`
	Email       string       `json:"email,omitempty"`        // Cloud API tokens: the Atlassian e-mail the REST API (verify) needs; git never does
	UsernameSet bool         `json:"username_set,omitempty"` // stored entries: an empty username is still a username
	Label       string       `json:"label,omitempty"`
	Expires     string       `json:"expires,omitempty"` // YYYY-MM-DD (expires at 00:00 UTC that day) or RFC 3339
	State       State        `json:"state,omitempty"`
	RejectedFor []string     `json:"rejected_for,omitempty"` // repository paths where git saw a 401 with this token
	AuthType    string       `json:"authtype,omitempty"`     // stored authtype+credential pairs
	Format      SecretFormat `json:"secret_format,omitempty"`
	// Hint is what the secret backend said of where it keeps the secret
	// (the Secret Service: the item's object path), kept without knowing
	// what it means: get hands it back, and the backend may read there
	// directly, trusting the value only if Check recognises it, instead
	// of searching a keyring that may hold thousands of items.
	Hint string `json:"hint,omitempty"`
	// LegacyItem is Hint as versions before the secret backends wrote it.
	LegacyItem string `json:"item,omitempty"`
	// Check recognises the secret without reading it (see check.go):
	// git's store after every success then needs no keyring call, and get
	// trusts the value it finds at Hint.
	Check string `json:"check,omitempty"`
	// Store is where the secret lives: "" (the keyring), StorePass or
	// StoreEnv.
	Store string `json:"store,omitempty"`
	// Env names the variable an env entry's token is read from.
	Env string `json:"env,omitempty"`
	// Name and Stamp: a pass entry's name under the store's
	// git-credential-bbtoken folder, and the SHA-256 of the ciphertext
	// this cached copy of its fields was read from: another stamp means
	// the entry changed (a pull, another machine's add) and is read again.
	Name  string `json:"name,omitempty"`
	Stamp string `json:"stamp,omitempty"`
	// OAuth is a login's public half (its secret holds the consumer's
	// secret and the tokens).
	OAuth *OAuthLogin `json:"oauth,omitempty"`
	// Server is a Data Center token this helper created through the REST
	// API (`create`): what rotate and revoke need.
	Server  *ServerToken `json:"server,omitempty"`
	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`
}

// OAuthLogin is what the index keeps of an OAuth login.
type OAuthLogin struct {
	Consumer     string    `json:"consumer"`      // the consumer's key (client_id)
	TokenURL     string    `json:"token_url"`     // where the refresh goes
	AccessExpiry time.Time `json:"access_expiry"` // when the access token in the secret dies; zero: refresh first
	Scopes       string    `json:"scopes,omitempty"`
	// Checks of the access token and of the one before it (see
	// NewTokenCheck): git's store after a success recognises a token the
	// login issued, even one a parallel refresh has just replaced, and
	// keeps no copy of it.
	AccessCheck string `json:"access_check,omitempty"`
	PrevCheck   string `json:"prev_check,omitempty"`
}

// ServerToken is what the index keeps of a token the helper created on a
// Data Center server (never the token itself).
type ServerToken struct {
	ID          string   `json:"id"`    // the server's id of the token the entry serves
	Name        string   `json:"name"`  // its name there
	API         string   `json:"api"`   // the instance URL (context path included) the REST calls go to
	Owner       string   `json:"owner"` // users/SLUG, projects/KEY or projects/KEY/repos/SLUG
	Permissions []string `json:"permissions"`
	ExpiryDays  int      `json:"expiry_days,omitempty"` // asked for at creation (0: none); rotations ask the same
	// By is the user whose password manages the token ("": an OAuth
	// login of the host).
	By string `json:"by,omitempty"`
	// Pending names a token a rotation asked the server for and may not
	// have recorded (killed before it could): the next rotate or repair
	// revokes every token of that name.
	Pending string `json:"pending,omitempty"`
	// Retire is the id of the token a rotation replaced, revoked on the
	// server once RetireAfter passed (git processes that read it before
	// the switch have finished by then).
	Retire      string    `json:"retire,omitempty"`
	RetireAfter time.Time `json:"retire_after,omitzero"`
	// Formerly lists the entry ids earlier rotations replaced (the last
	// few), so that `rotate ID` from an old warning still finds it.
	Formerly []string `json:"formerly,omitempty"`
	// PrevCheck recognises the token the last rotation replaced: git's
	// store after a fetch that used it keeps no copy of a token about to
	// be revoked.
	PrevCheck string `json:"prev_check,omitempty"`
}

// PendingCreate is a create that asked the server for a token and may
// not have recorded it (killed, or no answer came): the next create,
// rotate or repair revokes every token of that name the owner has that
// was not there before (Existing) and that no entry serves.
type PendingCreate struct {
	URL      string    `json:"url"` // the scope asked for
	API      string    `json:"api"`
	Owner    string    `json:"owner"`
	Name     string    `json:"name"`
	By       string    `json:"by,omitempty"` // whose password ("": the host's OAuth login)
	Existing []string  `json:"existing,omitempty"`
	Started  time.Time `json:"started"`
}

// Same reports whether o records the same request as p.
func (p PendingCreate) Same(o PendingCreate) bool {
	return p.API == o.API && p.Owner == o.Owner && p.Name == o.Name && p.Started.Equal(o.Started)
}

// Unfinished reports a rotation that was interrupted or is under way.
func (s *ServerToken) Unfinished() bool { return s != nil && (s.Pending != "" || s.Retire != "") }

// Issued reports whether the login issued the access token raw (the
// current one or the one before).
func (o *OAuthLogin) Issued(raw string) bool {
	return o != nil && (CheckMatches(o.AccessCheck, raw) || CheckMatches(o.PrevCheck, raw))
}

// upgrade moves what older versions wrote into today's fields.
func (e *Entry) upgrade() {
	if e.Hint == "" {
		e.Hint = e.LegacyItem
	}
	e.LegacyItem = ""
}

// InKeyring reports whether the entry's secret is in the keyring.
func (e *Entry) InKeyring() bool { return e.Store == "" || e.Store == StoreKeyring }

// StoreName is where the secret lives, as `list` shows it.
func (e *Entry) StoreName() string {
	if e.InKeyring() {
		return StoreKeyring
	}
	return e.Store
}

// Added reports whether a user added the entry (as opposed to git's store).
func (e *Entry) Added() bool { return e.Kind != KindStored }

// ExpiresAt parses Expires; ok is false when the entry has no expiry.
func (e *Entry) ExpiresAt() (t time.Time, ok bool, err error) {
	if e.Expires == "" {
		return time.Time{}, false, nil
	}
	if t, err := time.Parse(time.DateOnly, e.Expires); err == nil {
		return t, true, nil
	}
	t, err = time.Parse(time.RFC3339, e.Expires)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("entry %s: bad expiry %q", e.ID, e.Expires)
	}
	return t, true, nil
}

// MaxExpiry is the latest expiry an entry records: RFC 3339 has four-digit
// years, and git may pass any unix time (password_expiry_utc). A later
// expiry is recorded as this one, which nobody will see pass; recording
// it as written would make the entry unreadable, and so expired forever.
var MaxExpiry = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// ClampExpiry is a unix time as an entry can record it.
func ClampExpiry(unix int64) int64 { return min(unix, MaxExpiry.Unix()) }

// FormatExpiry renders a unix time for Entry.Expires (clamped).
func FormatExpiry(unix int64) string {
	return time.Unix(ClampExpiry(unix), 0).UTC().Format(time.RFC3339)
}

// Expired reports whether the entry's expiry is at or before now.
func (e *Entry) Expired(now time.Time) bool {
	t, ok, err := e.ExpiresAt()
	if err != nil {
		return true // unreadable expiry: do not serve
	}
	return ok && !now.Before(t)
}

// EffectiveState is what `list` shows.
func (e *Entry) EffectiveState(now time.Time) State {
	switch {
	case e.State == StateRejected, e.State == StateNeedsLogin:
		return e.State
	case e.Expired(now):
		return StateExpired
	}
	return StateActive
}

// HostConfig is what `setup` recorded for one host.
type HostConfig struct {
	Flavor string `json:"flavor,omitempty"`
	// What setup added to git's global config, so --remove undoes only that.
	HelperValue  string `json:"helper_value,omitempty"`
	AddedUseHTTP bool   `json:"added_use_http_path,omitempty"`
	PrevUseHTTP  string `json:"previous_use_http_path,omitempty"`
	// APIURL is the REST API base URL verify uses ("" = the default).
	APIURL string `json:"api_url,omitempty"`
	// BaseURL is where `setup --detect` found the instance (with its context
	// path, e.g. https://bb.example.com/bitbucket).
	BaseURL string `json:"base_url,omitempty"`
}

// Index is the whole metadata file.
type Index struct {
	Version int                   `json:"version"`
	Hosts   map[string]HostConfig `json:"hosts,omitempty"`
	Entries []Entry               `json:"entries"`
	// Settings are the user's choices (`config`), e.g. expiry-warnings=off.
	Settings map[string]string `json:"settings,omitempty"`
	// Creating lists creates that asked a server for a token and have not
	// recorded it yet (see PendingCreate).
	Creating []PendingCreate `json:"creating,omitempty"`

	newer int // format version of a file from a newer build: read-only
}

// Newer is the format version of an index written by a newer build, which
// this build reads but never writes; 0 for a current one.
func (ix *Index) Newer() int { return ix.newer }

// ErrNoEntry is returned when an ID or URL names nothing.
var ErrNoEntry = errors.New("no such entry")

// Find returns the entry with the given ID.
func (ix *Index) Find(id string) (*Entry, bool) {
	for i := range ix.Entries {
		if ix.Entries[i].ID == id {
			return &ix.Entries[i], true
		}
	}
	return nil, false
}

// Remove drops the entry with the given ID and reports whether it existed.
func (ix *Index) Remove(id string) bool {
	n := len(ix.Entries)
	ix.Entries = slices.DeleteFunc(ix.Entries, func(e Entry) bool { return e.ID == id })
	return len(ix.Entries) != n
}

// HasID reports whether an ID is taken.
func (ix *Index) HasID(id string) bool {
	_, ok := ix.Find(id)
	return ok
}
