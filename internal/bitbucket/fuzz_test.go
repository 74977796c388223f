package bitbucket_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
)

// Markers that open and close the password FuzzParseUserURL puts into a
// URL's user info. They compare case-insensitively, since hosts are
// lower-cased on the way to a message.
const (
	pwOpen  = "q7pwopen"
	pwClose = "q7pwclose"
)

// FuzzParseUserURL checks the normaliser behind add, remove and setup
// --host. For any input it must not panic, and:
//
//   - a scope it returns has a host that NormalizeHost keeps as it is, a
//     path that CleanPath keeps as it is (no '.', '..' or empty segments,
//     no slash at either end, nothing left for it to trim), a path already
//     in the flavour's canonical case, and it reads back unchanged through
//     Scope.String and ParseScope (what add writes to the index is what get
//     matches) and through ParseUserURL again (list shows a URL that remove
//     accepts for the same entry);
//   - an error wraps one of the package's errors and never shows the
//     password of the URL's user info, whatever it holds ('/', '@', '?',
//     '#', ':', escapes).
//
// Each input is tried as given and with the user info user:PASSWORD@
// inserted after the scheme, PASSWORD being pass with a marker at one end.
func FuzzParseUserURL(f *testing.F) {
	seeds := []struct {
		raw, user, pass string
		cloud           bool
	}{
		{"https://bitbucket.org/ws/repo.git", "alice", "s3cr3t", true},
		{"https://BitBucket.org:443/WS/Repo.GIT/", "alice", "", true},
		{"bitbucket.org/ws/repo/src/main/README.md?at=main#lines-3", "", "x", true},
		{"https://bitbucket.org/ws/workspace/projects/X", "u", "p@ss/word", true},
		{"https://bitbucket.org/ws/repo.git.git", "alice", "pw", true},
		{"https://bitbucket.org/ws/.git.git", "alice", "pw", true},
		{"https://bitbucket.org/ws/..git", "alice", "pw", true},
		{"https://bitbucket.org/ws/%2e%2e/other", "alice", "pw", true},
		{"https://bitbucket.org/ws//repo", "alice", "123/abc", true},
		{"https://bitbucket.org/ws/../repo", "alice", "123/abc", true},
		{"https://bitbucket.org/ws/%zz", "alice", "p?w#x", true},
		{"https://bitbucket.org:port/ws", "alice", "pw", true},
		{"https:///ws/repo.git", "alice", "pw", true},
		{"http://bitbucket.org/ws/repo.git", "alice", "pw", true},
		{"ssh://git@bitbucket.org/ws/repo.git", "git", "pw", true},
		{"git@bitbucket.org:ws/repo.git", "", "", true},
		{"bitbucket.org:ws/repo.git", "", "", true},
		{"ftp://bitbucket.org/ws", "alice", "pw", true},
		{"https://bb.example.com/scm/PROJ/repo.git", "alice", "Tk/9+x==", false},
		{"https://bb.example.com/scm/p.git.git/r", "alice", "pw", false},
		{"https://bb.example.com/projects/proj/repos/repo/browse", "alice", "pw", false},
		{"https://bb.example.com/bitbucket/users/u/repos/r", "alice", "pw", false},
		{"https://bb.example.com/users/.git/repos/r", "alice", "pw", false},
		{"bb.example.com:7990/scm/PROJ/repo.git", "", "", false},
		{"[::1]:8443/scm/PROJ/repo.git", "", "", false},
		{"https://[::1]:443/scm/P/r", "alice", "pw", false},
		{"https://bitbuc\u212aet.org/ws", "alice", "pw", false},
		{"https://bitbucket.org:/ws", "alice", "pw", true},
		{"  https://bitbucket.org/ws\n", "alice", "pw", true},
	}
	for _, s := range seeds {
		f.Add(s.raw, s.user, s.pass, s.cloud)
	}
	f.Fuzz(func(t *testing.T, raw, user, pass string, cloud bool) {
		flavor := bitbucket.DataCenter
		if cloud {
			flavor = bitbucket.Cloud
		}
		flavorOf := func(string) bitbucket.Flavor { return flavor }
		checkUserURL(t, raw, flavorOf, "")

		// The same input with a password in its user info. A user name
		// never holds ':', '/', '?', '#' or '@'; the password may hold
		// anything but a line break (add reads one line).
		if strings.ContainsAny(user, ":/?#@") || strings.ContainsAny(pass, "\r\n") {
			return
		}
		scheme, rest, ok := strings.Cut(raw, "://")
		if !ok {
			scheme, rest = "https", raw
		}
		lower := strings.ToLower(scheme + user + pass + rest)
		if strings.Contains(lower, pwOpen) || strings.Contains(lower, pwClose) {
			return // a marker outside the password would show legitimately
		}
		// A marker at each end in turn: a password that starts like a port
		// ("123/...") parses differently from one that starts with letters.
		for _, password := range []string{pass + pwClose, pwOpen + pass} {
			checkUserURL(t, scheme+"://"+user+":"+password+"@"+rest, flavorOf, password)
		}
	})
}

