//go:build linux || freebsd || openbsd || netbsd || dragonfly

package secretservice

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// provider names the program that serves the Secret Service
// ("gnome-keyring-daemon", "keepassxc", "kwalletd5"), "" when it cannot
// tell (no /proc, or the bus does not say). Only error paths ask, on a
// connection of their own: a fix can then name what to do in that
// program.
func provider() string {
	c, err := dial(time.Now().Add(time.Second))
	if err != nil {
		return ""
	}
	defer c.close()
	s := c.call(busName, busPath, busName, "GetConnectionUnixProcessID", 0, ssName)
	if err := c.start(); err != nil {
		return ""
	}
	rs, err := c.wait(s)
	if err != nil {
		return ""
	}
	body, err := rs.body(s)
	if err != nil || len(body) != 1 {
		return ""
	}
	pid, ok := body[0].(uint32)
	if !ok {
		return ""
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(filepath.Base(exe), " (deleted)")
}

// lockedFix is the fix for a keyring that is locked or waits on a prompt
// (unlock, or a provider's confirmation), in the words of the provider.
func lockedFix(program string) string {
	const raise = "or raise GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT"
	switch {
	case program == "keepassxc":
		return "fix: unlock the database in KeePassXC and answer its dialog (to stop it asking each time, untick \"Confirm when passwords are retrieved by clients\" and \"Confirm when clients request entry deletion\" in its Secret Service Integration settings), " + raise
	case strings.HasPrefix(program, "kwalletd"):
		return "fix: open the wallet in KWallet (e.g. kwalletmanager5) and answer its dialog, " + raise
	}
	return "fix: unlock the keyring (it may be waiting for an unlock prompt), e.g. open Passwords and Keys or run `gnome-keyring-daemon --unlock`, " + raise
}
