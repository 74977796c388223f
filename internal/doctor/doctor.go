// Package doctor checks a git-credential-bbtoken installation end to end —
// git's version, the helper list git builds for each configured host,
// useHttpPath, the keyring, the index file, stored tokens, plaintext
// credentials and the remotes of the current work tree — and explains each
// finding in one line with the command that fixes it. Fix repairs what is
// safe to repair without asking: it re-runs setup for hosts set up wrongly
// and deletes the orphaned secrets of interrupted writes.
package doctor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/setup"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Level says how much a finding matters.
type Level string

// Finding levels: only Action makes doctor exit non-zero.
const (
	OK     Level = "ok"
	Warn   Level = "warn"
	Action Level = "action"
)

// Finding is one line of doctor's report.
type Finding struct {
	Level   Level  `json:"level"`
	Check   string `json:"check"`             // git, helper, usehttppath, keyring, index, secrets, token, plaintext, remote
	Subject string `json:"subject,omitempty"` // the host, entry, file or remote concerned
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"` // what to run (or do) about it

	repair fixKind // what Fix can do about it, if anything
	host   string  // for fixSetup: https://HOST
}

type fixKind int

const (
	fixNone   fixKind = iota
	fixSetup          // re-run setup for host
	fixRepair         // delete orphaned secrets
	fixMode           // make the index private again (readable by others)
)

// Fixable reports whether --fix acts on the finding.
func (f Finding) Fixable() bool { return f.repair != fixNone }

// String renders the finding as one line.
func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-6s  ", f.Level)
	if f.Subject != "" {
		b.WriteString(f.Subject + ": ")
	}
	b.WriteString(f.Message)
	if f.Fix != "" {
		b.WriteString("; fix: " + f.Fix)
	}
	return oneLine(b.String())
}

func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// NeedsAction reports whether any finding is at level Action.
func NeedsAction(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Level == Action })
}

// Count returns how many findings are at level l.
func Count(fs []Finding, l Level) int {
	n := 0
	for _, f := range fs {
		if f.Level == l {
			n++
		}
	}
	return n
}

// Doctor holds what the checks need.
type Doctor struct {
	Store *store.Store
	// Git is the git binary ("" = git from PATH); Env its environment
	// (nil = this process's).
	Git string
	Env []string
	// Dir is the working directory: its repository's config counts, and
	// its remotes are checked.
	Dir string
	// HelperValues are credential.helper values that run this helper (what
	// setup writes for the running executable), besides those setup recorded.
	HelperValues []string
	// Home and ConfigHome locate git's plaintext credential files
	// (~/.git-credentials, $XDG_CONFIG_HOME/git/credentials); "" skips them.
	Home       string
	ConfigHome string
	Now        func() time.Time
	// Executable is this helper's path: what --fix's setup tells git to
	// run.
	Executable string
	// ProbeTimeout bounds `git credential fill` (0: DefaultProbeTimeout).
	ProbeTimeout time.Duration
	// ExpiringWithin is the warning window for expiry (0: 14 days).
	ExpiringWithin time.Duration
	// Getenv reads the environment env entries use (nil: not checked).
	Getenv func(string) string
}

// Command is how findings name this program in fixes.
const Command = "git-credential-bbtoken"

func (d *Doctor) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Check runs every check and returns the findings in a stable order.
func (d *Doctor) Check(ctx context.Context) []Finding {
	var out []Finding
	add := func(fs ...Finding) { out = append(out, fs...) }

	ix, indexFindings := d.checkIndex()
	if ix == nil {
		ix = &store.Index{Version: store.IndexVersion}
	}
	gv, gitFindings := d.checkGit(ctx, ix)
	add(gitFindings...)
	add(indexFindings...)
	var hs hostState
	if gv.ok {
		var fs []Finding
		fs, hs = d.checkHosts(ctx, ix)
		add(fs...)
	}
	keyringOK, keyringFindings := d.checkKeyring(ctx)
	if !keyringOK && !keyringNeeded(ix) {
		// Only pass or env entries: a headless machine needs no keyring.
		for i := range keyringFindings {
			if keyringFindings[i].Level == Action {
				keyringFindings[i].Level = Warn
				keyringFindings[i].Fix = "none needed while tokens are kept in the password store or the environment; " + keyringFindings[i].Fix
			}
		}
	}
	add(keyringFindings...)
	if keyringOK {
		add(d.checkOrphans(ctx)...)
	}
	add(d.checkStores(ctx, ix)...)
	add(d.checkTokens(ctx, ix, gv, keyringOK)...)
	add(d.checkPlaintext(ix)...)
	add(d.checkRemotes(ctx, ix, gv, hs)...)
	return out
}

// fixMode makes an index that others can read private again. Only that
// case: an index others could write may have been changed, which the user
// must look at first.
func (d *Doctor) fixMode() string {
	target, err := d.Store.Target()
	if err == nil {
		err = os.Chmod(target, 0o600)
	}
	if err != nil {
		return "could not make the index private: " + oneLine(err.Error())
	}
	return "made " + target + " private (mode 0600)"
}

// Fix does what --fix may do about the findings, once per host and once for
// the orphans, and returns one line per thing it did.
func (d *Doctor) Fix(ctx context.Context, findings []Finding) []string {
	var done []string
	var hosts []string
	repair := false
	for _, f := range findings {
		switch f.repair {
		case fixMode:
			done = append(done, d.fixMode())
		case fixSetup:
			if !slices.Contains(hosts, f.host) {
				hosts = append(hosts, f.host)
			}
		case fixRepair:
			repair = true
		}
	}
	// Orphans first: setup writes the index, and every write finishes the
	// journal by itself, which would leave nothing to report.
	if repair {
		rep, err := d.Store.Repair(ctx, store.RepairOptions{})
		switch {
		case err != nil:
			done = append(done, "repair failed: "+oneLine(err.Error()))
		default:
			for _, id := range rep.Orphans {
				if !slices.Contains(rep.Failed, id) {
					done = append(done, fmt.Sprintf("deleted orphaned secret %s (left by an interrupted write)", id))
				}
			}
			for _, id := range rep.Failed {
				done = append(done, fmt.Sprintf("could not delete orphaned secret %s; run doctor --fix again when the keyring answers", id))
			}
		}
	}
	for _, h := range hosts {
		var buf bytes.Buffer
		err := setup.Run(ctx, setup.Options{
			Hosts: []string{h}, Executable: d.Executable, Store: d.Store,
			Git: &setup.Git{Path: d.Git, Env: d.Env, Out: &buf},
		}, &buf)
		out := buf.String()
		if err != nil {
			done = append(done, fmt.Sprintf("%s: setup --host %s failed: %s", h, h, oneLine(err.Error())))
			continue
		}
		done = append(done, fmt.Sprintf("%s: re-ran setup --host %s", h, h))
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line != "" {
				done = append(done, "  "+line)
			}
		}
	}
	return done
}
