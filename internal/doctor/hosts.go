package doctor

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// gitVersion is the version of the git binary doctor runs.
type gitVersion struct {
	ok                  bool
	raw                 string
	major, minor, patch int
}

func (v gitVersion) atLeast(major, minor, patch int) bool {
	if v.major != major {
		return v.major > major
	}
	if v.minor != minor {
		return v.minor > minor
	}
	return v.patch >= patch
}

func parseGitVersion(out string) (gitVersion, bool) {
	line := strings.TrimSpace(out)
	rest, ok := strings.CutPrefix(line, "git version ")
	if !ok {
		return gitVersion{}, false
	}
	nums, ok := firstVersion(rest)
	if !ok {
		return gitVersion{}, false
	}
	return gitVersion{ok: true, raw: strings.Fields(rest)[0], major: nums[0], minor: nums[1], patch: nums[2]}, true
}

// firstVersion finds the first MAJOR.MINOR[.PATCH] in s ("2.45.1.windows.1",
// "2.39.5 (Apple Git-154)"). A hand scan, not a regexp: the package's
// initialisation is paid by every git call this binary serves.
func firstVersion(s string) (nums [3]int, ok bool) {
	digits := func(i int) int { // end of the digit run starting at i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i
	}
	for i := 0; i < len(s); i++ {
		if i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
			continue // not the start of a number
		}
		n, j := 0, i
		for n < 3 {
			k := digits(j)
			if k == j {
				break
			}
			nums[n], _ = strconv.Atoi(s[j:k])
			n++
			if k >= len(s) || s[k] != '.' {
				break
			}
			j = k + 1
		}
		if n >= 2 {
			if n == 2 {
				nums[2] = 0
			}
			return nums, true
		}
		nums = [3]int{}
	}
	return nums, false
}

// Protocol features this helper uses, with the git release that added them.
var gitFeatures = []struct {
	name                string
	major, minor, patch int
	without             string
}{
	{"password_expiry_utc", 2, 40, 0, "git is not told when a token expires"},
	{"authtype", 2, 46, 0, "Data Center project and repository tokens (Bearer) cannot be used"},
}

func (d *Doctor) checkGit(ctx context.Context, ix *store.Index) (gitVersion, []Finding) {
	out, errOut, err := d.runGit(ctx, d.Dir, d.Env, "", "version")
	if err != nil {
		return gitVersion{}, []Finding{{
			Level: Action, Check: "git", Subject: "git",
			Message: fmt.Sprintf("cannot run %s: %s", d.gitPath(), oneLine(strings.TrimSpace(err.Error()+" "+string(errOut)))),
			Fix:     "install git and make sure it is on PATH",
		}}
	}
	v, ok := parseGitVersion(string(out))
	if !ok {
		return gitVersion{}, []Finding{{
			Level: Warn, Check: "git", Subject: "git",
			Message: fmt.Sprintf("cannot read git's version from %q", strings.TrimSpace(string(out))),
		}}
	}
	var have, lack []string
	for _, f := range gitFeatures {
		if v.atLeast(f.major, f.minor, f.patch) {
			have = append(have, f.name)
		} else {
			lack = append(lack, fmt.Sprintf("%s (needs %d.%d: %s)", f.name, f.major, f.minor, f.without))
		}
	}
	msg := "credential helpers, useHttpPath"
	if len(have) > 0 {
		msg += ", " + strings.Join(have, ", ")
	}
	fd := Finding{Level: OK, Check: "git", Subject: "git " + v.raw, Message: "supports " + msg}
	if len(lack) > 0 {
		fd.Message += "; not " + strings.Join(lack, "; not ")
	}
	if !v.atLeast(2, 46, 0) && slices.ContainsFunc(configuredHosts(ix), func(h string) bool {
		return helper.FlavorOf(ix, h) == bitbucket.DataCenter
	}) {
		fd.Level = Warn
		fd.Fix = "upgrade git to 2.46 or newer to use Data Center project and repository tokens"
	}
	return v, []Finding{fd}
}

