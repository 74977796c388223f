// Package doctortest gives tests a stand-in for this helper under doctor's
// probe.
package doctortest

import (
	"os"
	"path/filepath"
	"testing"
)

// StandIn writes, in a new directory (under dir, a path relative to it,
// when dir is not empty), a program named as this helper that acts as its
// get does under doctor's probe: it records itself in the file probeEnv
// names (doctor.Record's format) and answers nothing. It returns the
// program's path. (probeEnv is probeEnv, passed in so that doctor's
// own tests can use this package.)
func StandIn(t testing.TB, dir, probeEnv string) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), dir, "git-credential-bbtoken")
	if err := os.MkdirAll(filepath.Dir(exe), 0o700); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
[ "$1" = get ] || exit 0
path=false
while IFS= read -r line && [ -n "$line" ]; do
	case "$line" in path=*) path=true ;; esac
done
[ -f "$` + probeEnv + `" ] && printf '{"PID":%d,"PPID":%d,"Path":%s}\n' $$ $PPID $path >>"$` + probeEnv + `"
exit 0
`
	if err := os.WriteFile(exe, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return exe
}
