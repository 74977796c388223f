package bitbucket_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
)

// flavors is the flavorOf the tests use: bitbucket.org is Cloud, every other
// host Data Center (the defaults), except cloud.example.com which a setup
// recorded as Cloud.
func flavors(host string) bitbucket.Flavor {
	if host == "cloud.example.com" {
		return bitbucket.Cloud
	}
	return bitbucket.DefaultFlavor(host)
}

func TestParseFlavor(t *testing.T) {
	tests := []struct {
		in      string
		want    bitbucket.Flavor
		wantErr bool
	}{
		{"cloud", bitbucket.Cloud, false},
		{"Cloud", bitbucket.Cloud, false},
		{"datacenter", bitbucket.DataCenter, false},
		{"data-center", bitbucket.DataCenter, false},
		{"DC", bitbucket.DataCenter, false},
		{"server", bitbucket.DataCenter, false},
		{"", "", true},
		{"github", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := bitbucket.ParseFlavor(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDefaultFlavor(t *testing.T) {
	assert.Equal(t, bitbucket.Cloud, bitbucket.DefaultFlavor("bitbucket.org"))
	assert.Equal(t, bitbucket.DataCenter, bitbucket.DefaultFlavor("bitbucket.example.com"))
	assert.Equal(t, bitbucket.DataCenter, bitbucket.DefaultFlavor("bitbucket.org:8443"))
	assert.Equal(t, bitbucket.DataCenter, bitbucket.DefaultFlavor("api.bitbucket.org"))
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = ErrBadHost
	}{
		{"bitbucket.org", "bitbucket.org"},
		{"BitBucket.ORG", "bitbucket.org"},
		{"bitbucket.org:443", "bitbucket.org"},
		{"BITBUCKET.ORG:443", "bitbucket.org"},
		{"bitbucket.org:8443", "bitbucket.org:8443"},
		{"bitbucket.org:4430", "bitbucket.org:4430"},
		{"bitbucket.org:0443", "bitbucket.org:0443"},
		{"bitbucket.org.", "bitbucket.org."}, // kept: never equal to bitbucket.org
		{"bitbucket.org:", "bitbucket.org:"},
		{"bb.example.com:7990", "bb.example.com:7990"},
		{"[::1]:443", "[::1]"},
		{"[::1]:8443", "[::1]:8443"},
		{"127.0.0.1", "127.0.0.1"},
		// Non-ASCII letters are not folded: U+212A KELVIN SIGN lower-cases
		// to 'k' under Unicode rules, which would make a look-alike equal.
		{"bitbuc\u212aet.org", "bitbuc\u212aet.org"},
		{"B\u0130TBUCKET.ORG", "b\u0130tbucket.org"},
		// Refused outright.
		{"", ""},
		{":443", ""},
		{":8443", ""},
		{"alice@bitbucket.org", ""},
		{"alice:pw@bitbucket.org", ""},
		{"bitbucket.org/ws", ""},
		{"bitbucket.org\\ws", ""},
		{"bitbucket.org?x", ""},
		{"bitbucket.org#x", ""},
		{"bitbucket%2eorg", ""},
		{"bitbucket.org\n", ""},
		{"bitbucket.org\r", ""},
		{"bitbucket.org\x00", ""},
		{"bitbucket.org\x7f", ""},
		{"bit bucket.org", ""},
		{"\tbitbucket.org", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := bitbucket.NormalizeHost(tt.in)
			if tt.want == "" {
				require.ErrorIs(t, err, bitbucket.ErrBadHost)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in     string
		want   []string
		wantOK bool
	}{
		{"", nil, true},
		{"/", nil, true},
		{"///", nil, true},
		// ".git" stays: only RequestPath drops it, from the repository segment.
		{"ws/repo.git", []string{"ws", "repo.git"}, true},
		{"/ws/repo.git/", []string{"ws", "repo.git"}, true},
		{"ws/repo", []string{"ws", "repo"}, true},
		{"ws/repo.git/info/lfs", []string{"ws", "repo.git", "info", "lfs"}, true},
		{"ws/.github", []string{"ws", ".github"}, true},
		{"ws/.git", []string{"ws", ".git"}, true},
		{"ws/..git", []string{"ws", "..git"}, true},
		{"ws/a..b", []string{"ws", "a..b"}, true},
		{"ws/...x", []string{"ws", "...x"}, true},
		{"ws/re po", []string{"ws", "re po"}, true},
		{"ws/r\u00e9po", []string{"ws", "r\u00e9po"}, true},
		// Read two ways by some server, or by us: never matched.
		{"ws//repo.git", nil, false},
		{"ws/./repo.git", nil, false},
		{"./ws/repo.git", nil, false},
		{"ws/../other/repo.git", nil, false},
		{"..", nil, false},
		{".", nil, false},
		{"ws/repo/..", nil, false},
		{"ws/%2e%2e/other", nil, false},
		{"ws/repo%2Fx", nil, false},
		{"ws/%", nil, false},
		{"ws\\..\\other", nil, false},
		{"ws/repo\\x", nil, false},
		{"ws/repo\n", nil, false},
		{"ws/re\tpo", nil, false},
		{"ws/re\x00po", nil, false},
		{"ws/re\x7fpo", nil, false},
		{"ws/re?po", nil, false},
		{"ws/re#po", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := bitbucket.CleanPath(tt.in)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

// RequestPath drops ".git" from the repository segment only: a context
// path or workspace that happens to end in ".git" is another path.
func TestRequestPath(t *testing.T) {
	tests := []struct {
		flavor bitbucket.Flavor
		in     string
		want   []string
		wantOK bool
	}{
		{bitbucket.Cloud, "ws/repo.git", []string{"ws", "repo"}, true},
		{bitbucket.Cloud, "WS/Repo.git", []string{"WS", "Repo"}, true},
		{bitbucket.Cloud, "ws/repo.git/info/lfs/objects/batch", []string{"ws", "repo", "info", "lfs", "objects", "batch"}, true},
		{bitbucket.Cloud, "ws/repo.git.git", []string{"ws", "repo.git"}, true},
		{bitbucket.Cloud, "ws/repo.GIT", []string{"ws", "repo.GIT"}, true},
		{bitbucket.Cloud, "ws.git/repo.git", []string{"ws.git", "repo"}, true},
		{bitbucket.Cloud, "ws.git", []string{"ws.git"}, true},
		{bitbucket.Cloud, "ws/repo/x.git", []string{"ws", "repo", "x.git"}, true},
		{bitbucket.Cloud, "ws/.git", nil, false},
		{bitbucket.Cloud, "ws/..git", nil, false},
		{bitbucket.Cloud, "ws/...git", nil, false},
		{bitbucket.Cloud, "ws/../x", nil, false},
		{bitbucket.DataCenter, "scm/PROJ/repo.git", []string{"scm", "PROJ", "repo"}, true},
		{bitbucket.DataCenter, "bitbucket/scm/~alice/repo.git/info/lfs", []string{"bitbucket", "scm", "~alice", "repo", "info", "lfs"}, true},
		{bitbucket.DataCenter, "bitbucket.git/other-app/x", []string{"bitbucket.git", "other-app", "x"}, true},
		{bitbucket.DataCenter, "scm/PROJ.git/repo.git", []string{"scm", "PROJ.git", "repo"}, true},
		{bitbucket.DataCenter, "scm/PROJ/.git", nil, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.flavor)+":"+tt.in, func(t *testing.T) {
			got, ok := bitbucket.RequestPath(tt.flavor, tt.in)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseUserURL(t *testing.T) {
	const secret = "s3cr3t-PW"
	tests := []struct {
		name    string
		in      string
		host    string
		path    string
		flavor  bitbucket.Flavor
		level   bitbucket.Level
		wantErr error
	}{
		// Bitbucket Cloud.
		{"cloud clone", "https://bitbucket.org/ws/repo.git", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud clone no .git", "https://bitbucket.org/ws/repo", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud clone trailing slash", "https://bitbucket.org/ws/repo.git/", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud mixed case", "https://BitBucket.org/WS/Repo.git", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud copy button userinfo", "https://alice@bitbucket.org/ws/repo.git", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud userinfo with password", "https://alice:" + secret + "@bitbucket.org/ws/repo.git", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud browser src", "https://bitbucket.org/ws/repo/src/main/", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud browser file", "https://bitbucket.org/ws/repo/src/main/README.md?at=main#lines-3", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud browser pull request", "https://bitbucket.org/ws/repo/pull-requests/12", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud lfs endpoint", "https://bitbucket.org/ws/repo.git/info/lfs", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud workspace", "https://bitbucket.org/ws", "bitbucket.org", "ws", bitbucket.Cloud, bitbucket.LevelGroup, nil},
		{"cloud workspace slash", "https://bitbucket.org/ws/", "bitbucket.org", "ws", bitbucket.Cloud, bitbucket.LevelGroup, nil},
		{"cloud workspace projects page", "https://bitbucket.org/ws/workspace/projects/X", "bitbucket.org", "ws", bitbucket.Cloud, bitbucket.LevelGroup, nil},
		{"cloud workspace overview", "https://bitbucket.org/WS/workspace/overview", "bitbucket.org", "ws", bitbucket.Cloud, bitbucket.LevelGroup, nil},
		{"cloud host", "https://bitbucket.org", "bitbucket.org", "", bitbucket.Cloud, bitbucket.LevelHost, nil},
		{"cloud host slash", "https://bitbucket.org/", "bitbucket.org", "", bitbucket.Cloud, bitbucket.LevelHost, nil},
		{"cloud default port", "https://bitbucket.org:443/ws/repo.git", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud no scheme", "bitbucket.org/ws/repo", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud no scheme host only", "bitbucket.org", "bitbucket.org", "", bitbucket.Cloud, bitbucket.LevelHost, nil},
		{"cloud surrounding space", "  https://bitbucket.org/ws/repo.git\n", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud upper-case scheme", "HTTPS://bitbucket.org/ws/repo.git", "bitbucket.org", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},
		{"cloud recorded by setup", "https://cloud.example.com/WS/Repo", "cloud.example.com", "ws/repo", bitbucket.Cloud, bitbucket.LevelRepository, nil},

		// Bitbucket Data Center.
		{"dc clone", "https://bb.example.com/scm/PROJ/repo.git", "bb.example.com", "scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc clone lower-case key", "https://bb.example.com/scm/proj/Repo.git", "bb.example.com", "scm/PROJ/Repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc personal clone", "https://bb.example.com/scm/~alice/repo.git", "bb.example.com", "scm/~alice/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc clone with user", "https://alice@bb.example.com/scm/PROJ/repo.git", "bb.example.com", "scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc browse", "https://bb.example.com/projects/PROJ/repos/repo/browse", "bb.example.com", "scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc browse file", "https://bb.example.com/projects/proj/repos/repo/browse/src/x.go?at=refs%2Fheads%2Fmain", "bb.example.com", "scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc project page", "https://bb.example.com/projects/PROJ", "bb.example.com", "scm/PROJ", bitbucket.DataCenter, bitbucket.LevelGroup, nil},
		{"dc project repos list", "https://bb.example.com/projects/PROJ/repos", "bb.example.com", "scm/PROJ", bitbucket.DataCenter, bitbucket.LevelGroup, nil},
		{"dc user repo", "https://bb.example.com/users/u/repos/r", "bb.example.com", "scm/~u/r", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc user repo browse", "https://bb.example.com/users/u/repos/r/browse", "bb.example.com", "scm/~u/r", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc user space", "https://bb.example.com/users/u", "bb.example.com", "scm/~u", bitbucket.DataCenter, bitbucket.LevelGroup, nil},
		{"dc scm project", "https://bb.example.com/scm/PROJ", "bb.example.com", "scm/PROJ", bitbucket.DataCenter, bitbucket.LevelGroup, nil},
		{"dc scm project lower", "https://bb.example.com/scm/proj/", "bb.example.com", "scm/PROJ", bitbucket.DataCenter, bitbucket.LevelGroup, nil},
		{"dc scm only", "https://bb.example.com/scm", "bb.example.com", "scm", bitbucket.DataCenter, bitbucket.LevelHost, nil},
		{"dc lfs endpoint", "https://bb.example.com/scm/PROJ/repo.git/info/lfs", "bb.example.com", "scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc context path clone", "https://bb.example.com/bitbucket/scm/PROJ/repo.git", "bb.example.com", "bitbucket/scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc context path browse", "https://bb.example.com/bitbucket/projects/PROJ/repos/repo/browse", "bb.example.com", "bitbucket/scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc context path project", "https://bb.example.com/bitbucket/projects/PROJ", "bb.example.com", "bitbucket/scm/PROJ", bitbucket.DataCenter, bitbucket.LevelGroup, nil},
		{"dc context path only", "https://bb.example.com/bitbucket", "bb.example.com", "bitbucket", bitbucket.DataCenter, bitbucket.LevelHost, nil},
		{"dc host", "https://bb.example.com", "bb.example.com", "", bitbucket.DataCenter, bitbucket.LevelHost, nil},
		{"dc non-default port", "https://bb.example.com:8443/scm/PROJ/repo.git", "bb.example.com:8443", "scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc port no scheme", "bb.example.com:7990/scm/PROJ/repo.git", "bb.example.com:7990", "scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc IPv6 no scheme", "[::1]:8443/scm/PROJ/repo.git", "[::1]:8443", "scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc IPv6 default port", "https://[::1]:443/scm/PROJ/repo.git", "[::1]", "scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},
		{"dc upper-case host", "https://BB.Example.COM:443/scm/PROJ/repo.git", "bb.example.com", "scm/PROJ/repo", bitbucket.DataCenter, bitbucket.LevelRepository, nil},

		// Refused.
		{"empty", "", "", "", "", 0, bitbucket.ErrBadURL},
		{"blank", "  \n", "", "", "", 0, bitbucket.ErrBadURL},
		{"http", "http://bitbucket.org/ws/repo.git", "", "", "", 0, bitbucket.ErrNotHTTPS},
		{"http upper-case", "HTTP://bitbucket.org/ws/repo.git", "", "", "", 0, bitbucket.ErrNotHTTPS},
		{"http with password", "http://alice:" + secret + "@bb.example.com/scm/P/r.git", "", "", "", 0, bitbucket.ErrNotHTTPS},
		{"ssh", "ssh://git@bitbucket.org/ws/repo.git", "", "", "", 0, bitbucket.ErrSSHURL},
		{"ssh upper-case", "SSH://git@bitbucket.org/ws/repo.git", "", "", "", 0, bitbucket.ErrSSHURL},
		{"ssh dc port", "ssh://git@bb.example.com:7999/proj/repo.git", "", "", "", 0, bitbucket.ErrSSHURL},
		{"ssh with password", "ssh://alice:" + secret + "@bb.example.com/proj/repo.git", "", "", "", 0, bitbucket.ErrSSHURL},
		{"scp-like git@", "git@bitbucket.org:ws/repo.git", "", "", "", 0, bitbucket.ErrSSHURL},
		{"scp-like user", "alice@bitbucket.org:ws/repo.git", "", "", "", 0, bitbucket.ErrSSHURL},
		{"scp-like no user", "bitbucket.org:ws/repo.git", "", "", "", 0, bitbucket.ErrSSHURL},
		{"scp-like no path", "alice@bitbucket.org:repo.git", "", "", "", 0, bitbucket.ErrSSHURL},
		{"scp-like absolute path", "bitbucket.org:/srv/repo.git", "", "", "", 0, bitbucket.ErrSSHURL},
		{"scp-like numeric repo", "git@bb.example.com:7999", "", "", "", 0, bitbucket.ErrSSHURL},
		{"ftp", "ftp://bitbucket.org/ws/repo.git", "", "", "", 0, bitbucket.ErrBadURL},
		{"file", "file:///srv/repo.git", "", "", "", 0, bitbucket.ErrBadURL},
		{"dot-dot", "https://bitbucket.org/ws/../other/repo.git", "", "", "", 0, bitbucket.ErrBadURL},
		{"escaped dot-dot", "https://bitbucket.org/ws/%2e%2e/other/repo.git", "", "", "", 0, bitbucket.ErrBadURL},
		{"empty segment", "https://bitbucket.org/ws//repo.git", "", "", "", 0, bitbucket.ErrBadURL},
		{"bad escape", "https://alice:" + secret + "@bitbucket.org/ws/%zz", "", "", "", 0, bitbucket.ErrBadURL},
		{"bad port with password", "https://alice:" + secret + "@bitbucket.org:port/ws", "", "", "", 0, bitbucket.ErrBadURL},
		{"unescaped slash in password", "https://alice:" + secret + "/x@bb.example.com/scm/P/r.git", "", "", "", 0, bitbucket.ErrBadURL},
		{"no host", "https:///ws/repo.git", "", "", "", 0, bitbucket.ErrBadHost},
		{"only userinfo", "https://alice:" + secret + "@/ws/repo.git", "", "", "", 0, bitbucket.ErrBadHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, f, err := bitbucket.ParseUserURL(tt.in, flavors)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), secret, "the password leaked into the error")
				assert.Equal(t, bitbucket.Scope{}, sc)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, bitbucket.Scope{Host: tt.host, Path: tt.path}, sc)
			assert.Equal(t, tt.flavor, f)
			assert.Equal(t, tt.level, sc.Level(f))
			// What add writes to the index reads back as the same scope.
			back, err := bitbucket.ParseScope(sc.String())
			require.NoError(t, err)
			assert.Equal(t, sc, back)
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://bitbucket.org/ws/repo.git", "https://bitbucket.org/ws/repo.git"},
		{"https://alice@bitbucket.org/ws/repo.git", "https://alice@bitbucket.org/ws/repo.git"},
		{"https://alice:pw@bitbucket.org/ws/repo.git", "https://alice:****@bitbucket.org/ws/repo.git"},
		{"https://alice:p@w@bitbucket.org/ws", "https://alice:****@bitbucket.org/ws"},
		{"https://alice:p/w@bb.example.com/scm/P/r", "https://alice:****@bb.example.com/scm/P/r"},
		{"https://alice:p?w@bb.example.com/scm/P/r", "https://alice:****@bb.example.com/scm/P/r"},
		{"https://bb.example.com:8443/scm/P/r.git", "https://bb.example.com:8443/scm/P/r.git"},
		{"https://bitbucket.org/ws/repo/src/main/?at=a@b", "https://bitbucket.org/ws/repo/src/main/?at=a@b"},
		{"git@bitbucket.org:ws/repo.git", "git@bitbucket.org:ws/repo.git"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, bitbucket.RedactURL(tt.in))
		})
	}
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want bitbucket.Scope
		err  error
	}{
		{"https://bitbucket.org", bitbucket.Scope{Host: "bitbucket.org"}, nil},
		{"https://bitbucket.org/", bitbucket.Scope{Host: "bitbucket.org"}, nil},
		{"https://bitbucket.org/ws/repo", bitbucket.Scope{Host: "bitbucket.org", Path: "ws/repo"}, nil},
		{"https://BITBUCKET.org:443/ws", bitbucket.Scope{Host: "bitbucket.org", Path: "ws"}, nil},
		{"https://bb.example.com:8443/ctx/scm/P/r", bitbucket.Scope{Host: "bb.example.com:8443", Path: "ctx/scm/P/r"}, nil},
		{"http://bitbucket.org/ws", bitbucket.Scope{}, bitbucket.ErrBadURL},
		{"bitbucket.org/ws", bitbucket.Scope{}, bitbucket.ErrBadURL},
		{"https://bitbucket.org/ws/../x", bitbucket.Scope{}, bitbucket.ErrBadURL},
		{"https://bitbucket.org/ws//x", bitbucket.Scope{}, bitbucket.ErrBadURL},
		{"https://a@bitbucket.org/ws", bitbucket.Scope{}, bitbucket.ErrBadHost},
		{"https:///ws", bitbucket.Scope{}, bitbucket.ErrBadHost},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := bitbucket.ParseScope(tt.in)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestScopeStringAndSegments(t *testing.T) {
	assert.Equal(t, "https://bitbucket.org", bitbucket.Scope{Host: "bitbucket.org"}.String())
	assert.Equal(t, "https://bitbucket.org/ws/repo", bitbucket.Scope{Host: "bitbucket.org", Path: "ws/repo"}.String())
	assert.Nil(t, bitbucket.Scope{Host: "bitbucket.org"}.Segments())
	assert.Equal(t, []string{"ws", "repo"}, bitbucket.Scope{Host: "bitbucket.org", Path: "ws/repo"}.Segments())
}

func TestCovers(t *testing.T) {
	tests := []struct {
		name   string
		scope  string // a scope URL as stored in the index
		flavor bitbucket.Flavor
		host   string // as git sends it
		path   string // as git sends it
		want   bool
	}{
		// Cloud: '/' boundaries, case, .git, deeper paths.
		{"repo exact", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws/repo.git", true},
		{"repo no .git", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws/repo", true},
		// ".git" is dropped from the repository segment only.
		{"workspace .git is another path", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws.git/repo.git", false},
		{"context path .git is another path", "https://bb.example.com/bitbucket", bitbucket.DataCenter, "bb.example.com", "bitbucket.git/other-app/x", false},
		{"project key .git is another path", "https://bb.example.com/scm/PROJ", bitbucket.DataCenter, "bb.example.com", "scm/PROJ.git/repo.git", false},
		{"repo trailing slash", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws/repo.git/", true},
		{"repo case", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "WS/Repo.git", true},
		{"repo lfs", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws/repo.git/info/lfs", true},
		{"repo lfs batch", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws/repo.git/info/lfs/objects/batch", true},
		{"repo prefix is not a boundary", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws/repo2.git", false},
		{"repo prefix is not a boundary no .git", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws/repo2", false},
		{"repo with suffix", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws/repo-fork.git", false},
		{"repo .git is part of another name", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws/repo.gitx", false},
		{"repo other workspace", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws2/repo.git", false},
		{"repo parent", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "ws", false},
		{"repo no path", "https://bitbucket.org/ws/repo", bitbucket.Cloud, "bitbucket.org", "", false},
		{"repo non-ASCII fold", "https://bitbucket.org/ws/kube", bitbucket.Cloud, "bitbucket.org", "ws/\u212aube.git", false},
		{"workspace", "https://bitbucket.org/ws", bitbucket.Cloud, "bitbucket.org", "ws/anything.git", true},
		{"workspace case", "https://bitbucket.org/ws", bitbucket.Cloud, "bitbucket.org", "Ws/Anything.git", true},
		{"workspace prefix is not a boundary", "https://bitbucket.org/ws", bitbucket.Cloud, "bitbucket.org", "ws2/anything.git", false},
		{"workspace itself", "https://bitbucket.org/ws", bitbucket.Cloud, "bitbucket.org", "ws", true},
		{"host-wide", "https://bitbucket.org", bitbucket.Cloud, "bitbucket.org", "any/thing.git", true},
		{"host-wide no path", "https://bitbucket.org", bitbucket.Cloud, "bitbucket.org", "", true},
		// Hosts.
		{"host case and default port", "https://bitbucket.org/ws", bitbucket.Cloud, "BitBucket.ORG:443", "ws/r.git", true},
		{"other port", "https://bitbucket.org/ws", bitbucket.Cloud, "bitbucket.org:8443", "ws/r.git", false},
		{"trailing dot", "https://bitbucket.org", bitbucket.Cloud, "bitbucket.org.", "ws/r.git", false},
		{"subdomain", "https://bitbucket.org", bitbucket.Cloud, "api.bitbucket.org", "ws/r.git", false},
		{"suffix look-alike", "https://bitbucket.org", bitbucket.Cloud, "bitbucket.org.evil.example", "ws/r.git", false},
		{"prefix look-alike", "https://bitbucket.org", bitbucket.Cloud, "evilbitbucket.org", "ws/r.git", false},
		{"unicode look-alike", "https://bitbucket.org", bitbucket.Cloud, "bitbuc\u212aet.org", "ws/r.git", false},
		{"port on scope only", "https://bb.example.com:8443", bitbucket.DataCenter, "bb.example.com", "scm/P/r.git", false},
		{"same non-default port", "https://bb.example.com:8443", bitbucket.DataCenter, "BB.example.com:8443", "scm/P/r.git", true},

		// Data Center: project keys fold, the rest is exact.
		{"dc repo", "https://bb.example.com/scm/PROJ/repo", bitbucket.DataCenter, "bb.example.com", "scm/PROJ/repo.git", true},
		{"dc repo key case", "https://bb.example.com/scm/PROJ/repo", bitbucket.DataCenter, "bb.example.com", "scm/proj/repo.git", true},
		{"dc repo slug case", "https://bb.example.com/scm/PROJ/repo", bitbucket.DataCenter, "bb.example.com", "scm/PROJ/Repo.git", false},
		{"dc scm case", "https://bb.example.com/scm/PROJ/repo", bitbucket.DataCenter, "bb.example.com", "SCM/PROJ/repo.git", false},
		{"dc repo lfs", "https://bb.example.com/scm/PROJ/repo", bitbucket.DataCenter, "bb.example.com", "scm/PROJ/repo.git/info/lfs", true},
		{"dc repo boundary", "https://bb.example.com/scm/PROJ/repo", bitbucket.DataCenter, "bb.example.com", "scm/PROJ/repo2.git", false},
		{"dc project", "https://bb.example.com/scm/PROJ", bitbucket.DataCenter, "bb.example.com", "scm/proj/any.git", true},
		{"dc project boundary", "https://bb.example.com/scm/PROJ", bitbucket.DataCenter, "bb.example.com", "scm/PROJ2/any.git", false},
		{"dc personal space", "https://bb.example.com/scm/~alice", bitbucket.DataCenter, "bb.example.com", "scm/~alice/r.git", true},
		{"dc personal space is case-sensitive", "https://bb.example.com/scm/~alice", bitbucket.DataCenter, "bb.example.com", "scm/~ALICE/r.git", false},
		{"dc personal space vs project", "https://bb.example.com/scm/~alice", bitbucket.DataCenter, "bb.example.com", "scm/alice/r.git", false},
		{"dc context path", "https://bb.example.com/bitbucket/scm/PROJ", bitbucket.DataCenter, "bb.example.com", "bitbucket/scm/proj/r.git", true},
		{"dc context path missing", "https://bb.example.com/bitbucket/scm/PROJ", bitbucket.DataCenter, "bb.example.com", "scm/PROJ/r.git", false},
		{"dc context path is case-sensitive", "https://bb.example.com/bitbucket", bitbucket.DataCenter, "bb.example.com", "Bitbucket/scm/P/r.git", false},
		{"dc context path host level", "https://bb.example.com/bitbucket", bitbucket.DataCenter, "bb.example.com", "bitbucket/scm/P/r.git", true},
		{"dc key fold is ASCII only", "https://bb.example.com/scm/SK", bitbucket.DataCenter, "bb.example.com", "scm/\u017fk/r.git", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := bitbucket.ParseScope(tt.scope)
			require.NoError(t, err)
			host, err := bitbucket.NormalizeHost(tt.host)
			if err != nil {
				require.False(t, tt.want, "host %q refused: %v", tt.host, err)
				return
			}
			segs, ok := bitbucket.RequestPath(tt.flavor, tt.path)
			require.True(t, ok)
			assert.Equal(t, tt.want, sc.Covers(tt.flavor, host, segs))
		})
	}
}

func TestSamePath(t *testing.T) {
	assert.True(t, bitbucket.SamePath(bitbucket.Cloud, []string{"ws", "repo"}, []string{"WS", "Repo"}))
	assert.False(t, bitbucket.SamePath(bitbucket.Cloud, []string{"ws", "repo"}, []string{"ws"}))
	assert.False(t, bitbucket.SamePath(bitbucket.Cloud, []string{"ws"}, []string{"ws", "repo"}))
	assert.True(t, bitbucket.SamePath(bitbucket.Cloud, nil, nil))
	assert.True(t, bitbucket.SamePath(bitbucket.DataCenter, []string{"scm", "proj", "r"}, []string{"scm", "PROJ", "r"}))
	assert.False(t, bitbucket.SamePath(bitbucket.DataCenter, []string{"scm", "PROJ", "r"}, []string{"scm", "PROJ", "R"}))
}

func TestRepositoryPath(t *testing.T) {
	tests := []struct {
		flavor bitbucket.Flavor
		path   string
		want   []string
	}{
		{bitbucket.Cloud, "", nil},
		{bitbucket.Cloud, "ws", []string{"ws"}},
		{bitbucket.Cloud, "ws/repo.git", []string{"ws", "repo"}},
		{bitbucket.Cloud, "ws/repo.git/info/lfs", []string{"ws", "repo"}},
		{bitbucket.Cloud, "ws/repo.git/info/lfs/objects/batch", []string{"ws", "repo"}},
		{bitbucket.DataCenter, "", nil},
		{bitbucket.DataCenter, "scm/PROJ", []string{"scm", "PROJ"}},
		{bitbucket.DataCenter, "scm/PROJ/repo.git", []string{"scm", "PROJ", "repo"}},
		{bitbucket.DataCenter, "scm/PROJ/repo.git/info/lfs", []string{"scm", "PROJ", "repo"}},
		{bitbucket.DataCenter, "scm/~u/repo.git/info/lfs/objects/batch", []string{"scm", "~u", "repo"}},
		{bitbucket.DataCenter, "ctx/scm/PROJ/repo.git/info/lfs", []string{"ctx", "scm", "PROJ", "repo"}},
		{bitbucket.DataCenter, "foo.git", []string{"foo.git"}}, // no /scm/: no repository segment to trim
		{bitbucket.DataCenter, "a/b/c/d", []string{"a", "b", "c", "d"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.flavor)+"/"+tt.path, func(t *testing.T) {
			segs, ok := bitbucket.RequestPath(tt.flavor, tt.path)
			require.True(t, ok)
			assert.Equal(t, tt.want, bitbucket.RepositoryPath(tt.flavor, segs))
		})
	}
}

func TestCanonicalPath(t *testing.T) {
	assert.Equal(t, "ws/repo", bitbucket.CanonicalPath(bitbucket.Cloud, []string{"WS", "Repo"}))
	assert.Equal(t, "scm/PROJ/Repo", bitbucket.CanonicalPath(bitbucket.DataCenter, []string{"scm", "proj", "Repo"}))
	assert.Equal(t, "Ctx/scm/~Alice/r", bitbucket.CanonicalPath(bitbucket.DataCenter, []string{"Ctx", "scm", "~Alice", "r"}))
	assert.Equal(t, "", bitbucket.CanonicalPath(bitbucket.Cloud, nil))
	// ASCII only: a non-ASCII letter never folds into an ASCII one.
	assert.Equal(t, "ws/\u212aube", bitbucket.CanonicalPath(bitbucket.Cloud, []string{"WS", "\u212aube"}))
	assert.Equal(t, "scm/\u017fK/r", bitbucket.CanonicalPath(bitbucket.DataCenter, []string{"scm", "\u017fk", "r"}))
}

func TestLevel(t *testing.T) {
	tests := []struct {
		flavor bitbucket.Flavor
		path   string
		want   bitbucket.Level
	}{
		{bitbucket.Cloud, "", bitbucket.LevelHost},
		{bitbucket.Cloud, "ws", bitbucket.LevelGroup},
		{bitbucket.Cloud, "ws/repo", bitbucket.LevelRepository},
		{bitbucket.DataCenter, "", bitbucket.LevelHost},
		{bitbucket.DataCenter, "bitbucket", bitbucket.LevelHost},
		{bitbucket.DataCenter, "scm", bitbucket.LevelHost},
		{bitbucket.DataCenter, "bitbucket/scm", bitbucket.LevelHost},
		{bitbucket.DataCenter, "scm/PROJ", bitbucket.LevelGroup},
		{bitbucket.DataCenter, "scm/~alice", bitbucket.LevelGroup},
		{bitbucket.DataCenter, "bitbucket/scm/PROJ", bitbucket.LevelGroup},
		{bitbucket.DataCenter, "scm/PROJ/repo", bitbucket.LevelRepository},
		{bitbucket.DataCenter, "bitbucket/scm/PROJ/repo", bitbucket.LevelRepository},
	}
	for _, tt := range tests {
		t.Run(string(tt.flavor)+"/"+tt.path, func(t *testing.T) {
			sc := bitbucket.Scope{Host: "h", Path: tt.path}
			assert.Equal(t, tt.want, sc.Level(tt.flavor))
		})
	}
	assert.Equal(t, "host", bitbucket.LevelHost.String())
	assert.Equal(t, "group", bitbucket.LevelGroup.String())
	assert.Equal(t, "repository", bitbucket.LevelRepository.String())
}

// FuzzCovers checks the one property the helper's safety rests on, against
// an oracle written without the package's helpers: a scope covers a request
// only on the scope's own host, and only when the request's cleaned path
// starts with the scope's segments (ASCII case folded for Cloud; for Data
// Center only the project key after "scm" folds). Paths CleanPath refuses
// are never compared with path scopes; those it accepts have no segment a
// server reads as a dot segment or as empty (what comes before a ';' is
// what Tomcat resolves: "..;x" is "..") and no '%' or '\'.
func FuzzCovers(f *testing.F) {
	seeds := []struct {
		scopeURL, host, path string
		cloud                bool
	}{
		{"https://bitbucket.org/ws/repo.git", "bitbucket.org", "ws/repo.git", true},
		{"https://bitbucket.org/ws/repo", "bitbucket.org", "ws/repo2.git", true},
		{"https://bitbucket.org/ws/repo", "BITBUCKET.ORG:443", "WS/REPO.git/info/lfs", true},
		{"https://bitbucket.org/ws", "bitbucket.org.", "ws/x.git", true},
		{"https://bitbucket.org/ws", "bitbucket.org", "ws/../other/x.git", true},
		{"https://bitbucket.org/ws", "bitbucket.org", "ws/...git/x", true},
		{"https://bitbucket.org/ws/kube", "bitbucket.org", "ws/\u212aube.git", true},
		{"https://bitbucket.org", "bitbuc\u212aet.org", "ws/x.git", true},
		{"https://alice@bitbucket.org/ws/repo/src/main/", "bitbucket.org", "ws/repo.git", true},
		{"https://bb.example.com/scm/PROJ/repo.git", "bb.example.com", "scm/proj/repo.git", false},
		{"https://bb.example.com/projects/PROJ/repos/repo/browse", "bb.example.com", "scm/PROJ/Repo.git", false},
		{"https://bb.example.com/users/u/repos/r", "bb.example.com", "scm/~u/r.git/info/lfs", false},
		{"https://bb.example.com:8443/ctx/scm/P", "bb.example.com:8443", "ctx/scm/p/r.git", false},
		{"https://bb.example.com/scm/SK", "bb.example.com", "scm/\u017fk/r.git", false},
		{"https://bb.example.com/scm/P", "bb.example.com", "scm/P%2f..%2fQ/r.git", false},
		{"https://bitbucket.org/ws/repo", "bitbucket.org", "ws/repo.git/..;/..;/ws2/x.git", true},
		{"https://bitbucket.org/ws/repo", "bitbucket.org", "ws/repo/.;/x.git", true},
		{"https://bitbucket.org/ws/repo", "bitbucket.org", "ws/repo/..;x=1/y", true},
		{"https://bitbucket.org/ws", "bitbucket.org", "ws/;x/y.git", true},
		{"https://bb.example.com/scm/PROJ", "bb.example.com", "scm/PROJ/..;/OTHER/repo.git", false},
		{"https://bb.example.com/scm/PROJ", "bb.example.com", "scm/PROJ/..;param/OTHER/repo.git", false},
		{"https://bb.example.com/scm/PROJ/repo", "bb.example.com", "scm/PROJ/repo.git;x", false},
	}
	for _, s := range seeds {
		f.Add(s.scopeURL, s.host, s.path, s.cloud)
	}
	f.Fuzz(func(t *testing.T, scopeURL, reqHost, reqPath string, cloud bool) {
		flavor := bitbucket.DataCenter
		if cloud {
			flavor = bitbucket.Cloud
		}
		sc, _, err := bitbucket.ParseUserURL(scopeURL, func(string) bitbucket.Flavor { return flavor })
		if err != nil {
			return
		}
		// What add stores must read back as the same scope.
		back, err := bitbucket.ParseScope(sc.String())
		if err != nil {
			t.Fatalf("ParseUserURL(%q) gave %q, which ParseScope refuses: %v", scopeURL, sc.String(), err)
		}
		if back != sc {
			t.Fatalf("scope %q reads back as %q", sc.String(), back.String())
		}
		host, err := bitbucket.NormalizeHost(reqHost)
		if err != nil {
			return
		}
		segs, ok := bitbucket.RequestPath(flavor, reqPath)
		if !ok {
			return
		}
		for _, s := range segs {
			name, _, _ := strings.Cut(s, ";")
			if name == "" || name == "." || name == ".." || strings.ContainsAny(s, "%\\") {
				t.Fatalf("RequestPath(%q) accepted segment %q", reqPath, s)
			}
		}
		if !sc.Covers(flavor, host, segs) {
			return
		}
		if oracleHost(reqHost) != oracleHost(sc.Host) {
			t.Fatalf("scope %s covers a request for host %q", sc, reqHost)
		}
		want := oracleFold(flavor, strings.Split(sc.Path, "/"))
		if sc.Path == "" {
			want = nil
		}
		got := oracleFold(flavor, segs)
		if len(got) < len(want) {
			t.Fatalf("scope %s covers the shorter path %q", sc, reqPath)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("scope %s covers %q: segment %d is %q, not %q", sc, reqPath, i, segs[i], want[i])
			}
		}
	})
}

// oracleHost is a host compared as the issue states: ASCII lower case,
// https' default port dropped.
func oracleHost(h string) string {
	return strings.TrimSuffix(asciiMap(h, 'A', 'Z', 'a'-'A'), ":443")
}

// oracleFold folds the segments the flavour compares without case.
func oracleFold(f bitbucket.Flavor, segs []string) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		switch {
		case f == bitbucket.Cloud:
			s = asciiMap(s, 'A', 'Z', 'a'-'A')
		case i > 0 && segs[i-1] == "scm" && !strings.HasPrefix(s, "~"):
			s = asciiMap(s, 'a', 'z', 'A'-'a')
		}
		out[i] = s
	}
	return out
}

func asciiMap(s string, lo, hi byte, delta int) string {
	b := []byte(s)
	for i, c := range b {
		if lo <= c && c <= hi {
			b[i] = byte(int(c) + delta)
		}
	}
	return string(b)
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{bitbucket.ErrNotHTTPS, bitbucket.ErrSSHURL, bitbucket.ErrBadURL, bitbucket.ErrBadHost}
	for i, a := range all {
		for j, b := range all {
			assert.Equal(t, i == j, errors.Is(a, b))
		}
	}
}

func TestEqualFoldASCII(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https", "HTTPS", true},
		{"https", "httpſ", false}, // U+017F folds to 's' under Unicode rules
		{"kate", "\u212Aate", false},
		{"Kate", "kATE", true},
		{"a", "ab", false},
		{"", "", true},
		{"é", "É", false},
	}
	for _, tt := range tests {
		if got := bitbucket.EqualFoldASCII(tt.a, tt.b); got != tt.want {
			t.Errorf("EqualFoldASCII(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestNormalizeHostPorts(t *testing.T) {
	for in, want := range map[string]string{
		"[::1]:8443":         "[::1]:8443",
		"[fe80::1]":          "[fe80::1]",
		"bb.example.com:443": "bb.example.com",
	} {
		got, err := bitbucket.NormalizeHost(in)
		if err != nil || got != want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"bb.example.com:8443:443", "bitbucket.org:443:443", "[::1]:1:2"} {
		if got, err := bitbucket.NormalizeHost(in); !errors.Is(err, bitbucket.ErrBadHost) {
			t.Errorf("NormalizeHost(%q) = %q, %v; want ErrBadHost", in, got, err)
		}
	}
}