// checkUserURL checks one ParseUserURL call; password, when set, must not
// show in an error.
func checkUserURL(t *testing.T, raw string, flavorOf func(string) bitbucket.Flavor, password string) {
	t.Helper()
	sc, fl, err := bitbucket.ParseUserURL(raw, flavorOf)
	if err != nil {
		if sc != (bitbucket.Scope{}) || fl != "" {
			t.Fatalf("ParseUserURL(%q) failed (%v) but returned %#v, %q", raw, err, sc, fl)
		}
		known := false
		for _, e := range []error{bitbucket.ErrBadURL, bitbucket.ErrSSHURL, bitbucket.ErrNotHTTPS, bitbucket.ErrBadHost} {
			known = known || errors.Is(err, e)
		}
		if !known {
			t.Fatalf("ParseUserURL(%q): error %q wraps none of the package's errors", raw, err)
		}
		if password != "" {
			msg := strings.ToLower(err.Error())
			if strings.Contains(msg, pwOpen) || strings.Contains(msg, pwClose) {
				t.Fatalf("ParseUserURL(%q): the error shows the password: %v", raw, err)
			}
		}
		return
	}

	if fl != flavorOf(sc.Host) {
		t.Fatalf("ParseUserURL(%q) = %#v with flavour %q, want %q", raw, sc, fl, flavorOf(sc.Host))
	}
	if h, err := bitbucket.NormalizeHost(sc.Host); err != nil || h != sc.Host {
		t.Fatalf("ParseUserURL(%q): host %q is not normalised: NormalizeHost gives %q, %v", raw, sc.Host, h, err)
	}
	var segs []string
	if sc.Path != "" {
		segs = strings.Split(sc.Path, "/")
		for _, s := range segs {
			if s == "" || s == "." || s == ".." {
				t.Fatalf("ParseUserURL(%q): path %q has the segment %q", raw, sc.Path, s)
			}
		}
		clean, ok := bitbucket.CleanPath(sc.Path)
		if !ok || !slices.Equal(clean, segs) {
			t.Fatalf("ParseUserURL(%q): path %q is not clean: CleanPath gives %q, %v", raw, sc.Path, clean, ok)
		}
		if c := bitbucket.CanonicalPath(fl, segs); c != sc.Path {
			t.Fatalf("ParseUserURL(%q): path %q is not canonical (%q)", raw, sc.Path, c)
		}
	}
	if !slices.Equal(sc.Segments(), segs) {
		t.Fatalf("ParseUserURL(%q): Segments() = %q, want %q", raw, sc.Segments(), segs)
	}
	back, err := bitbucket.ParseScope(sc.String())
	if err != nil || back != sc {
		t.Fatalf("ParseUserURL(%q) = %#v, written as %q, reads back as %#v, %v", raw, sc, sc.String(), back, err)
	}
	again, fl2, err := bitbucket.ParseUserURL(sc.String(), flavorOf)
	if err != nil || again != sc || fl2 != fl {
		t.Fatalf("ParseUserURL(%q) = %#v, but ParseUserURL(%q) = %#v, %q, %v", raw, sc, sc.String(), again, fl2, err)
	}
}

// TestParseUserURLFuzzFindings pins what FuzzParseUserURL found: scopes
// that did not read back as themselves, and a password shown in an error.
func TestParseUserURLFuzzFindings(t *testing.T) {
	cloud := func(string) bitbucket.Flavor { return bitbucket.Cloud }
	for _, raw := range []string{
		"https://bitbucket.org/ws/repo.git.git", // was ws/repo.git, read back as ws/repo
		"https://bitbucket.org/WS/REPO.GIT",     // was ws/repo.git, read back as ws/repo
		"https://bitbucket.org/ws/.git.git",     // was ws/.git, which ParseScope refuses
		"https://bitbucket.org/ws/repo%20",      // was "ws/repo ", shown as a URL that pastes back as ws/repo
		"https://bitbucket.org/ws/re%3Fpo",      // was "ws/re?po", shown as a URL that pastes back as ws/re
		"https://bitbucket.org/ws/re%23po",      // likewise with '#'
	} {
		sc, _, err := bitbucket.ParseUserURL(raw, cloud)
		if !errors.Is(err, bitbucket.ErrBadURL) {
			t.Errorf("ParseUserURL(%q) = %#v, %v; want ErrBadURL", raw, sc, err)
		}
	}
	// A password whose start looks like a port ("123/...") made url.Parse
	// read the rest of it as the path, which the error then quoted.
	_, _, err := bitbucket.ParseUserURL("https://alice:123/s3cr3t@bitbucket.org/ws/../x", cloud)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %v: want one that does not show the password", err)
	}
	// Only ASCII letters fold: U+212A KELVIN SIGN is no 'k' in "workspace".
	sc, _, err := bitbucket.ParseUserURL("https://bitbucket.org/ws/wor\u212aspace/x", cloud)
	if err != nil || sc.Path != "ws/wor\u212aspace" {
		t.Errorf("ParseUserURL of a Kelvin-sign \"workspace\" = %#v, %v; want the repository ws/wor\u212aspace", sc, err)
	}
}
