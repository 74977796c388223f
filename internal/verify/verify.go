// Package verify checks stored tokens against Bitbucket's REST API: which
// entries a request names, what to send where for each, what the answer
// means for git (clone, push, expiry), and the verdicts to record.
package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bbapi"
	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
	"github.com/bbtoken/git-credential-bbtoken/internal/trace"
)

// Row is one token in verify's report (and one object of --json).
type Row struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Kind           string   `json:"kind"`
	Status         string   `json:"status"`
	HTTPStatus     *int     `json:"http_status"`     // null: no answer
	CredentialType string   `json:"credential_type"` // Cloud's x-credential-type
	Scopes         []string `json:"scopes"`          // null: not reported (Data Center never does)
	CanClone       *bool    `json:"can_clone"`       // null: unknown
	CanPush        *bool    `json:"can_push"`        // null: unknown
	Expires        string   `json:"expires"`         // as recorded by add --expires
	Detail         string   `json:"detail"`
	Checked        string   `json:"checked,omitempty"` // the URL requested, if any
}

// Report is what Run found: a row per token checked, and the error of
// recording the verdicts, if that failed (the rows stand either way).
type Report struct {
	Rows      []Row
	RecordErr error
}

// NotValid counts the rows not verified valid.
func (r Report) NotValid() int {
	n := 0
	for _, row := range r.Rows {
		if row.Status != string(bbapi.StatusValid) {
			n++
		}
	}
	return n
}

// Verifier checks the tokens of Helper's store with Client.
type Verifier struct {
	Helper *helper.Helper
	Client *bbapi.Client
	Now    time.Time     // for expiry notes
	Trace  *trace.Logger // nil: no trace
}

// plan is one token to check: what to send where.
type plan struct {
	e      store.Entry
	flavor bitbucket.Flavor
	// repository is set when the check is for a repository narrower than
	// the token's scope (verify URL inside a broader token's scope).
	repository string
	ep         bbapi.Endpoint
	auth       bbapi.Auth
	// skip, when set, is why nothing is sent (status unverifiable).
	skip string
}

// Run checks every token (arg ""), the one with id arg, or those git could
// use at or below the URL arg. Every secret is read before anything goes
// out: a keyring that does not answer stops it before any request. The
// revivals and rejections found are then recorded in one locked update,
// after the network, so git processes never wait on verify's requests.
func (v *Verifier) Run(ctx context.Context, arg string) (Report, error) {
	ix, err := v.Helper.Store.Load()
	if err != nil {
		return Report{}, err
	}
	plans, err := v.planAll(ctx, ix, arg)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Rows: make([]Row, 0, len(plans))}
	var verdicts []helper.Verified
	silent := map[string]string{} // origin -> why it gave no answer
	for _, p := range plans {
		row, vd := v.checkOne(ctx, p, silent)
		rep.Rows = append(rep.Rows, row)
		if vd != nil {
			verdicts = append(verdicts, *vd)
		}
	}

	var pending []helper.Verified
	for _, vd := range verdicts {
		if e, ok := ix.Find(vd.ID); ok && helper.NeedsRecord(e, vd) {
			pending = append(pending, vd)
		}
	}
	if len(pending) > 0 {
		changed, err := v.Helper.RecordVerified(ctx, pending)
		if err != nil {
			rep.RecordErr = fmt.Errorf("the results were not recorded: %w", err)
		}
		for _, e := range changed {
			i := slices.IndexFunc(rep.Rows, func(row Row) bool { return row.ID == e.ID })
			if i < 0 {
				continue
			}
			note := "now marked rejected: git is no longer given it (create a new token and add it)"
			if e.Server != nil {
				note = "now marked rejected: git is no longer given it (`git-credential-bbtoken rotate " + e.ID + "` makes a new one)"
			}
			if e.State != store.StateRejected {
				note = "git is given it for " + checkedRepo(pending, e.ID) + " again"
				if old, ok := ix.Find(e.ID); ok && old.State == store.StateRejected {
					note = "it was marked rejected and is active again"
				}
			}
			rep.Rows[i].Detail = joinNotes(rep.Rows[i].Detail, note)
		}
	}
	for i := range rep.Rows {
		if e, ok := ix.Find(rep.Rows[i].ID); ok {
			rep.Rows[i].Detail = joinNotes(rep.Rows[i].Detail, expiryNote(e, rep.Rows[i].Status, v.Now))
		}
	}

	return rep, nil
}

