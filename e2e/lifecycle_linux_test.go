//go:build linux

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRotateProcHygiene: while rotate waits out its grace period, with
// the old and the new token both live, neither token nor the password is
// in the command line or environment of the helper or anything it
// started, or in a file it holds open.
func TestRotateProcHygiene(t *testing.T) {
	f := dcFixture(t)
	wantCode(t, f.withPassword(t, nil, "create", f.srv.URL, "--kind", "personal", "--username", "alice"), 0)
	id := f.list(t)[0].ID
	old := f.srv.LiveServerTokens("users/alice")[0]
	p := startPiped(t, append(f.env, "GIT_CREDENTIAL_BBTOKEN_ROTATE_GRACE=5s"), f.home, "rotate", id)
	p.write(t, alicePassword+"\n")
	deadline := time.Now().Add(cmdTimeout)
	for len(f.srv.LiveServerTokens("users/alice")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("rotate never made its new token")
		}
		p.alive(t)
		time.Sleep(5 * time.Millisecond)
	}
	var secrets []string
	for _, st := range f.srv.LiveServerTokens("users/alice") {
		secrets = append(secrets, st.Secret)
	}
	wantCleanProc(t, p, "rotate, in its grace period", append(secrets, alicePassword))
	r := p.finish(t)
	f.mu.Lock()
	f.outputs = append(f.outputs, r)
	f.mu.Unlock()
	wantCode(t, r, 0)
	if live := f.srv.LiveServerTokens("users/alice"); len(live) != 1 || live[0].ID == old.ID || strings.TrimSpace(r.stdout) == "" {
		t.Errorf("after rotate: %d live tokens (old %s), stdout %q", len(live), old.ID, r.stdout)
	}
}