// configuredHosts are the hosts setup recorded plus those tokens were added
// for, sorted.
func configuredHosts(ix *store.Index) []string {
	var hosts []string
	for h := range ix.Hosts {
		hosts = append(hosts, h)
	}
	for _, e := range ix.Entries {
		if sc, err := bitbucket.ParseScope(e.URL); err == nil && !slices.Contains(hosts, sc.Host) {
			hosts = append(hosts, sc.Host)
		}
	}
	slices.Sort(hosts)
	return hosts
}

// target is a request doctor asks git about: https://host[:port][/path].
type target struct {
	scheme string // lower case
	host   string // lower case, without port
	port   string // "" for the scheme's default
	path   string // without leading '/'
}

// hostPort is host[:port] as git sends it in host=.
func (t target) hostPort() string {
	if t.port != "" {
		return t.host + ":" + t.port
	}
	return t.host
}

// targetFor is the request for https://host[:port][/path].
func targetFor(hostPort, path string) target {
	t := target{scheme: "https", host: hostPort, path: strings.Trim(path, "/")}
	if i := strings.LastIndexByte(hostPort, ':'); i >= 0 && !strings.Contains(hostPort[i:], "]") {
		t.host, t.port = hostPort[:i], hostPort[i+1:]
	}
	return t
}

// probePath is the repository path doctor's probe asks for: one no token
// covers, so that git sends the path when useHttpPath is on and this
// helper has nothing to look up.
const probePath = "bbtoken-doctor-probe/probe.git"

// knownValues are the credential.helper values that run this helper.
func (d *Doctor) knownValues(ix *store.Index) []string {
	known := slices.Clone(d.HelperValues)
	for _, hc := range ix.Hosts {
		if hc.HelperValue != "" {
			known = append(known, hc.HelperValue)
		}
	}
	return known
}

// hostState is what checkHosts learnt, for the remote checks.
type hostState struct {
	config []configEntry   // where each helper came from (nil: unreadable)
	sound  map[string]bool // hosts whose helper list and useHttpPath are right
	known  []string        // helper values that run this helper
}

// checkHosts asks git, for every configured host, which helpers it runs
// and whether it sends them the path (useHttpPath).
func (d *Doctor) checkHosts(ctx context.Context, ix *store.Index) ([]Finding, hostState) {
	st := hostState{sound: map[string]bool{}, known: d.knownValues(ix)}
	hosts := configuredHosts(ix)
	if len(hosts) == 0 {
		return []Finding{{
			Level: Action, Check: "helper", Subject: "setup",
			Message: "no Bitbucket host is set up, so git never asks this helper",
			Fix:     Command + " setup (bitbucket.org), or " + Command + " setup --host https://HOST --detect (Data Center)",
		}}, st
	}
	entries, err := d.readCredentialConfig(ctx, d.Dir)
	if err != nil {
		return []Finding{{Level: Action, Check: "helper", Subject: "git config", Message: oneLine(err.Error()), Fix: "fix the git configuration file git names"}}, st
	}
	st.config = entries
	var out []Finding
	for _, h := range hosts {
		t := targetFor(h, probePath)
		probe := d.probe(ctx, d.Dir, t)
		fs := d.helperFindings(ctx, t, entries, probe, st.known)
		fs = append(fs, d.useHTTPPathFinding(ctx, t, entries, probe))
		st.sound[h] = !NeedsAction(fs)
		out = append(out, fs...)
	}
	return out, st
}

