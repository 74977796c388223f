// Package helper decides which token answers a git credential request and
// what store and erase do to the stored tokens; it also adds and removes
// tokens for the user-facing commands.
package helper

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Fixed wire usernames: with these the scope alone decides, whatever
// username the clone URL carries.
const (
	UserAccessToken = "x-token-auth"
	UserAPIToken    = "x-bitbucket-api-token-auth"
)

// StatePrefix marks our state[] values (git passes every helper's state to
// every helper).
const StatePrefix = "bbtoken:id="

// StateLogin marks an answer from an OAuth login in state[].
const StateLogin = "bbtoken:login"

// ErrBadRequest is a request git should never send: no protocol or no host.
var ErrBadRequest = errors.New("invalid credential request")

// request is git's query, parsed once at the top of get, store and
// erase into what every later step takes: the host, the path read both
// ways (which segment may drop ".git" depends on the host's flavour, which
// the index records), the user name and the capabilities (in q).
type request struct {
	q       *credential.Credential
	host    string // normalised
	hasPath bool
	skip    string // why it is never served (plain http, an odd host), or ""
	cloud   reading
	dc      reading

	// The reading of the host's flavour: set by bind.
	flavor bitbucket.Flavor
	safe   bool     // the path can be compared with path scopes
	segs   []string // cleaned path
	repo   []string // the repository part of segs
}

// reading is the path as a host of one flavour reads it.
type reading struct {
	segs, repo []string
	safe       bool
}

func readPath(f bitbucket.Flavor, p string) reading {
	segs, safe := bitbucket.RequestPath(f, p)
	rd := reading{segs: segs, safe: safe}
	if safe {
		rd.repo = bitbucket.RepositoryPath(f, segs)
	}
	return rd
}

// parseRequest validates what every operation needs: a request without
// protocol or host is an error (git never sends one); one that is never
// served (plain http, a host that is not plainly one) has skip set.
func parseRequest(q *credential.Credential) (*request, error) {
	if q.Protocol == "" {
		return nil, fmt.Errorf("%w: no protocol", ErrBadRequest)
	}
	if q.Host == "" {
		return nil, fmt.Errorf("%w: no host", ErrBadRequest)
	}
	r := &request{q: q, hasPath: q.Path != ""}
	if !bitbucket.EqualFoldASCII(q.Protocol, "https") {
		r.skip = fmt.Sprintf("protocol %q is never served a token (https only)", q.Protocol)
		return r, nil
	}
	host, err := bitbucket.NormalizeHost(q.Host)
	if err != nil {
		r.skip = fmt.Sprintf("host: %v", err)
		return r, nil
	}
	r.host = host
	r.cloud = readPath(bitbucket.Cloud, q.Path)
	r.dc = readPath(bitbucket.DataCenter, q.Path)
	return r, nil
}

// scopeURLs lists every scope URL that could cover the request, under
// either flavour's reading: the host and each leading run of path
// segments. get reads only those entries of the index.
func (r *request) scopeURLs() []string {
	urls := []string{bitbucket.Scope{Host: r.host}.String()}
	for _, rd := range []reading{r.cloud, r.dc} {
		for i := range rd.segs {
			if u := (bitbucket.Scope{Host: r.host, Path: strings.Join(rd.segs[:i+1], "/")}).String(); !slices.Contains(urls, u) {
				urls = append(urls, u)
			}
		}
	}
	return urls
}

// bind takes the reading of the flavour ix records for the host.
func (r *request) bind(ix *store.Index) {
	r.flavor = flavorOf(ix, r.host)
	rd := r.dc
	if r.flavor == bitbucket.Cloud {
		rd = r.cloud
	}
	r.segs, r.repo, r.safe = rd.segs, rd.repo, rd.safe
}

// flavorOf is the flavour setup recorded for a host, else the default.
func flavorOf(ix *store.Index, host string) bitbucket.Flavor {
	if hc, ok := ix.Hosts[host]; ok && hc.Flavor != "" {
		return bitbucket.Flavor(hc.Flavor)
	}
	return bitbucket.DefaultFlavor(host)
}

// candidate is an entry whose scope covers the request, with the reason it
// cannot be used (empty when usable).
type candidate struct {
	e      *store.Entry
	scope  bitbucket.Scope
	depth  int
	reason string
	bearer bool // usable only as authtype=Bearer
}

