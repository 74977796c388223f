package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/gitrepo"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// checkRemotes reads the remotes of the work tree around Dir (through git)
// and checks each URL: SSH remotes this helper cannot serve, credentials
// written into a URL, Bitbucket hosts that are not set up, and whether a
// token covers the remote.
func (d *Doctor) checkRemotes(ctx context.Context, ix *store.Index, gv gitVersion, hs hostState) []Finding {
	base := Finding{Check: "remote", Subject: "remotes"}
	remotes, err := gitrepo.Remotes(d.Dir)
	if errors.Is(err, gitrepo.ErrNoRepository) {
		f := base
		f.Level, f.Message = OK, "not in a git work tree (run doctor inside a clone to check its remotes)"
		return []Finding{f}
	}
	if err != nil {
		f := base
		f.Level, f.Message = Warn, "cannot read the repository's config: "+oneLine(err.Error())
		return []Finding{f}
	}
	slices.SortStableFunc(remotes, func(a, b gitrepo.Remote) int { return strings.Compare(a.Name, b.Name) })
	var out []Finding
	for _, r := range remotes {
		for _, u := range r.URLs {
			out = append(out, d.checkRemoteURL(ctx, r.Name, false, u, ix, gv, hs)...)
		}
		for _, u := range r.PushURLs {
			out = append(out, d.checkRemoteURL(ctx, r.Name, true, u, ix, gv, hs)...)
		}
	}
	if len(out) == 0 {
		f := base
		f.Level, f.Message = OK, "the repository has no remotes"
		out = append(out, f)
	}
	return out
}

// remoteURL is an http(s) remote URL split into parts; the password is
// only noted, never kept.
type remoteURL struct {
	scheme   string // lower case
	user     string
	hasUser  bool
	hasPass  bool
	hostPort string // as written
	path     string // without leading '/'
}

// splitRemoteURL splits scheme://[userinfo@]host[:port][/path]. A pasted
// password may hold an unescaped '/', '?', '#' or '@', so, like
// bitbucket.RedactURL, the userinfo is taken to end at the last '@'.
func splitRemoteURL(raw string) (remoteURL, bool) {
	var r remoteURL
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return r, false
	}
	r.scheme = bitbucket.LowerASCII(scheme)
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, _, hasPass := strings.Cut(rest[:at], ":")
		if !strings.ContainsAny(user, "/?#") {
			r.user, r.hasUser, r.hasPass = user, true, hasPass
			rest = rest[at+1:]
		}
	}
	r.hostPort, r.path, _ = strings.Cut(rest, "/")
	return r, r.hostPort != ""
}

// clean is the URL without userinfo.
func (r remoteURL) clean() string {
	s := r.scheme + "://" + r.hostPort
	if r.path != "" {
		s += "/" + r.path
	}
	return s
}

// redacted is the URL as findings show it: the password masked, and a
// user name that looks like a token too (bitbucket.RedactURL).
func (r remoteURL) redacted() string {
	switch {
	case r.hasPass:
		return bitbucket.RedactURL(r.scheme + "://" + r.user + ":****@" + strings.TrimPrefix(r.clean(), r.scheme+"://"))
	case r.hasUser:
		return bitbucket.RedactURL(r.scheme + "://" + r.user + "@" + strings.TrimPrefix(r.clean(), r.scheme+"://"))
	}
	return r.clean()
}

// sshParts splits ssh://[user@]host[:port]/path and scp-like
// [user@]host:path into host (no port) and path.
func sshParts(raw string) (host, path string) {
	if rest, ok := strings.CutPrefix(raw, "ssh://"); ok {
		hp, p, _ := strings.Cut(rest, "/")
		if at := strings.LastIndexByte(hp, '@'); at >= 0 {
			hp = hp[at+1:]
		}
		if i := strings.LastIndexByte(hp, ':'); i >= 0 {
			hp = hp[:i]
		}
		return bitbucket.LowerASCII(hp), p
	}
	hp, p, _ := strings.Cut(raw, ":")
	if at := strings.LastIndexByte(hp, '@'); at >= 0 {
		hp = hp[at+1:]
	}
	return bitbucket.LowerASCII(hp), strings.TrimPrefix(p, "/")
}

