package doctor

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/importer"
	"github.com/bbtoken/git-credential-bbtoken/internal/regfile"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// splitFix separates the "fix: ..." part that the store's errors carry.
func splitFix(msg string) (string, string) {
	msg = oneLine(msg)
	if i := strings.Index(msg, "; fix: "); i >= 0 {
		return msg[:i], msg[i+len("; fix: "):]
	}
	if i := strings.Index(msg, "fix: "); i >= 0 {
		return strings.TrimRight(msg[:i], " ;:"), msg[i+len("fix: "):]
	}
	return msg, ""
}

// checkIndex loads the index and checks the modes of it and its directory.
func (d *Doctor) checkIndex() (*store.Index, []Finding) {
	path := d.Store.Path()
	base := Finding{Check: "index", Subject: path}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		f := base
		f.Level, f.Message = OK, "no index yet (no token added, nothing set up)"
		return nil, []Finding{f}
	}
	ix, err := d.Store.Load()
	if err != nil {
		f := base
		f.Level = Action
		f.Message, f.Fix = splitFix(err.Error())
		switch {
		case errors.Is(err, store.ErrIndexReadable):
			f.Message = "readable by other users while it holds token checks, so this helper refuses it"
			f.Fix += " (doctor --fix does it)"
			f.repair = fixMode
		case errors.Is(err, store.ErrIndexUnsafe):
			f.Message = "writable by other users, so this helper refuses it (check that nobody changed it)"
		case errors.Is(err, store.ErrIndexDamaged):
			f.Fix = "move it aside (mv " + path + " " + path + ".bad; secrets stay in the keyring) and add the tokens again"
		case errors.Is(err, store.ErrIndexNewer):
			f.Level, f.Fix = Warn, "upgrade git-credential-bbtoken"
		}
		return nil, []Finding{f}
	}
	var out []Finding
	if v := ix.Newer(); v != 0 {
		f := base
		f.Level = Warn
		f.Message = fmt.Sprintf("written by a newer git-credential-bbtoken (format %d): read-only here", v)
		f.Fix = "upgrade git-credential-bbtoken"
		out = append(out, f)
	}
	if runtime.GOOS != "windows" {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			f := base
			f.Level = Warn
			f.Message = fmt.Sprintf("mode %04o: other users can read which tokens exist (not the tokens)", st.Mode().Perm())
			f.Fix = "chmod 600 " + path
			out = append(out, f)
		}
		if st, err := os.Stat(d.Store.Dir); err == nil && st.Mode().Perm()&0o077 != 0 {
			f := base
			f.Subject = d.Store.Dir
			f.Level = Warn
			f.Message = fmt.Sprintf("directory mode %04o: other users can see or replace files in it", st.Mode().Perm())
			f.Fix = "chmod 700 " + d.Store.Dir
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		f := base
		f.Level = OK
		mode := "private"
		if runtime.GOOS != "windows" {
			mode = "mode 0600 in a 0700 directory"
		}
		f.Message = fmt.Sprintf("%s; entries: %d, hosts set up: %d", mode, len(ix.Entries), len(ix.Hosts))
		out = append(out, f)
	}
	return ix, out
}

// probeSecret is what the keyring round trip writes.
const probeSecret = "git-credential-bbtoken doctor probe"

// checkKeyring writes, reads and deletes a probe item.
func (d *Doctor) checkKeyring(ctx context.Context) (bool, []Finding) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := "doctor-probe-" + hex.EncodeToString(b[:])
	base := Finding{Check: "keyring", Subject: "keyring"}
	fail := func(step string, err error) (bool, []Finding) {
		f := base
		f.Level = Action
		msg, fix := splitFix(err.Error())
		f.Message = step + " failed: " + msg
		f.Fix = cmp.Or(fix, "see the README, Troubleshooting")
		return false, []Finding{f}
	}
	start := time.Now()
	hint, err := d.Store.Secrets.Set(ctx, id, probeSecret)
	if err != nil {
		return fail("writing a test item", err)
	}
	got, _, err := d.Store.Secrets.Get(ctx, id, hint, func(v string) bool { return v == probeSecret })
	if err != nil {
		_ = d.Store.Secrets.Delete(ctx, id)
		return fail("reading back a test item", err)
	}
	if got != probeSecret {
		_ = d.Store.Secrets.Delete(ctx, id)
		return fail("reading back a test item", errors.New("the keyring returned another value than was written"))
	}
	if err := d.Store.Secrets.Delete(ctx, id); err != nil {
		return fail("deleting test item "+id, err)
	}
	f := base
	f.Level = OK
	f.Message = fmt.Sprintf("write, read and delete round trip in %s", time.Since(start).Round(time.Millisecond))
	return true, []Finding{f}
}