// helperFindings explains the helper list git uses for url, as the probe
// saw git run it: whether this helper is in it, which helpers run before
// it, and which after it.
func (d *Doctor) helperFindings(ctx context.Context, t target, entries []configEntry, probe probeResult, known []string) []Finding {
	url := "https://" + t.hostPort()
	describe := func(cmd string) string {
		if e, ok := helperEntry(entries, cmd); ok {
			return fmt.Sprintf("%q (%s)", e.Value, e.where())
		}
		return fmt.Sprintf("%q", cmd)
	}
	describeAll := func(cmds []string) string {
		var parts []string
		for _, c := range cmds {
			parts = append(parts, describe(c))
		}
		return strings.Join(parts, ", ")
	}
	setupFix := Command + " setup --host " + url + " (doctor --fix runs it)"
	base := Finding{Check: "helper", Subject: url, host: url}
	if probe.Err != nil {
		f := base
		f.Level = Warn
		f.Message = "cannot tell which helpers git runs: " + oneLine(probe.Err.Error())
		return []Finding{f}
	}
	ran, at := probe.Commands, probe.Ours
	var out []Finding
	switch {
	case at == 0:
		f := base
		f.Level, f.Message = OK, "git asks this helper first"
		out = append(out, f)
	case at > 0:
		f := base
		f.Level = Action
		f.Message = fmt.Sprintf("git asks %s before this helper, so what it holds wins over this helper's tokens", describeAll(ran[:at]))
		f.Fix, f.repair = culpritFix(entries, ran[:at], setupFix)
		out = append(out, f)
	default:
		f := base
		f.Level = Action
		ranOurs := slices.IndexFunc(ran, func(c string) bool { return isOurs(c, known) })
		configured := slices.ContainsFunc(entries, func(e configEntry) bool {
			return e.name() == "helper" && e.Value != "" && isOurs(helperCommand(e.Value), known)
		})
		switch {
		case ranOurs >= 0:
			// git ran a command that is this helper's, and it did not
			// answer the probe: a program missing, or another build.
			c := ran[ranOurs]
			if p := missingProgram(c); p != "" {
				e, _ := helperEntry(entries, c)
				f.Message = fmt.Sprintf("the helper program git runs, %s (%s), does not exist", p, e.where())
			} else {
				f.Message = fmt.Sprintf("git runs %s, but it did not answer as this helper does (another version?)", describe(c))
			}
			f.Fix, f.repair = setupFix, fixSetup
		case probe.Answered && len(ran) > 0:
			if configured {
				f.Message = fmt.Sprintf("git asks %s first and it answers, so this helper is never asked", describeAll(ran))
			} else {
				f.Message = fmt.Sprintf("this helper is not in git's helper list for %s; git asks %s (and it answers)", url, describeAll(ran))
			}
			f.Fix, f.repair = culpritFix(entries, ran, setupFix)
		default:
			if len(ran) == 0 {
				f.Message = "git runs no credential helper for " + url
			} else {
				f.Message = fmt.Sprintf("this helper is not in git's helper list for %s; git runs only %s", url, describeAll(ran))
			}
			f.Fix, f.repair = setupFix, fixSetup
			if configured {
				if reset, ok := d.resetAfterOurs(ctx, entries, t, known); ok {
					f.Message += fmt.Sprintf("; an empty helper value in %s (%s) clears it", reset.where(), reset.Key)
					f.Fix, f.repair = fmt.Sprintf("remove the empty `%s =` line from %s", reset.Key, cmp.Or(reset.file(), reset.where())), fixNone
				} else {
					f.Message += " (it is configured, but only in sections that do not apply to " + url + ")"
				}
			}
		}
		out = append(out, f)
	}
	// Helpers after ours see every token we serve: git calls store on all.
	if at >= 0 {
		for _, c := range ran[at+1:] {
			if isOurs(c, known) {
				continue
			}
			f := base
			f.Level = Warn
			f.Message = fmt.Sprintf("git also hands every token this helper serves to %s, which runs after it (git calls store on every helper)", describe(c))
			if program(c) == "git-credential-store" {
				f.Level = Action
				f.Message += ", and it writes them in plaintext to ~/.git-credentials"
			}
			if e, ok := helperEntry(entries, c); ok {
				f.Fix = fmt.Sprintf("remove `%s = %s` from %s", e.Key, e.Value, cmp.Or(e.file(), e.where()))
			}
			out = append(out, f)
		}
	}
	return out
}

