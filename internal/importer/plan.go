package importer

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Verdict is what import does with a Bitbucket line.
type Verdict string

// Verdicts.
const (
	Import Verdict = "import" // a token: goes to the keyring
	Dead   Verdict = "dead"   // an app password: reported, never imported
	Skip   Verdict = "skip"   // cannot be imported as it is: reported with what to do
)

// Item is one Bitbucket line of the file and what import makes of it.
type Item struct {
	Line    Line
	Entry   Entry
	Verdict Verdict
	// Kind, Username and URL are what helper.Add gets for Import.
	Kind     store.Kind
	Username string
	Email    string // Cloud API tokens: the Atlassian e-mail (for verify)
	URL      string
	Scope    string // the scope the token gets (bitbucket.Scope.String)
	// Note says why a line is skipped or dead, or adds a remark to an import.
	Note string
	// Fix is the command that does by hand what import could not.
	Fix string
}

// Command is how messages name this program.
const Command = "git-credential-bbtoken"

// Plan classifies every Bitbucket line of a file: those for bitbucket.org
// and for the hosts the index knows (set up, or holding tokens). Lines for
// other hosts, and lines git itself would skip, are not items.
func Plan(lines []Line, ix *store.Index) []Item {
	hosts := bitbucketHosts(ix)
	flavorOf := func(host string) bitbucket.Flavor { return helper.FlavorOf(ix, host) }
	var items []Item
	seen := map[string]int{} // scope+kind → line of the first import
	for _, l := range lines {
		e, ok := Parse(l.Text)
		if !ok {
			continue
		}
		host, err := bitbucket.NormalizeHost(e.Host)
		if err != nil || !slices.Contains(hosts, host) {
			continue
		}
		it := Item{Line: l, Entry: e}
		classify(&it, host, flavorOf)
		if it.Verdict == Import {
			// An entry's slot is its scope, kind and user name (see
			// helper.SameIdentity); Cloud user names fold.
			user := helper.AddedUsername(flavorOf(host), it.Kind, it.Username)
			if flavorOf(host) == bitbucket.Cloud {
				user = bitbucket.LowerASCII(user)
			}
			key := it.Scope + " " + string(it.Kind) + " " + user
			if first, dup := seen[key]; dup {
				it.Verdict = Skip
				it.Note = "line " + strconv.Itoa(first) + " has a " + string(it.Kind) + " token for the same scope and user, and git's store helper uses the first line"
				it.Fix = ""
			} else {
				seen[key] = l.N
			}
		}
		items = append(items, it)
	}
	return items
}

func bitbucketHosts(ix *store.Index) []string {
	hosts := []string{bitbucket.CloudHost}
	for h := range ix.Hosts {
		hosts = append(hosts, h)
	}
	for _, e := range ix.Entries {
		if sc, err := bitbucket.ParseScope(e.URL); err == nil {
			hosts = append(hosts, sc.Host)
		}
	}
	return hosts
}

func classify(it *Item, host string, flavorOf func(string) bitbucket.Flavor) {
	e := it.Entry
	tok := e.Password.Reveal()
	hostURL := "https://" + host
	if !bitbucket.EqualFoldASCII(e.Protocol, "https") {
		it.Verdict, it.Note = Skip, "plain "+e.Protocol+" is never served a token: not imported"
		it.Fix = "use https remotes, and add the token with " + Command + " add " + hostURL + "/" + e.Path
		return
	}
	u := (&url.URL{Scheme: "https", Host: host, Path: "/" + e.Path}).String()
	sc, flavor, err := bitbucket.ParseUserURL(u, flavorOf)
	if err != nil {
		it.Verdict, it.Note = Skip, "its URL cannot be a token scope: "+err.Error()
		return
	}
	it.URL, it.Scope = sc.String(), sc.String()
	if tok == "" {
		it.Verdict, it.Note = Skip, "no password on the line"
		return
	}
	if flavor == bitbucket.Cloud {
		switch {
		case bitbucket.IsAppPassword(tok):
			it.Verdict = Dead
			it.Note = "an app password: " + bitbucket.AppPasswordsEnded + ", so it is not imported"
			user := e.Username
			if strings.Contains(user, "@") {
				user = "" // an e-mail is not the Bitbucket username git needs
			}
			it.Fix = bitbucket.ReplaceAppPassword(Command, hostURL, user) + " --expires YYYY-MM-DD"
		case strings.HasPrefix(tok, bitbucket.PrefixAPIToken):
			it.Verdict, it.Kind = Import, store.KindAPI
			switch {
			case strings.Contains(e.Username, "@"):
				it.Note = "git cannot use the Atlassian e-mail " + e.Username + " as the username: imported without --username (git sends " + helper.UserAPIToken + ")"
				if plainEmail(e.Username) {
					it.Email = e.Username
					it.Note += ", with the e-mail recorded for verify"
				}
			case e.Username != helper.UserAPIToken:
				it.Username = e.Username
			}
		case strings.HasPrefix(tok, bitbucket.PrefixAccessToken):
			switch sc.Level(flavor) {
			case bitbucket.LevelRepository:
				it.Verdict, it.Kind = Import, store.KindRepository
			case bitbucket.LevelGroup:
				it.Verdict = Skip
				it.Note = "an access token for a workspace URL: it may be a workspace or a project token, so it is not imported"
				it.Fix = Command + " add " + sc.String() + " --kind workspace (or --kind project)"
			default:
				it.Verdict = Skip
				it.Note = "an access token without a repository path (credential.useHttpPath was off): its scope is unknown, so it is not imported"
				it.Fix = Command + " add " + hostURL + "/WORKSPACE/REPO --kind repository (or a workspace URL with --kind workspace or --kind project)"
			}
		default:
			it.Verdict = Skip
			it.Note = "not a Bitbucket Cloud token (API tokens start ATATT, access tokens ATCTT): not imported"
			it.Fix = Command + " add " + sc.String() + " --kind KIND, if it is a token"
		}
		return
	}
	// Data Center: with a username, a personal HTTP access token (or a
	// password, which Data Center accepts the same way).
	if e.Username == "" {
		it.Verdict = Skip
		it.Note = "no username: a project or repository token? not imported"
		it.Fix = Command + " add " + sc.String() + " --kind project|repository"
		return
	}
	it.Verdict, it.Kind, it.Username = Import, store.KindPersonal, e.Username
}

// plainEmail reports whether s is a plain address (user@domain, no spaces,
// colons or control characters), as add --email takes it.
func plainEmail(s string) bool {
	user, domain, ok := strings.Cut(s, "@")
	if !ok || user == "" || domain == "" || strings.Contains(domain, "@") || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == ':' {
			return false
		}
	}
	return true
}
