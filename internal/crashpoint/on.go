//go:build crashpoint

package crashpoint

import (
	"os"
	"time"
)

var at = os.Getenv(EnvVar)

// Reached waits forever when step is the one EnvVar names, after telling
// the test so on file descriptor 3.
func Reached(step string) {
	if at == "" || at != step {
		return
	}
	if f := os.NewFile(3, "crashpoint"); f != nil {
		_, _ = f.WriteString(step + "\n")
	}
	for {
		time.Sleep(time.Hour)
	}
}