// checkOrphans compares the index with the keyring (repair's dry run).
func (d *Doctor) checkOrphans(ctx context.Context) []Finding {
	if _, err := os.Stat(d.Store.Dir); err != nil {
		return nil // nothing was ever stored through this config directory
	}
	base := Finding{Check: "secrets", Subject: "secrets"}
	rep, err := d.Store.Repair(ctx, store.RepairOptions{DryRun: true})
	if err != nil {
		f := base
		f.Level = Action
		f.Message, f.Fix = splitFix("cannot compare the index with the keyring: " + err.Error())
		f.Fix = cmp.Or(f.Fix, Command+" repair --dry-run (for details)")
		return []Finding{f}
	}
	var out []Finding
	if len(rep.Orphans) > 0 {
		f := base
		f.Level, f.repair = Action, fixRepair
		f.Message = fmt.Sprintf("%d orphaned secret(s) left in the keyring by an interrupted write: %s", len(rep.Orphans), someIDs(rep.Orphans))
		f.Fix = Command + " doctor --fix (or " + Command + " repair)"
		out = append(out, f)
	}
	if len(rep.Unknown) > 0 {
		f := base
		f.Level = Warn
		f.Message = fmt.Sprintf("%d keyring item(s) under service %s that no entry here names: %s (another config directory sharing this keyring may own them)", len(rep.Unknown), secrets.Service, someIDs(rep.Unknown))
		f.Fix = Command + " repair --delete-unknown, if no other config directory uses this keyring"
		out = append(out, f)
	}
	if len(rep.Indexed) > 0 {
		f := base
		f.Level, f.repair = Warn, fixRepair
		f.Message = fmt.Sprintf("%d token(s) added by an older version have no recorded keyring item, so get searches the keyring for them (slower with many items): %s", len(rep.Indexed), someIDs(rep.Indexed))
		f.Fix = Command + " doctor --fix (or " + Command + " repair)"
		out = append(out, f)
	}
	if len(rep.Unchecked) > 0 {
		f := base
		f.Level, f.repair = Action, fixRepair
		f.Message = fmt.Sprintf("the index keeps a check of %d value(s) that are not tokens (passwords an older version imported): %s; a password could be guessed from its check", len(rep.Unchecked), someIDs(rep.Unchecked))
		f.Fix = Command + " doctor --fix (or " + Command + " repair)"
		out = append(out, f)
	}
	for _, e := range rep.Missing {
		f := base
		f.Subject = entrySubject(e)
		f.Level = Action
		f.Message = "its secret is not in the keyring (deleted outside this helper?), so it is never served"
		f.Fix = readdFix(e) + ", or " + Command + " remove " + e.ID
		out = append(out, f)
	}
	if len(out) == 0 {
		f := base
		f.Level = OK
		items := "this keyring cannot list its items"
		if rep.Secrets >= 0 {
			items = fmt.Sprintf("%d keyring item(s)", rep.Secrets)
		}
		f.Message = fmt.Sprintf("index and keyring agree (%d entries, %s)", rep.Entries, items)
		out = append(out, f)
	}
	return out
}

// someIDs lists up to five ids.
func someIDs(ids []string) string {
	if len(ids) > 5 {
		return strings.Join(ids[:5], ", ") + ", …"
	}
	return strings.Join(ids, ", ")
}

func entrySubject(e store.Entry) string {
	return fmt.Sprintf("token %s (%s %s)", e.ID, e.Kind, e.URL)
}

