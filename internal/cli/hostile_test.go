package cli

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileStore sets up a realistic store: a repository token (with an
// expiry), a workspace token, a host-wide API token for alice, a Data
// Center project token (Bearer) and a password git stored for bob. It
// returns the entry IDs by name.
func hostileStore(t *testing.T) (*fixture, map[string]string) {
	t.Helper()
	f := newFixture(t)
	ids := map[string]string{
		"repo": f.add(repoTok, "https://bitbucket.org/ws/repo", "--expires", "2027-01-31"),
		"ws":   f.add(wsTok, "https://bitbucket.org/ws", "--kind", "workspace"),
		"api":  f.add(apiTok, "https://bitbucket.org", "--kind", "api", "--username", "alice"),
		"dc":   f.add(dcTok, "https://bb.example.com/scm/PROJ", "--kind", "project"),
	}
	r := f.run("protocol=https\nhost=bitbucket.org\npath=other/thing.git\nusername=bob\npassword="+typedPw+"\n", "store")
	require.Equal(t, result{ExitOK, "", ""}, r)
	ix := f.index()
	require.Len(t, ix.Entries, 5)
	for _, e := range ix.Entries {
		if e.Kind == "stored" {
			ids["stored"] = e.ID
		}
	}
	require.Equal(t, "Bearer", f.entry(ids["dc"]).AuthType)
	return f, ids
}

// countingReader counts what a run read from stdin.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestHostileInput drives get, store, erase and unknown operations with
// malformed and hostile input over a realistic store. Every case states its
// exact outcome (exit status, stdout, stderr), and no case may change the
// stored data: the index file and the keyring are compared byte for byte.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	expiry := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC).Unix()
	var (
		repo   = fmt.Sprintf("username=x-token-auth\npassword=%s\npassword_expiry_utc=%d\n", repoTok, expiry)
		ws     = "username=x-token-auth\npassword=" + wsTok + "\n"
		api    = "username=alice\npassword=" + apiTok + "\n"
		dc     = "capability[]=authtype\nauthtype=Bearer\ncredential=" + dcTok + "\n"
		stored = "username=bob\npassword=" + typedPw + "\n"
		bearer = "git-credential-bbtoken: https://bb.example.com/scm/PROJ has a Data Center project token, " +
			"which works only as a Bearer token: git 2.46 or newer is needed to send it\n"
	)
	const (
		cloud = "protocol=https\nhost=bitbucket.org\n"
		bbdc  = "protocol=https\nhost=bb.example.com\n"
		base  = cloud + "path=ws/repo.git\n"
	)

	// Big inputs.
	longLine := base + "wwwauth[]=" + strings.Repeat("y", 65536) + "\n"
	maxLine := base + "wwwauth[]=" + strings.Repeat("y", 65535-len("wwwauth[]=")) + "\n"
	kib := "wwwauth[]=" + strings.Repeat("z", 1024-len("wwwauth[]=")-1) + "\n" // 1024 bytes with its LF
	tenMiBLines := strings.Repeat(kib, 10<<10)
	tenMiBOneLine := "wwwauth[]=" + strings.Repeat("z", 10<<20)
	garbage := make([]byte, 10<<20) // no LF, CR, NUL or '=': one long line
	for i := range garbage {
		garbage[i] = byte(0x80 + i*7%0x80)
	}
	victim := "Basic realm=\"" + strings.Repeat("host=victim.example.com\\npath=evil/x username=mallory ", 60<<10/55) + "\""
	require.Greater(t, len(victim), 60000)
	require.Less(t, len(victim), 65535)

	type tc struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout string // {name} stands for the ID of that entry
		stderr string
	}
	ans := func(name, stdin, want string) tc { return tc{name, []string{"get"}, stdin, ExitOK, want, ""} }
	none := func(name, op, stdin string) tc { return tc{name, []string{op}, stdin, ExitOK, "", ""} }
	fail := func(name, op, stdin, msg string) tc {
		return tc{name, []string{op}, stdin, ExitError, "", "git-credential-bbtoken: " + op + ": " + msg + "\n"}
	}
	tests := []tc{
		// Framing: LF only; CR and NUL are refused wherever they are.
		fail("CR at a line end", "get", "protocol=https\nhost=bitbucket.org\r\npath=ws/repo.git\n", `credential input line 2 (key "host"): value contains a carriage return`),
		fail("bare CR as a separator", "get", "protocol=https\rhost=evil.com\nhost=bitbucket.org\npath=ws/repo.git\n", `credential input line 1 (key "protocol"): value contains a carriage return`),
		fail("CR in the password", "store", base+"username=bob\npassword="+typedPw+"\r\n", `credential input line 5 (key "password"): value contains a carriage return`),
		fail("CR in erase", "erase", base+"username=x-token-auth\npassword="+repoTok+"\rhost=evil.com\n", `credential input line 5 (key "password"): value contains a carriage return`),
		fail("NUL in the host", "get", "protocol=https\nhost=bitbucket.org\x00.evil.com\npath=ws/repo.git\n", `credential input line 2 (key "host"): value contains a NUL byte`),
		fail("NUL in the password", "erase", base+"username=x-token-auth\npassword="+repoTok+"\x00\n", `credential input line 5 (key "password"): value contains a NUL byte`),
		fail("NUL in a key", "get", "proto\x00col=https\nhost=bitbucket.org\n", `credential input line 1: value contains a NUL byte`),

		// LF, CR and NUL smuggled through url= percent-encoding.
		fail("url: %0a in the host", "get", "url=https://bitbucket.org%0ahost=evil.com/ws/repo.git\n", `credential input line 1 (key "url"): host: value contains a newline`),
		fail("url: %0d in the host", "get", "url=https://bitbucket.org%0d.evil.com/ws/repo.git\n", `credential input line 1 (key "url"): host: value contains a carriage return`),
		fail("url: %00 in the host", "get", "url=https://bitbucket.org%00.evil.com/ws/repo.git\n", `credential input line 1 (key "url"): host: value contains a NUL byte`),
		fail("url: %0A in the path", "get", "url=https://bitbucket.org/ws/repo.git%0Ahost=evil.com\n", `credential input line 1 (key "url"): path: value contains a newline`),
		fail("url: %0d in the path", "get", "url=https://bitbucket.org/ws%0d/repo.git\n", `credential input line 1 (key "url"): path: value contains a carriage return`),
		fail("url: %00 in the path", "get", "url=https://bitbucket.org/ws/repo.git%00\n", `credential input line 1 (key "url"): path: value contains a NUL byte`),
		fail("url: %0a in the username", "get", "url=https://alice%0apassword=x@bitbucket.org/ws/repo.git\n", `credential input line 1 (key "url"): username: value contains a newline`),
		fail("url: %00 in the username", "get", "url=https://alice%00@bitbucket.org/ws/repo.git\n", `credential input line 1 (key "url"): username: value contains a NUL byte`),
		fail("url: %0a in the password", "store", "url=https://bob:"+typedPw+"%0aprotocol=http@bitbucket.org/other/thing.git\n", `credential input line 1 (key "url"): password: value contains a newline`),
		fail("url: %0D in the password", "erase", "url=https://x-token-auth:"+repoTok+"%0D@bitbucket.org/ws/repo.git\n", `credential input line 1 (key "url"): password: value contains a carriage return`),
		fail("url: %00 in the password", "erase", "url=https://bob:"+typedPw+"%00@bitbucket.org/other/thing.git\n", `credential input line 1 (key "url"): password: value contains a NUL byte`),

		// No protocol or no host: refused (CVE-2020-11008).
		fail("missing host", "get", "protocol=https\npath=ws/repo.git\n", "invalid credential request: no host"),
		fail("empty host", "get", "protocol=https\nhost=\npath=ws/repo.git\n", "invalid credential request: no host"),
		fail("missing host in store", "store", "protocol=https\npath=other/thing.git\nusername=bob\npassword="+typedPw+"\n", "invalid credential request: no host"),
		fail("empty host in erase", "erase", "protocol=https\nhost=\npath=other/thing.git\nusername=bob\npassword="+typedPw+"\n", "invalid credential request: no host"),
		fail("url without a host", "get", "url=https:///ws/repo.git\n", "invalid credential request: no host"),
		fail("url with only user info", "erase", "url=https://bob:"+typedPw+"@/other/thing.git\n", "invalid credential request: no host"),
		fail("missing protocol", "get", "host=bitbucket.org\npath=ws/repo.git\n", "invalid credential request: no protocol"),
		fail("empty input", "erase", "", "invalid credential request: no protocol"),
		fail("a later url= without a host clears the host", "get", "protocol=https\nhost=bitbucket.org\nurl=https://\n", "invalid credential request: no host"),
		fail("url= without a scheme", "get", "protocol=https\nhost=bitbucket.org\nurl=bitbucket.org/ws/repo.git\n", `credential input line 3 (key "url"): invalid url`),

		// url= after other keys replaces what they said.
		none("url= clears the host and path", "get", base+"url=https://evil.com\n"),
		ans("url= replaces every field", "protocol=http\nhost=evil.com\npath=evil/x.git\nusername=bob\nurl=https://bitbucket.org/ws/repo.git\n", repo),
		ans("url= clears the username", "username=bob\nurl=https://bitbucket.org/team/x.git\n", api),
		ans("url= clears the path", base+"url=https://bitbucket.org\n", api),
		none("keys after url= win", "get", "url=https://bitbucket.org/ws/repo.git\nhost=evil.com\n"),

		// Repeated keys: the last one wins.
		ans("host twice, ours last", "protocol=https\nhost=evil.com\nhost=bitbucket.org\npath=ws/repo.git\n", repo),
		none("host twice, another last", "get", "protocol=https\nhost=bitbucket.org\nhost=evil.com\npath=ws/repo.git\n"),
		ans("path twice", base+"path=ws/other.git\n", ws),
		none("protocol twice, http last", "get", base+"protocol=http\n"),
		ans("username twice", cloud+"path=team/x.git\nusername=bob\nusername=alice\n", api),

		// Sizes.
		fail("line over 65535 bytes", "get", longLine, "credential input line 4: line too long"),
		fail("password over 65535 bytes", "store", cloud+"path=other/thing.git\nusername=bob\npassword="+strings.Repeat("p", 70000)+"\n", "credential input line 5: line too long"),
		ans("line of exactly 65535 bytes", maxLine, repo),
		fail("10 MiB in 1 KiB lines", "get", tenMiBLines, "credential input line 1025: input too large"),
		fail("10 MiB in one line", "erase", tenMiBOneLine, "credential input line 1: line too long"),
		fail("10 MiB of binary garbage", "store", string(garbage), "credential input line 1: line too long"),
		fail("binary garbage without =", "get", string(garbage[:300])+"\n"+base, "credential input line 1: malformed line (want key=value)"),
		fail("gzip magic", "get", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03=x\n", "credential input line 1: value contains a NUL byte"),
		fail("binary key, no protocol", "get", "\xff\xfe\x80=\x81\x82\nhost=bitbucket.org\n", "invalid credential request: no protocol"),
		ans("binary in the path", cloud+"path=ws/\xff\xfe\x80repo.git\n", ws),
		ans("binary garbage after the blank line", base+"\n\x00\r\xff\xfegarbage=\r\n", repo),

		// A last line without LF is still a line.
		ans("no trailing newline", strings.TrimSuffix(base, "\n"), repo),
		none("store without trailing newline", "store", base+"username=x-token-auth\npassword="+repoTok),

		// Unknown attributes are ignored; keys are case-sensitive.
		ans("unknown attributes", "x-future=1\nfoo[]=bar\n"+base+"PROTOCOL=http\nHost=evil.com\nurl[]=https://evil.com\n", repo),
		none("store with unknown attributes", "store", "x-future=1\n"+base+"username=x-token-auth\npassword="+repoTok+"\nfoo[]=bar\n"),
		// Unknown operations are ignored silently, whatever the input.
		{"unknown operation", []string{"frobnicate"}, base + "password=" + typedPw + "\n", ExitOK, "", ""},
		{"unknown operation with garbage", []string{"capability"}, "\x00\r\n\xff", ExitOK, "", ""},
		{"unknown operation with arguments", []string{"erase-all", "--force", "https://bitbucket.org"}, base, ExitOK, "", ""},

		// Host confusion.
		none("suffix look-alike", "get", "protocol=https\nhost=bitbucket.org.evil.com\npath=ws/repo.git\n"),
		none("our host in the path", "get", "protocol=https\nhost=evil.com\npath=bitbucket.org/ws/repo.git\n"),
		none("other port", "get", "protocol=https\nhost=bitbucket.org:8443\npath=ws/repo.git\n"),
		ans("upper-case host", "protocol=https\nhost=BITBUCKET.ORG\npath=ws/repo.git\n", repo),
		ans("default port", "protocol=https\nhost=bitbucket.org:443\npath=ws/repo.git\n", repo),
		none("trailing dot", "get", "protocol=https\nhost=bitbucket.org.\npath=ws/repo.git\n"),
		none("punycode look-alike", "get", "protocol=https\nhost=xn--bitbucke-vch.org\npath=ws/repo.git\n"),
		none("Cyrillic look-alike", "get", "protocol=https\nhost=bitbuck\u0435t.org\npath=ws/repo.git\n"),
		none("Kelvin sign look-alike", "get", "protocol=https\nhost=bitbuc\u212aet.org\npath=ws/repo.git\n"),
		none("user info in the host", "get", "protocol=https\nhost=alice@bitbucket.org\npath=ws/repo.git\n"),
		none("a path in the host", "get", "protocol=https\nhost=bitbucket.org/ws/repo.git\n"),
		none("space before the host", "get", "protocol=https\nhost= bitbucket.org\npath=ws/repo.git\n"),
		none("url: our host as user info", "get", "url=https://bitbucket.org@evil.com/ws/repo.git\n"),
		none("url: our host as user and port", "get", "url=https://bitbucket.org:443@evil.com/ws/repo.git\n"),
		none("url: '?' ends the host", "get", "url=https://evil.com?@bitbucket.org/ws/repo.git\n"),
		none("DC host with Cloud path", "get", "capability[]=authtype\nprotocol=https\nhost=bb.example.com.evil.com\npath=scm/PROJ/repo.git\n"),

		// Path tricks: scoped tokens only for clean paths they prefix.
		ans("dot-dot", cloud+"path=ws/../other/repo.git\n", api),
		ans("dot-dot out of the scope", cloud+"path=ws/repo/../../x\n", api),
		ans("dot", cloud+"path=ws/./repo.git\n", api),
		ans("escaped slash", cloud+"path=ws%2Frepo.git\n", api),
		ans("escaped dot-dot", cloud+"path=ws/%2e%2e/repo.git\n", api),
		ans("backslash", cloud+"path=ws\\repo.git\n", api),
		ans("empty segment", cloud+"path=ws//repo.git\n", api),
		ans("query in the path", cloud+"path=ws/repo.git?x=1\n", api),
		ans("url: escaped slash decodes as git decodes it", "url=https://bitbucket.org/ws%2Frepo.git\n", repo),
		ans("trailing slash", cloud+"path=ws/repo/\n", repo),
		ans("leading slash", cloud+"path=/ws/repo.git\n", repo),
		ans("a .git segment below the repository stays inside it", cloud+"path=ws/repo.git/.git\n", repo),
		ans(".git twice is another repository", cloud+"path=ws/repo.git.git\n", ws),
		ans("upper-case path", cloud+"path=WS/REPO.git\n", repo),
		ans("upper-case .GIT is part of the name", cloud+"path=WS/REPO.GIT\n", ws),
		ans("sibling with the same prefix", cloud+"path=ws/repo2.git\n", ws),
		ans("lfs endpoint", cloud+"path=ws/repo.git/info/lfs\n", repo),
		ans("no path: host-wide only", cloud, api),
		ans("path /: host-wide only", cloud+"path=/\n", api),

		// wwwauth[] is the server's text: never parsed, never echoed.
		ans("60 KB wwwauth[] with host=victim", "wwwauth[]="+victim+"\n"+base+"wwwauth[]="+victim+"\n", repo),
		ans("wwwauth[] lines that look like keys", "wwwauth[]=host=victim.example.com\n"+base+"wwwauth[]=protocol=http\nwwwauth[]=url=https://victim.example.com/\n", repo),

		// Protocols other than https.
		none("http", "get", "protocol=http\nhost=bitbucket.org\npath=ws/repo.git\n"),
		none("ssh", "get", "protocol=ssh\nhost=bitbucket.org\npath=ws/repo.git\n"),
		none("https with a space", "get", "protocol=https \nhost=bitbucket.org\npath=ws/repo.git\n"),
		ans("upper-case https", "protocol=HTTPS\nhost=bitbucket.org\npath=ws/repo.git\n", repo),

		// Capabilities count wherever they appear.
		ans("capability after other keys", bbdc+"path=scm/PROJ/repo.git\ncapability[]=authtype\n", dc),
		ans("capability first", "capability[]=authtype\n"+bbdc+"path=scm/proj/repo.git\n", dc),
		ans("Bearer ignores the username", bbdc+"path=scm/PROJ/repo.git\nusername=mallory\ncapability[]=authtype\n", dc),
		{"no capability: Bearer withheld", []string{"get"}, bbdc + "path=scm/PROJ/repo.git\n", ExitOK, "", bearer},
		{"capability names are case-sensitive", []string{"get"}, bbdc + "path=scm/PROJ/repo.git\ncapability[]=AUTHTYPE\n", ExitOK, "", bearer},
		ans("state capability after other keys", base+"capability[]=state\n", "capability[]=state\n"+repo+"state[]=bbtoken:id={repo}\n"),
		none("Bearer over http", "get", "capability[]=authtype\nprotocol=http\nhost=bb.example.com\npath=scm/PROJ/repo.git\n"),

		// Usernames.
		none("another username than the API token's", "get", cloud+"path=team/x.git\nusername=bob\n"),
		ans("the API token's username, other case", cloud+"path=team/x.git\nusername=ALICE\n", api),
		ans("empty username", cloud+"path=team/x.git\nusername=\n", api),
		ans("access token, another username", base+"username=bob\n", repo),
		ans("workspace token, another username", cloud+"path=ws/other.git\nusername=mallory\n", ws),
		ans("stored credential", cloud+"path=other/thing.git\n", stored),
		ans("stored credential, its username", cloud+"path=other/thing.git\nusername=bob\n", stored),
		ans("stored credential, another username", cloud+"path=other/thing.git\nusername=alice\n", api),

		// store and erase that must leave everything as it is.
		none("store over http", "store", "protocol=http\nhost=bitbucket.org\npath=ws/x.git\nusername=bob\npassword="+typedPw+"\n"),
		none("store ephemeral", "store", cloud+"path=ws/x.git\nusername=bob\npassword="+typedPw+"\nephemeral=1\n"),
		none("store with dot-dot", "store", cloud+"path=ws/../x.git\nusername=bob\npassword="+typedPw+"\n"),
		none("store expired", "store", cloud+"path=ws/x.git\nusername=bob\npassword="+typedPw+"\npassword_expiry_utc=1\n"),
		none("store with user info in the host", "store", "protocol=https\nhost=bob@bitbucket.org\npath=ws/x.git\nusername=bob\npassword="+typedPw+"\n"),
		none("store our token again, url= with upper-case host", "store", "url=https://x-token-auth:"+repoTok+"@BITBUCKET.ORG/ws/repo.git\n"),
		none("erase for another host", "erase", "protocol=https\nhost=evil.com\npath=ws/repo.git\nusername=x-token-auth\npassword="+repoTok+"\n"),
		none("erase with dot-dot", "erase", cloud+"path=ws/../ws/repo.git\nusername=x-token-auth\npassword="+repoTok+"\n"),
		none("erase with another password", "erase", cloud+"path=other/thing.git\nusername=bob\npassword=not-the-stored-one\n"),
		none("erase over http", "erase", "protocol=http\nhost=bitbucket.org\npath=other/thing.git\nusername=bob\npassword="+typedPw+"\n"),
		none("erase with a look-alike host", "erase", "protocol=https\nhost=bitbuc\u212aet.org\npath=ws/repo.git\nusername=x-token-auth\npassword="+repoTok+"\n"),
		none("erase with user info in the host", "erase", "protocol=https\nhost=bob@bitbucket.org\npath=other/thing.git\nusername=bob\npassword="+typedPw+"\n"),
	}

	require.GreaterOrEqual(t, len(tests), 40)
	for _, tt := range tests {
		t.Run(tt.args[0]+"/"+tt.name, func(t *testing.T) {
			t.Parallel()
			f, ids := hostileStore(t)
			before := f.state()
			stdin := &countingReader{r: strings.NewReader(tt.stdin)}
			r := f.runWith(func(e *Env) { e.Stdin = stdin }, "", tt.args...)
			want := tt.stdout
			for name, id := range ids {
				want = strings.ReplaceAll(want, "{"+name+"}", id)
			}
			assert.Equal(t, tt.code, r.code, "exit status")
			assert.Equal(t, want, r.stdout, "stdout")
			assert.Equal(t, tt.stderr, r.stderr, "stderr")
			assertUnchanged(t, before, f.state())
			for _, s := range []string{"victim", "evil", "mallory"} {
				assert.NotContains(t, r.stdout, s, "the answer echoes the request")
			}
			if tt.code != ExitOK {
				for _, s := range []string{repoTok, wsTok, apiTok, dcTok, typedPw} {
					assert.NotContains(t, r.stderr, s, "an error shows a secret")
				}
			}
			// Input is read with bounded memory: a run never reads much
			// past the 1 MiB limit.
			assert.LessOrEqual(t, stdin.n, int64(1<<20+64<<10), "bytes read from stdin")
		})
	}
}

// TestHostileInputStoreIsRealistic checks that the store the hostile cases
// run against answers the plain requests, so "no answer" there means
// something.
func TestHostileInputStoreIsRealistic(t *testing.T) {
	t.Parallel()
	f, _ := hostileStore(t)
	for in, want := range map[string]string{
		"protocol=https\nhost=bitbucket.org\n":                                              "password=" + apiTok,
		"protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n":                            "password=" + repoTok,
		"protocol=https\nhost=bitbucket.org\npath=ws/other.git\n":                           "password=" + wsTok,
		"protocol=https\nhost=bitbucket.org\npath=team/x.git\n":                             "password=" + apiTok,
		"protocol=https\nhost=bitbucket.org\npath=other/thing.git\n":                        "password=" + typedPw,
		"capability[]=authtype\nprotocol=https\nhost=bb.example.com\npath=scm/PROJ/x.git\n": "credential=" + dcTok,
	} {
		r := f.run(in, "get")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, want+"\n", in)
	}
}
