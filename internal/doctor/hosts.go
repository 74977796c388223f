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

// targetFor is the request for https://host[:port][/path].
func targetFor(hostPort, path string) target {
	t := target{scheme: "https", host: hostPort, path: strings.Trim(path, "/")}
	if i := strings.LastIndexByte(hostPort, ':'); i >= 0 && !strings.Contains(hostPort[i:], "]") {
		t.host, t.port = hostPort[:i], hostPort[i+1:]
	}
	return t
}

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
	config []configEntry   // nil when git's configuration could not be read
	sound  map[string]bool // hosts whose helper list and useHttpPath are right
}

// checkHosts checks, for every configured host, the helper list git builds
// and useHttpPath.
func (d *Doctor) checkHosts(ctx context.Context, ix *store.Index) ([]Finding, hostState) {
	st := hostState{sound: map[string]bool{}}
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
	known := d.knownValues(ix)
	var out []Finding
	for _, h := range hosts {
		t := targetFor(h, "")
		view := viewFor(entries, t)
		probe := d.probeHelpers(ctx, d.Dir, t)
		fs := append(helperFindings("https://"+h, view, probe, known), useHTTPPathFinding("https://"+h, view))
		st.sound[h] = !NeedsAction(fs)
		out = append(out, fs...)
	}
	return out, st
}

// helperFindings explains the helper list git uses for url: whether this
// helper is in it, which helpers run before it, and which after it.
func helperFindings(url string, view credentialView, probe probeResult, known []string) []Finding {
	ours := func(cmd string) bool { return isOurs(cmd, known) }
	// What git ran decides; the configuration names where each came from.
	ran := probe.Commands
	source := ""
	if probe.Err != nil || (len(ran) == 0 && len(view.Helpers) > 0) {
		ran = nil
		for _, h := range view.Helpers {
			ran = append(ran, h.Command)
		}
		if probe.Err != nil {
			source = " (from the configuration: " + oneLine(probe.Err.Error()) + ")"
		}
	}
	describe := func(cmd string) string {
		for _, h := range view.All {
			if h.Command == cmd && h.Value != "" {
				return fmt.Sprintf("%q (%s)", h.Value, h.where())
			}
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
	var out []Finding
	at := slices.IndexFunc(ran, ours)
	switch {
	case at == 0 && missingProgram(ran[0]) != "":
		// reported below
	case at == 0:
		f := base
		f.Level, f.Message = OK, "git asks this helper first"+source
		out = append(out, f)
	case at > 0:
		f := base
		f.Level = Action
		f.Message = fmt.Sprintf("git asks %s before this helper%s, so what it holds wins over this helper's tokens", describeAll(ran[:at]), source)
		f.Fix, f.repair = culpritFix(view, ran[:at], setupFix)
		out = append(out, f)
	case probe.Answered && len(ran) > 0:
		f := base
		f.Level = Action
		if slices.ContainsFunc(view.Helpers, func(h helperEntry) bool { return ours(h.Command) }) {
			f.Message = fmt.Sprintf("git asks %s first and it answers, so this helper is never asked", describeAll(ran))
		} else {
			f.Message = fmt.Sprintf("this helper is not in git's helper list for %s; git asks %s (and it answers)", url, describeAll(ran))
		}
		f.Fix, f.repair = culpritFix(view, ran, setupFix)
		out = append(out, f)
	default:
		f := base
		f.Level = Action
		if len(ran) == 0 {
			f.Message = "git runs no credential helper for " + url
		} else {
			f.Message = fmt.Sprintf("this helper is not in git's helper list for %s; git runs only %s", url, describeAll(ran))
		}
		f.Fix, f.repair = setupFix, fixSetup
		if reset, ok := view.resetAfterOurs(ours); ok {
			f.Message += fmt.Sprintf("; an empty helper value in %s (%s) clears it", reset.where(), reset.Key)
			f.Fix, f.repair = fmt.Sprintf("remove the empty `%s =` line from %s", reset.Key, cmp.Or(reset.file(), reset.where())), fixNone
		}
		out = append(out, f)
	}
	// A missing program: git runs it, the shell fails, git moves on.
	for _, h := range view.Helpers {
		if ours(h.Command) {
			if p := missingProgram(h.Command); p != "" {
				f := base
				f.Level, f.repair = Action, fixSetup
				f.Message = fmt.Sprintf("the helper program git runs, %s (%s), does not exist", p, h.where())
				f.Fix = setupFix
				out = append(out, f)
			}
		}
	}
	// Helpers after ours see every token we serve: git calls store on all.
	if i := slices.IndexFunc(view.Helpers, func(h helperEntry) bool { return ours(h.Command) }); i >= 0 {
		for _, h := range view.Helpers[i+1:] {
			if ours(h.Command) {
				continue
			}
			f := base
			f.Level = Warn
			f.Message = fmt.Sprintf("git also hands every token this helper serves to %s, which runs after it (git calls store on every helper)", describe(h.Command))
			if helperProgram(h.Command) == "git-credential-store" {
				f.Level = Action
				f.Message += ", and it writes them in plaintext to ~/.git-credentials"
			}
			f.Fix = fmt.Sprintf("remove `%s = %s` from %s", h.Key, h.Value, cmp.Or(h.file(), h.where()))
			out = append(out, f)
		}
	}
	return out
}

// culpritFix is the fix for helpers that run before ours: setup's reset
// clears helpers from system and global config before it; helpers from
// later files need editing.
func culpritFix(view credentialView, culprits []string, setupFix string) (string, fixKind) {
	for _, c := range culprits {
		for _, h := range view.Helpers {
			if h.Command == c && !h.fixableBySetup() {
				return fmt.Sprintf("remove `%s = %s` from %s (or put an empty `helper =` line before this helper there)", h.Key, h.Value, cmp.Or(h.file(), h.where())), fixNone
			}
		}
	}
	return setupFix, fixSetup
}

// fixableBySetup: setup writes to the global file, whose reset clears what
// system and (earlier) global config added.
func (e configEntry) fixableBySetup() bool {
	return e.Scope == "" || e.Scope == "system" || e.Scope == "global"
}

func useHTTPPathFinding(url string, view credentialView) Finding {
	f := Finding{Check: "usehttppath", Subject: url, host: url}
	setupFix := Command + " setup --host " + url + " (doctor --fix runs it)"
	e := view.UseHTTPPathEntry
	switch {
	case view.UseHTTPPath:
		f.Level, f.Message = OK, "credential.useHttpPath is true ("+e.where()+"): git sends the repository path"
	case !view.UseHTTPPathSet:
		f.Level, f.Message = Action, "credential.useHttpPath is not set: git drops the repository path, so only host-wide tokens (API, personal) can match"
		f.Fix, f.repair = setupFix, fixSetup
	default:
		f.Level = Action
		f.Message = fmt.Sprintf("credential.useHttpPath is false (%s, %s): git drops the repository path, so only host-wide tokens (API, personal) can match", e.where(), e.Key)
		if e.Scope == "system" || (e.Scope == "global" && bitbucket.EqualFoldASCII(e.Key, "credential."+url+".usehttppath")) {
			f.Fix, f.repair = setupFix, fixSetup
		} else {
			f.Fix = fmt.Sprintf("remove `%s` from %s, or set it to true", e.Key, cmp.Or(e.file(), e.where()))
		}
	}
	return f
}