func checkedRepo(vs []helper.Verified, id string) string {
	for _, v := range vs {
		if v.ID == id {
			return v.Repository
		}
	}
	return ""
}

// isEntryID reports whether arg has the form of an entry id (8 lower-case
// hex digits).
func isEntryID(arg string) bool {
	if len(arg) != 8 {
		return false
	}
	for i := range len(arg) {
		if c := arg[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// planAll picks the entries to check and prepares each request: every
// entry; the one with ID arg; or, for a URL, every token git could use
// there or below it, each checked for the narrower of its scope and the
// URL (a workspace token asked about a repository is checked for that
// repository).
func (v *Verifier) planAll(ctx context.Context, ix *store.Index, arg string) ([]plan, error) {
	type pick struct {
		e     store.Entry
		check bitbucket.Scope // what to check
	}
	var picks []pick
	own := func(e store.Entry) pick {
		sc, _ := bitbucket.ParseScope(e.URL) // errors surface when planned
		return pick{e, sc}
	}
	entries := slices.Clone(ix.Entries)
	slices.SortStableFunc(entries, func(a, b store.Entry) int {
		return cmp.Or(strings.Compare(a.URL, b.URL), strings.Compare(string(a.Kind), string(b.Kind)))
	})
	switch e, ok := ix.Find(arg); {
	case arg == "":
		for _, e := range entries {
			picks = append(picks, own(e))
		}
	case ok:
		picks = append(picks, own(*e))
	case isEntryID(arg):
		return nil, fmt.Errorf("%w with id %s (see `git-credential-bbtoken list`)", store.ErrNoEntry, arg)
	default:
		sc, f, err := bitbucket.ParseUserURL(arg, func(host string) bitbucket.Flavor { return helper.FlavorOf(ix, host) })
		if err != nil {
			return nil, fmt.Errorf("%w: %q is neither an id nor a URL (%v)", store.ErrNoEntry, arg, err)
		}
		for _, e := range entries {
			esc, err := bitbucket.ParseScope(e.URL)
			switch {
			case err != nil || esc.Host != sc.Host:
			case esc.Covers(f, sc.Host, sc.Segments()): // the URL's scope or broader
				picks = append(picks, pick{e, sc})
			case sc.Covers(f, esc.Host, esc.Segments()): // below the URL
				picks = append(picks, own(e))
			}
		}
		if len(picks) == 0 {
			return nil, fmt.Errorf("%w for %s (see `git-credential-bbtoken list`)", store.ErrNoEntry, sc)
		}
	}
	plans := make([]plan, 0, len(picks))
	for _, pk := range picks {
		p, err := v.plan(ctx, ix, pk.e, pk.check)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// plan prepares the check of one entry for scope check.
func (v *Verifier) plan(ctx context.Context, ix *store.Index, e store.Entry, check bitbucket.Scope) (plan, error) {
	p := plan{e: e}
	own, err := bitbucket.ParseScope(e.URL)
	if err != nil {
		p.skip = fmt.Sprintf("its scope %q cannot be read: %v", e.URL, err)
		return p, nil
	}
	p.flavor = helper.FlavorOf(ix, own.Host)
	if check.Path != own.Path {
		p.repository = check.Path
	}
	base := ix.Hosts[own.Host].APIURL
	if base == "" {
		if base, err = bbapi.DefaultBase(p.flavor, check); err != nil {
			p.skip = fmt.Sprintf("%v: tell where its REST API is with `git-credential-bbtoken setup --host https://%s --flavor cloud --api-url URL`", err, own.Host)
			return p, nil
		}
	}
	if p.ep, err = bbapi.CheckEndpoint(p.flavor, base, check); err != nil {
		p.skip = err.Error()
		return p, nil
	}
	if e.Kind == store.KindOAuth {
		p.skip = "a login: get renews its access token when git needs one (check it with git ls-remote)"
		return p, nil
	}
	if p.auth, p.skip = authFor(&e, p.flavor); p.skip != "" {
		return p, nil
	}
	secret, err := v.Helper.WireSecret(ctx, &e)
	switch {
	case errors.Is(err, secrets.ErrNotFound) && e.Store == store.StorePass:
		p.skip = "its entry changed or went from the password store since it was read: run `git-credential-bbtoken list`, then verify again"
		return p, nil
	case errors.Is(err, secrets.ErrNotFound):
		p.skip = "its secret is missing from the keyring: add the token again (or see `git-credential-bbtoken repair`)"
		return p, nil
	case errors.Is(err, store.ErrEnvUnset):
		p.skip = err.Error() + ": set it where verify runs"
		return p, nil
	case err != nil && e.Store == store.StorePass:
		p.skip = err.Error()
		return p, nil
	case err != nil:
		return p, err
	case secret == "":
		p.skip = "it has no token to send"
		return p, nil
	}
	p.auth.Secret = secret
	return p, nil
}

// authFor is how the REST API takes an entry's token: Bearer for Cloud
// access tokens and Data Center project and repository tokens; Basic with
// the Atlassian e-mail for Cloud API tokens; Basic with the username (what
// git sends) for Data Center personal tokens. skip says why it cannot be
// checked.
func authFor(e *store.Entry, f bitbucket.Flavor) (a bbapi.Auth, skip string) {
	if e.AuthType != "" {
		if !bitbucket.EqualFoldASCII(e.AuthType, "Bearer") {
			return a, fmt.Sprintf("authtype %q cannot be checked", e.AuthType)
		}
		return bbapi.Auth{Bearer: true}, ""
	}
	if f == bitbucket.Cloud {
		switch {
		case e.Kind == store.KindRepository || e.Kind == store.KindProject || e.Kind == store.KindWorkspace:
			return bbapi.Auth{Bearer: true}, ""
		case e.Kind == store.KindAPI && e.Email != "":
			return bbapi.Auth{Username: e.Email}, ""
		case e.Kind == store.KindAPI:
			return a, "Bitbucket's REST API takes API tokens only with your Atlassian e-mail, which was not recorded: add the token again with --email YOU@EXAMPLE.COM (git itself never uses it)"
		case e.Kind == store.KindStored && e.Username == helper.UserAccessToken:
			return bbapi.Auth{Bearer: true}, ""
		}
		return a, "git stored this credential with a username; Bitbucket's REST API takes API tokens only with the Atlassian e-mail: add it with `git-credential-bbtoken add --kind api --email YOU@EXAMPLE.COM` to check it"
	}
	if (e.Kind == store.KindPersonal || (e.Kind == store.KindStored && e.UsernameSet)) && e.Username != "" {
		return bbapi.Auth{Username: e.Username}, ""
	}
	return a, fmt.Sprintf("a %s token without a username cannot be checked", e.Kind)
}

// checkOne runs one plan; verdict is what to record, if any.
func (v *Verifier) checkOne(ctx context.Context, p plan, silent map[string]string) (row Row, verdict *helper.Verified) {
	e := p.e
	row = Row{ID: e.ID, URL: e.URL, Kind: string(e.Kind), Expires: e.Expires}
	if p.skip != "" {
		row.Status, row.Detail = string(bbapi.StatusUnverifiable), p.skip
		return row, nil
	}
	origin := originOf(p.ep.URL)
	if why, ok := silent[origin]; ok {
		row.Status, row.Detail = string(bbapi.StatusError), "not checked: "+why
		return row, nil
	}
	v.Trace.Printf("verify: %s (%s %s)", e.ID, e.Kind, e.URL)
	row.Checked = p.ep.URL
	res := v.Client.Check(ctx, p.ep, p.auth)
	if res.Status == bbapi.StatusError && res.HTTPStatus == 0 {
		silent[origin] = res.Detail
	}
	row.Status = string(res.Status)
	if res.HTTPStatus != 0 {
		row.HTTPStatus = &res.HTTPStatus
	}
	row.CredentialType, row.Scopes = res.CredentialType, res.Scopes
	row.CanClone, row.CanPush = res.Access(p.ep)
	row.Detail = res.Detail
	if p.repository != "" && res.Status == bbapi.StatusValid {
		row.Detail = joinNotes(row.Detail, "checked for "+p.repository+", inside the token's scope")
	}
	if res.Account != "" {
		row.Detail = joinNotes(row.Detail, "authenticated as "+res.Account)
	}
	if k := bbapi.KindOf(res.CredentialType); k != "" && e.Added() && k != string(e.Kind) {
		row.Detail = joinNotes(row.Detail, fmt.Sprintf("Bitbucket reports a %s token, added here as a %s token", k, e.Kind))
	}
	row.Detail = joinNotes(row.Detail, accessNote(p, row))
	switch res.Status {
	case bbapi.StatusValid:
		verdict = &helper.Verified{ID: e.ID, Secret: p.auth.Secret, Accepted: true, Repository: p.repository}
	case bbapi.StatusRejected:
		verdict = &helper.Verified{ID: e.ID, Secret: p.auth.Secret, Refused: true}
	}
	return row, verdict
}

// accessNote says what stands between the token and clone or push.
func accessNote(p plan, row Row) string {
	if row.Status != string(bbapi.StatusValid) && row.Status != string(bbapi.StatusLackingScope) {
		return ""
	}
	read, write := "repository", "repository:write"
	if p.e.Kind == store.KindAPI {
		read, write = "read:repository:bitbucket", "read:repository:bitbucket and write:repository:bitbucket"
	}
	switch {
	case p.flavor != bitbucket.Cloud && row.Scopes == nil:
		if row.CanClone == nil {
			return "Data Center does not report a token's permissions: clone and push unknown"
		}
		return "Data Center does not report a token's permissions: push unknown"
	case row.CanClone != nil && !*row.CanClone:
		return "git cannot clone with it: it needs " + read
	case row.CanPush != nil && !*row.CanPush:
		return "read-only: pushing needs " + write
	case row.CanClone == nil && row.Scopes == nil:
		return "the server did not report the token's scopes: clone and push unknown"
	}
	return ""
}

// expiryNote tells about the expiry recorded with add --expires (no
// Bitbucket API reports one).
func expiryNote(e *store.Entry, status string, now time.Time) string {
	t, ok, err := e.ExpiresAt()
	if !ok || err != nil {
		return ""
	}
	switch left := t.Sub(now); {
	case left <= 0 && status == string(bbapi.StatusValid):
		return fmt.Sprintf("its recorded expiry %s has passed, so git is not given it: if that date is wrong, add it again with the right --expires", e.Expires)
	case left <= 0:
		return fmt.Sprintf("expired %s (as recorded)", e.Expires)
	case left <= helper.ExpiryWarningDays*24*time.Hour:
		return fmt.Sprintf("expires %s (as recorded), in %d day(s)", e.Expires, int(left.Hours()/24))
	}
	return ""
}

func joinNotes(a, b string) string {
	switch {
	case b == "":
		return a
	case a == "":
		return b
	}
	return a + "; " + b
}

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}