// candidates lists every entry on the request's host whose scope covers it,
// most specific first, each with why it is unusable (if it is).
func candidates(ix *store.Index, r *request, now time.Time) []candidate {
	var out []candidate
	for i := range ix.Entries {
		e := &ix.Entries[i]
		sc, err := bitbucket.ParseScope(e.URL)
		if err != nil || sc.Host != r.host {
			continue
		}
		c := candidate{e: e, scope: sc, depth: len(sc.Segments()), bearer: e.AuthType != ""}
		if !covers(r, sc) {
			continue
		}
		c.reason = unusable(r, c, now)
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b candidate) int {
		if d := cmp.Compare(b.depth, a.depth); d != 0 {
			return d
		}
		if d := cmp.Compare(kindRank(a.e.Kind), kindRank(b.e.Kind)); d != 0 {
			return d
		}
		// A token recorded for the user git names goes before one whose
		// wire user name is fixed (and so accepts any).
		if d := cmp.Compare(userRank(r, a.e), userRank(r, b.e)); d != 0 {
			return d
		}
		// This machine's own token for a slot overrides the team's.
		if d := cmp.Compare(storeRank(a.e), storeRank(b.e)); d != 0 {
			return d
		}
		// A pass entry's time travels in it (its updated line): every
		// machine sharing the store breaks ties alike.
		return cmp.Or(b.e.Updated.Compare(a.e.Updated), strings.Compare(a.e.Name, b.e.Name))
	})
	return out
}

// covers applies the scope rules: without a path (no useHttpPath) or with a
// path that could be read two ways, only host-wide scopes apply.
func covers(r *request, sc bitbucket.Scope) bool {
	if sc.Path == "" {
		return true
	}
	if !r.hasPath || !r.safe {
		return false
	}
	return sc.Covers(r.flavor, r.host, r.segs)
}

func unusable(r *request, c candidate, now time.Time) string {
	e := c.e
	switch {
	case e.State == store.StateNeedsLogin:
		return "the login has ended: run " + LoginCommand(e)
	case e.State == store.StateRejected:
		return "rejected (a 401 for its own scope; add it again to revive it)"
	case r.repo != nil && rejectedFor(r, e):
		return "rejected for this repository (a 401 here); still used elsewhere"
	case e.Expired(now):
		return "expired " + e.Expires
	case !usernameOK(r, e):
		return fmt.Sprintf("username %q does not match the request's %q", e.Username, r.q.Username)
	case c.bearer && !r.q.HasCapability("authtype"):
		return reasonNeedsAuthtype
	}
	return ""
}

// reasonNeedsAuthtype is the one reason get tells the user about: the token
// would be served by a newer git.
const reasonNeedsAuthtype = "needs authtype=Bearer, which this git did not offer (git 2.46 or newer is needed)"

func rejectedFor(r *request, e *store.Entry) bool {
	for _, p := range e.RejectedFor {
		segs, _ := bitbucket.CleanPath(p)
		if bitbucket.SamePath(r.flavor, segs, r.repo) {
			return true
		}
	}
	return false
}

// usernameOK respects a username in the query, except for tokens whose wire
// username is fixed or absent (Bearer): there the clone URL's username is the
// viewer's, and the scope decides.
func usernameOK(r *request, e *store.Entry) bool {
	if !r.q.HasUsername || (r.q.Username == "" && e.Added()) {
		return true
	}
	if e.Added() && (e.Username == UserAccessToken || e.Username == UserAPIToken || e.AuthType != "") {
		return true
	}
	if e.Kind == store.KindStored && !e.UsernameSet {
		return false
	}
	if r.flavor == bitbucket.Cloud {
		return bitbucket.EqualFoldASCII(e.Username, r.q.Username)
	}
	return e.Username == r.q.Username
}

// userRank is 0 for an entry recorded for the request's user, 1 otherwise.
func userRank(r *request, e *store.Entry) int {
	if r.q.Username != "" && e.Username != "" && (e.Username == r.q.Username || r.flavor == bitbucket.Cloud && bitbucket.EqualFoldASCII(e.Username, r.q.Username)) {
		return 0
	}
	return 1
}

// storeRank puts entries of this machine (keyring, env) before the
// password store's, which a team shares.
func storeRank(e *store.Entry) int {
	if e.Store == store.StorePass {
		return 1
	}
	return 0
}

func kindRank(k store.Kind) int {
	switch k {
	case store.KindRepository:
		return 0
	case store.KindProject:
		return 1
	case store.KindWorkspace:
		return 2
	case store.KindPersonal:
		return 3
	case store.KindAPI:
		return 4
	case store.KindOAuth:
		return 5
	}
	return 6 // stored: an explicit add wins over what git's prompt left behind
}

// exactScope reports whether a rejection seen for this request condemns the
// token everywhere (its scope is the request's repository or narrower) or
// only for this repository (a broader token).
func exactScope(r *request, c candidate) bool {
	return c.depth >= len(r.repo)
}