// culpritFix is the fix for helpers that run before ours: setup's reset
// clears helpers from system and global config before it; helpers from
// later files need editing.
func culpritFix(entries []configEntry, culprits []string, setupFix string) (string, fixKind) {
	for _, c := range culprits {
		if e, ok := helperEntry(entries, c); ok && !e.fixableBySetup() {
			return fmt.Sprintf("remove `%s = %s` from %s (or put an empty `helper =` line before this helper there)", e.Key, e.Value, cmp.Or(e.file(), e.where())), fixNone
		}
	}
	return setupFix, fixSetup
}

// useHTTPPathFinding says whether git sends the repository path for t:
// as this helper saw it when git ran it, else as the last useHttpPath line
// in a section that applies to t says (git reads them all, in order).
func (d *Doctor) useHTTPPathFinding(ctx context.Context, t target, entries []configEntry, probe probeResult) Finding {
	url := "https://" + t.hostPort()
	f := Finding{Check: "usehttppath", Subject: url, host: url}
	setupFix := Command + " setup --host " + url + " (doctor --fix runs it)"
	decider, set := d.lastApplying(ctx, entries, t, "usehttppath")
	on := probe.PathSent
	if probe.Ours < 0 {
		on = set && isTrue(decider)
	}
	where := ""
	if set {
		where = " (" + decider.where() + ", " + decider.Key + ")"
	}
	switch {
	case on:
		f.Level, f.Message = OK, "credential.useHttpPath is true"+where+": git sends the repository path"
	case !set:
		f.Level, f.Message = Action, "credential.useHttpPath is not set: git drops the repository path, so only host-wide tokens (API, personal) can match"
		f.Fix, f.repair = setupFix, fixSetup
	default:
		f.Level = Action
		f.Message = "credential.useHttpPath is false" + where + ": git drops the repository path, so only host-wide tokens (API, personal) can match"
		f.Fix, f.repair = setupFix, fixSetup
		if !decider.fixableBySetup() {
			f.Fix, f.repair = fmt.Sprintf("remove `%s` from %s, or set it to true", decider.Key, cmp.Or(decider.file(), decider.where())), fixNone
		}
	}
	return f
}

// lastApplying is the last entry named name in a section that applies to
// t: the one whose value git uses.
func (d *Doctor) lastApplying(ctx context.Context, entries []configEntry, t target, name string) (configEntry, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		if e := entries[i]; e.name() == name && d.applies(ctx, e, t) {
			return e, true
		}
	}
	return configEntry{}, false
}

// isTrue reads a boolean as git does (a bare key is true; so is any
// number but zero).
func isTrue(e configEntry) bool {
	v := bitbucket.LowerASCII(strings.TrimSpace(e.Value))
	switch v {
	case "true", "yes", "on":
		return true
	}
	if n, err := strconv.ParseInt(v, 0, 64); err == nil {
		return n != 0
	}
	return e.Bare
}

// resetAfterOurs finds the empty `helper =` line that drops this helper
// from git's list for t: the last one, in a section that applies to t,
// after the last line naming this helper in such a section. Which
// sections apply, git says (applies).
func (d *Doctor) resetAfterOurs(ctx context.Context, entries []configEntry, t target, known []string) (configEntry, bool) {
	last := -1
	for i := len(entries) - 1; i >= 0 && last < 0; i-- {
		e := entries[i]
		if e.name() == "helper" && e.Value != "" && isOurs(helperCommand(e.Value), known) && d.applies(ctx, e, t) {
			last = i
		}
	}
	if last < 0 {
		return configEntry{}, false
	}
	for i := len(entries) - 1; i > last; i-- {
		if e := entries[i]; e.name() == "helper" && strings.TrimSpace(e.Value) == "" && !e.Bare && d.applies(ctx, e, t) {
			return e, true
		}
	}
	return configEntry{}, false
}