func (d *Doctor) checkRemoteURL(ctx context.Context, name string, push bool, raw string, ix *store.Index, gv gitVersion, hs hostState) []Finding {
	f := Finding{Check: "remote", Subject: "remote " + name}
	setURL := "git remote set-url " + name + " "
	if push {
		f.Subject += " (push URL)"
		setURL = "git remote set-url --push " + name + " "
	}
	hosts := configuredHosts(ix)
	configured := func(host string) bool { return slices.Contains(hosts, host) }
	hostNamed := func(name string) (string, bool) {
		if name == bitbucket.CloudHost {
			return name, true
		}
		for _, h := range hosts {
			if h == name || strings.HasPrefix(h, name+":") {
				return h, true
			}
		}
		return "", false
	}

	if _, _, err := bitbucket.ParseUserURL(raw, bitbucket.DefaultFlavor); errors.Is(err, bitbucket.ErrSSHURL) {
		host, path := sshParts(raw)
		hp, ok := hostNamed(host)
		if !ok {
			f.Level, f.Message = OK, fmt.Sprintf("%s: SSH to %s, not a Bitbucket host set up here (ignored)", bitbucket.RedactURL(raw), host)
			return []Finding{f}
		}
		f.Level = Warn
		f.Message = fmt.Sprintf("%s is an SSH remote: git authenticates it with SSH keys and never asks this helper", bitbucket.RedactURL(raw))
		f.Fix = "to use a token instead: " + setURL + httpsFor(ix, hp, path)
		return []Finding{f}
	}
	r, ok := splitRemoteURL(raw)
	if !ok || (r.scheme != "https" && r.scheme != "http") {
		f.Level, f.Message = OK, fmt.Sprintf("%s is not an HTTPS remote (ignored)", bitbucket.RedactURL(raw))
		return []Finding{f}
	}
	if r.hasPass {
		f.Level = Action
		f.Message = fmt.Sprintf("%s has a password written into the URL: it sits in plaintext in .git/config (and in every copy or backup of it), and git sends it without asking any helper", r.redacted())
		f.Fix = setURL + r.clean() + ", then revoke that password or token, create a new token and " + Command + " add " + r.clean()
		return []Finding{f}
	}
	host, err := bitbucket.NormalizeHost(r.hostPort)
	if err != nil {
		f.Level, f.Message = OK, fmt.Sprintf("%s: unusual host (ignored)", r.redacted())
		return []Finding{f}
	}
	path, perr := url.PathUnescape(r.path)
	if perr != nil {
		path = r.path
	}
	segs, safe := bitbucket.RequestPath(helper.FlavorOf(ix, host), path)
	dcShaped := slices.Contains(segs, "scm")
	if host != bitbucket.CloudHost && !configured(host) && !dcShaped {
		f.Level, f.Message = OK, fmt.Sprintf("%s: %s is not a Bitbucket host set up here (ignored)", r.redacted(), host)
		return []Finding{f}
	}
	if r.scheme == "http" {
		f.Level = Warn
		f.Message = fmt.Sprintf("%s uses plain http, which is never served a token", r.redacted())
		f.Fix = setURL + "https://" + strings.TrimPrefix(r.clean(), "http://")
		return []Finding{f}
	}
	if !configured(host) {
		f.Level = Action
		if host == bitbucket.CloudHost {
			f.Message = fmt.Sprintf("%s: bitbucket.org is not set up, so git never asks this helper for it", r.redacted())
			f.Fix = Command + " setup"
		} else {
			f.Message = fmt.Sprintf("%s looks like Bitbucket Data Center (an /scm/ path), but %s is not set up", r.redacted(), host)
			f.Fix = Command + " setup --host https://" + host + " --detect"
		}
		return []Finding{f}
	}
	var out []Finding
	// A URL-specific section may change what the host check saw: ask git
	// for this very URL.
	if hs.config != nil && hs.sound[host] {
		probe := d.probe(ctx, d.Dir, targetFor(host, path))
		if probe.Err == nil && probe.Ours != 0 {
			g := f
			g.Level = Action
			first := "no helper"
			if len(probe.Commands) > 0 {
				first = fmt.Sprintf("%q", probe.Commands[0])
				if e, ok := helperEntry(hs.config, probe.Commands[0]); ok {
					first = fmt.Sprintf("%q (%s)", e.Value, e.where())
				}
			}
			g.Message = fmt.Sprintf("%s: for this URL git asks %s first, not this helper", r.redacted(), first)
			g.Fix = "remove the URL-specific credential.*.helper lines for it (git config --show-origin --get-regexp '^credential\\..*helper$')"
			out = append(out, g)
		}
		if probe.Err == nil && probe.Ours == 0 && !probe.PathSent {
			g := f
			g.Level = Action
			g.Message = fmt.Sprintf("%s: for this URL credential.useHttpPath is off, so only host-wide tokens can match", r.redacted())
			g.Fix = "remove the URL-specific credential.*.useHttpPath lines for it (git config --show-origin --get-regexp '^credential\\..*usehttppath$')"
			out = append(out, g)
		}
	}
	if e := coveringToken(ix, host, segs, safe, r, d.now(), gv); e != nil {
		g := f
		g.Level = OK
		g.Message = fmt.Sprintf("%s is served by token %s (%s %s)", r.redacted(), e.ID, e.Kind, e.URL)
		out = append(out, g)
	} else {
		g := f
		g.Level = Warn
		g.Message = fmt.Sprintf("%s: no usable token covers it, so git will fail to authenticate (or prompt)", r.redacted())
		g.Fix = Command + " add " + r.clean() + " (the token on stdin or at the hidden prompt)"
		out = append(out, g)
	}
	return out
}