// readdFix is the add command that replaces an entry with a new token.
func readdFix(e store.Entry) string {
	if e.Server != nil {
		return rotateFix(e)
	}
	if !e.Added() {
		return Command + " remove " + e.ID + " (git prompts again and stores what you type)"
	}
	cmd := Command + " add " + e.URL + " --kind " + string(e.Kind)
	if (e.Kind == store.KindAPI && e.Username != helper.UserAPIToken) || e.Kind == store.KindPersonal {
		cmd += " --username " + e.Username
	}
	return "create a new token, then: " + cmd + " --expires YYYY-MM-DD (the token on stdin; it replaces " + e.ID + ")"
}

// rotateFix renews a token the helper created.
func rotateFix(e store.Entry) string {
	return Command + " rotate " + e.ID + " (" + managedBy(e.Server.By) + ")"
}

// managedBy says whose credentials manage tokens a create made as by.
func managedBy(by string) string {
	if by == "" {
		return "with the host's OAuth login"
	}
	return "the password of " + by + " on stdin or at the prompt"
}

// expiryWindow is how early doctor warns about an expiry.
func (d *Doctor) expiryWindow() time.Duration {
	if d.ExpiringWithin > 0 {
		return d.ExpiringWithin
	}
	return 14 * 24 * time.Hour
}

// checkTokens reports expired, expiring and rejected tokens, Bearer tokens
// this git cannot send, and app passwords still stored.
func (d *Doctor) checkTokens(ctx context.Context, ix *store.Index, gv gitVersion, keyringOK bool) []Finding {
	base := Finding{Check: "token"}
	if len(ix.Entries) == 0 {
		f := base
		f.Subject, f.Level = "tokens", Warn
		f.Message = "no tokens stored"
		f.Fix = Command + " add https://bitbucket.org/WORKSPACE/REPO (the token on stdin or at the hidden prompt)"
		return []Finding{f}
	}
	now := d.now()
	var out []Finding
	for _, c := range ix.Creating {
		f := base
		f.Subject = fmt.Sprintf("create of %q (%s)", c.Name, c.URL)
		f.Level = Action
		f.Message = "a create was interrupted (or is under way): the server may have made a token nothing serves"
		f.Fix = Command + " repair (" + managedBy(c.By) + ")"
		out = append(out, f)
	}
	entries := slices.Clone(ix.Entries)
	slices.SortStableFunc(entries, func(a, b store.Entry) int {
		return strings.Compare(a.URL+" "+string(a.Kind), b.URL+" "+string(b.Kind))
	})
	for _, e := range entries {
		f := base
		f.Subject = entrySubject(e)
		expires, hasExpiry, expErr := e.ExpiresAt()
		switch {
		case e.State == store.StateNeedsLogin:
			f.Level = Action
			f.Message = "the login has ended: Bitbucket refused its refresh token (unused for months, revoked, or spent elsewhere), so it is no longer served"
			f.Fix = helper.LoginCommand(&e)
			out = append(out, f)
		case e.State == store.StateRejected:
			f.Level = Action
			f.Message = "rejected: Bitbucket answered 401 for its own scope (revoked, expired or mistyped), so it is no longer served"
			f.Fix = readdFix(e)
			out = append(out, f)
		case expErr != nil:
			f.Level = Action
			f.Message = fmt.Sprintf("its expiry %q cannot be read, so it is never served", e.Expires)
			f.Fix = readdFix(e)
			out = append(out, f)
		case hasExpiry && !now.Before(expires):
			f.Level = Action
			if !e.Added() {
				f.Level = Warn // git drops it and prompts again
			}
			f.Message = "expired on " + e.Expires + ", so it is no longer served"
			f.Fix = readdFix(e)
			out = append(out, f)
		case hasExpiry && expires.Sub(now) <= d.expiryWindow():
			f.Level = Warn
			days := int(expires.Sub(now).Hours() / 24)
			f.Message = fmt.Sprintf("expires on %s (in %d day(s))", e.Expires, days)
			f.Fix = readdFix(e)
			out = append(out, f)
		}
		if e.Server.Unfinished() {
			f := base
			f.Subject = entrySubject(e)
			f.Level = Action
			f.Message = "a rotation of it was interrupted (or is under way): a token it made may be left on the server, or the replaced one not revoked"
			f.Fix = Command + " repair (" + managedBy(e.Server.By) + ")"
			out = append(out, f)
		}
		if len(e.RejectedFor) > 0 && e.State != store.StateRejected {
			f := base
			f.Subject = entrySubject(e)
			f.Level = Warn
			f.Message = fmt.Sprintf("withdrawn after a 401 from %d repositor(ies): %s", len(e.RejectedFor), strings.Join(e.RejectedFor, ", "))
			f.Fix = "add a token for those repositories, or check the token's permissions there (it stays in use elsewhere)"
			if e.Server != nil {
				f.Fix = Command + " verify " + e.ID + " (if Bitbucket refuses it everywhere, " + rotateFix(e) + ")"
			}
			out = append(out, f)
		}
		if e.AuthType != "" && gv.ok && !gv.atLeast(2, 46, 0) {
			f := base
			f.Subject = entrySubject(e)
			f.Level = Action
			f.Message = fmt.Sprintf("is sent as Authorization: %s, which needs git 2.46 (authtype); this git is %s, so it is never used", e.AuthType, gv.raw)
			f.Fix = "upgrade git to 2.46 or newer"
			out = append(out, f)
		}
		if keyringOK && e.InKeyring() && helper.FlavorOf(ix, bitbucket.ScopeHost(e.URL)) == bitbucket.Cloud && e.AuthType == "" {
			if raw, err := d.Store.Secret(ctx, &e); err == nil && isAppPassword(e, raw) {
				f := base
				f.Subject = entrySubject(e)
				f.Level = Action
				f.Message = "holds an app password (ATBB…): " + bitbucket.AppPasswordsEnded
				f.Fix = bitbucket.ReplaceAppPassword(Command, "https://"+bitbucket.ScopeHost(e.URL), "") + ", then " + Command + " remove " + e.ID
				out = append(out, f)
			}
		}
	}
	if len(out) == 0 {
		f := base
		f.Subject, f.Level = "tokens", OK
		f.Message = fmt.Sprintf("%d token(s): none expired, rejected or expiring within %d days", len(entries), int(d.expiryWindow().Hours()/24))
		out = append(out, f)
	}
	return out
}

