package helper_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestGitHelperSuite ports the cases of git's t/lib-credential.sh
// (helper_test, helper_test_password_expiry_utc, helper_test_oauth_refresh_token
// and the long-header case) that apply to an https-only helper. Each step
// depends on the ones before it, as in git's suite. Deviations: the "requires
// matching path" case uses https (plain http is never stored). "can store
// empty username" stores an empty password too, as git's does: behind single
// sign-on git approves username= and password= and expects them back.
func TestGitHelperSuite(t *testing.T) {
	f := newFixture(t)
	const ex = "protocol=https\nhost=example.com"
	steps := []struct {
		name  string
		op    string // get, store or erase
		in    string
		want  string // get's answer
		empty bool   // get must answer nothing
	}{
		{"has no existing data", "get", q(ex), "", true},
		{"stores password", "store", q(ex, "username=store-user", "password=store-pass"), "", false},
		{"can retrieve password", "get", q(ex), q("username=store-user", "password=store-pass"), false},
		{"requires matching protocol", "get", q("protocol=http", "host=example.com"), "", true},
		{"requires matching host", "get", q("protocol=https", "host=other.tld"), "", true},
		{"requires matching username", "get", q(ex, "username=other"), "", true},
		{"requires matching path: store", "store", q("protocol=https", "host=path.tld", "path=foo.git", "username=user", "password=pass"), "", false},
		{"requires matching path", "get", q("protocol=https", "host=path.tld", "path=bar.git"), "", true},
		{"requires matching path: same path", "get", q("protocol=https", "host=path.tld", "path=foo.git"), q("username=user", "password=pass"), false},
		{"requires matching path: no path", "get", q("protocol=https", "host=path.tld"), "", true},
		{"can forget host", "erase", q(ex), "", false},
		{"can forget host: gone", "get", q(ex), "", true},
		{"can store multiple users: user1", "store", q(ex, "username=user1", "password=pass1"), "", false},
		{"can store multiple users: user2", "store", q(ex, "username=user2", "password=pass2"), "", false},
		{"can store multiple users: get user1", "get", q(ex, "username=user1"), q("username=user1", "password=pass1"), false},
		{"can store multiple users: get user2", "get", q(ex, "username=user2"), q("username=user2", "password=pass2"), false},
		{"can forget user", "erase", q(ex, "username=user1"), "", false},
		{"can forget user: gone", "get", q(ex, "username=user1"), "", true},
		{"remembers other user", "get", q(ex, "username=user2"), q("username=user2", "password=pass2"), false},
		{"overwrites on store: first", "store", q(ex, "username=overwrite-user", "password=overwrite-pass1"), "", false},
		{"overwrites on store: second", "store", q(ex, "username=overwrite-user", "password=overwrite-pass2"), "", false},
		{"overwrites on store", "get", q(ex, "username=overwrite-user"), q("username=overwrite-user", "password=overwrite-pass2"), false},
		{"overwrites on store: erase", "erase", q(ex, "username=overwrite-user"), "", false},
		{"overwrites on store: gone", "get", q(ex, "username=overwrite-user"), "", true},
		{"does not erase a password distinct from input: store", "store", q(ex, "username=erase-user", "password=cannot-erase"), "", false},
		{"does not erase a password distinct from input: erase", "erase", q(ex, "username=erase-user", "password=distinct-pass"), "", false},
		{"does not erase a password distinct from input", "get", q(ex, "username=erase-user"), q("username=erase-user", "password=cannot-erase"), false},
		{"erases a password equal to the input", "erase", q(ex, "username=erase-user", "password=cannot-erase"), "", false},
		{"erases a password equal to the input: gone", "get", q(ex, "username=erase-user"), "", true},
		{"erases all matching credentials: user1", "store", q(ex, "username=user1", "password=pass1"), "", false},
		{"erases all matching credentials: user2", "store", q(ex, "username=user2", "password=pass2"), "", false},
		{"erases all matching credentials", "erase", q(ex), "", false},
		{"erases all matching credentials: user1 gone", "get", q(ex, "username=user1"), "", true},
		{"erases all matching credentials: user2 gone", "get", q(ex, "username=user2"), "", true},
		{"can store empty username", "store", q("protocol=https", "host=sso.tld", "username=", "password="), "", false},
		{"can retrieve empty username", "get", q("protocol=https", "host=sso.tld"), q("username=", "password="), false},
		{"can store an empty password for a user", "store", q("protocol=https", "host=sso2.tld", "username=u", "password="), "", false},
		{"can retrieve an empty password for a user", "get", q("protocol=https", "host=sso2.tld"), q("username=u", "password="), false},
		{"password_expiry_utc: store", "store", q("protocol=https", "host=example.com", "username=user-expiry", "password=pass-expiry", "password_expiry_utc=9999999999"), "", false},
		{"password_expiry_utc", "get", q(ex, "username=user-expiry"), q("username=user-expiry", "password=pass-expiry", "password_expiry_utc=9999999999"), false},
		{"password_expiry_utc: expired is not stored", "store", q("protocol=https", "host=expired.tld", "username=user-expiry", "password=pass-expiry", "password_expiry_utc=1"), "", false},
		{"password_expiry_utc: expired", "get", q("protocol=https", "host=expired.tld"), "", true},
		{"oauth_refresh_token: store", "store", q(ex, "username=user4", "password=pass4", "oauth_refresh_token=xyzzy"), "", false},
		{"oauth_refresh_token", "get", q(ex, "username=user4"), q("username=user4", "password=pass4", "oauth_refresh_token=xyzzy"), false},
		{"not confused by long header: store", "store", q("protocol=https", "host=victim.example.com", "username=user", "password=to-be-stolen"), "", false},
		{"not confused by long header", "get", q("protocol=https", "host=badguy.example.com",
			"wwwauth[]=basic realm="+strings.Repeat("a", 1024-23)+"host=victim.example.com"), "", true},
		{"not confused by a very long header", "get", q("protocol=https", "host=badguy.example.com",
			"wwwauth[]=basic realm="+strings.Repeat("a", 65000)+"host=victim.example.com"), "", true},
		{"victim still served", "get", q("protocol=https", "host=victim.example.com"), q("username=user", "password=to-be-stolen"), false},
	}
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			f.t = t
			switch s.op {
			case "get":
				want := s.want
				if s.empty {
					want = ""
				}
				assert.Equal(t, want, f.get(s.in))
			case "store":
				f.store(s.in)
			case "erase":
				f.erase(s.in)
			default:
				t.Fatalf("bad op %q", s.op)
			}
		})
		if !ok {
			return
		}
	}
}