// coveringToken returns the most specific usable token whose scope covers
// the remote, nil when there is none.
func coveringToken(ix *store.Index, host string, segs []string, safe bool, r remoteURL, now time.Time, gv gitVersion) *store.Entry {
	flavor := helper.FlavorOf(ix, host)
	var best *store.Entry
	bestDepth := -1
	for i := range ix.Entries {
		e := &ix.Entries[i]
		sc, err := bitbucket.ParseScope(e.URL)
		if err != nil || sc.Host != host {
			continue
		}
		if sc.Path != "" && (!safe || !sc.Covers(flavor, host, segs)) {
			continue
		}
		if e.EffectiveState(now) != store.StateActive {
			continue
		}
		if e.AuthType != "" && gv.ok && !gv.atLeast(2, 46, 0) {
			continue
		}
		fixedUser := e.Username == helper.UserAccessToken || e.Username == helper.UserAPIToken || e.AuthType != ""
		if r.hasUser && r.user != "" && !fixedUser && !bitbucket.EqualFoldASCII(e.Username, r.user) {
			continue
		}
		if depth := len(sc.Segments()); depth > bestDepth {
			best, bestDepth = e, depth
		}
	}
	return best
}

// httpsFor suggests the https URL of an SSH remote's repository.
func httpsFor(ix *store.Index, hostPort, path string) string {
	path = strings.TrimPrefix(path, "/")
	if helper.FlavorOf(ix, hostPort) == bitbucket.Cloud {
		return "https://" + hostPort + "/" + path
	}
	base := "https://" + hostPort
	if hc, ok := ix.Hosts[hostPort]; ok && hc.BaseURL != "" {
		base = strings.TrimSuffix(hc.BaseURL, "/")
	}
	return base + "/scm/" + path
}