// isAppPassword decodes an entry's keyring value and checks its password.
func isAppPassword(e store.Entry, raw string) bool {
	pw, err := helper.WirePassword(&e, raw)
	return err == nil && bitbucket.IsAppPassword(pw)
}

// checkPlaintext reports Bitbucket credentials in git's plaintext store.
func (d *Doctor) checkPlaintext(ix *store.Index) []Finding {
	var files []string
	if d.Home != "" {
		files = append(files, filepath.Join(d.Home, ".git-credentials"))
	}
	if xdg := cmp.Or(d.ConfigHome, joinIf(d.Home, ".config")); xdg != "" {
		files = append(files, filepath.Join(xdg, "git", "credentials"))
	}
	var out []Finding
	for _, file := range files {
		data, err := regfile.ReadFile(file, regfile.FollowLinks)
		if errors.Is(err, regfile.ErrNotRegular) {
			// Never waited on: a named pipe there would hang doctor.
			out = append(out, Finding{Check: "plaintext", Subject: file, Level: Warn, Message: oneLine(err.Error())})
			continue
		}
		if err != nil {
			continue
		}
		sum := summarizePlaintext(data, ix)
		if sum.bitbucket == 0 {
			continue
		}
		f := Finding{Check: "plaintext", Subject: file, Level: Warn}
		f.Message = fmt.Sprintf("%d Bitbucket credential(s) in plaintext", sum.bitbucket)
		if sum.dead > 0 {
			f.Message += fmt.Sprintf(" (%d app password(s), dead since 28 July 2026)", sum.dead)
		}
		if sum.bitbucket > sum.dead {
			f.Level = Action
		}
		f.Fix = Command + " import --from " + file + " --remove-plaintext"
		out = append(out, f)
	}
	return out
}

func joinIf(dir, name string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, name)
}

type plaintextSummary struct{ bitbucket, dead int }

func summarizePlaintext(data []byte, ix *store.Index) plaintextSummary {
	var s plaintextSummary
	for _, it := range importer.Plan(importer.Split(data), ix) {
		s.bitbucket++
		if it.Verdict == importer.Dead {
			s.dead++
		}
	}
	return s
}
