// Package trace writes the helper's decisions for GIT_CREDENTIAL_BBTOKEN_TRACE.
// It redacts by construction: credential.Secret values print as a mask, and
// every secret the process has seen is registered with the Logger and
// scrubbed from each line before it is written, so even a secret passed by
// mistake as a plain string never reaches the output.
package trace

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
)

// EnvVar turns tracing on: "1"/"true" for stderr, an absolute path for a file.
const EnvVar = "GIT_CREDENTIAL_BBTOKEN_TRACE"

// Logger writes trace lines. A nil *Logger is valid and silent.
type Logger struct {
	mu      sync.Mutex
	w       io.Writer
	secrets []string
	closer  io.Closer
}

// Open builds a Logger from the environment variable's value. Files are
// opened for append, created 0600 (traces are private even when redacted).
func Open(value string, stderr io.Writer) (*Logger, error) {
	switch strings.ToLower(value) {
	case "", "0", "false", "no", "off":
		return nil, nil
	case "1", "true", "yes", "on", "2":
		return &Logger{w: stderr}, nil
	}
	if !filepath.IsAbs(value) {
		return nil, fmt.Errorf("%s=%q: use 1 for stderr or an absolute file path", EnvVar, value)
	}
	f, err := os.OpenFile(value, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvVar, err)
	}
	// Traces are private even though redacted: refuse to append to a file
	// others can read (one created earlier with a looser umask, say).
	if st, err := f.Stat(); err == nil && runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		f.Close()
		return nil, fmt.Errorf("%s: %s has mode %04o; fix: chmod 600 %s", EnvVar, value, st.Mode().Perm(), value)
	}
	return &Logger{w: f, closer: f}, nil
}

// New returns a Logger writing to w (for tests).
func New(w io.Writer) *Logger { return &Logger{w: w} }

// Close closes a trace file.
func (l *Logger) Close() error {
	if l == nil || l.closer == nil {
		return nil
	}
	return l.closer.Close()
}

// Enabled reports whether lines are written.
func (l *Logger) Enabled() bool { return l != nil }

// Redact registers secret values to scrub from every later line.
func (l *Logger) Redact(secrets ...credential.Secret) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range secrets {
		// Shorter values would shred unrelated text; the Secret type
		// already masks them wherever they are formatted.
		if v := s.Reveal(); len(v) >= 3 {
			l.secrets = append(l.secrets, v)
		}
	}
}

// Printf writes one trace line.
func (l *Logger) Printf(format string, args ...any) {
	if l == nil {
		return
	}
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.secrets {
		line = strings.ReplaceAll(line, s, credential.Secret(s).String())
	}
	line = strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(line)
	fmt.Fprintf(l.w, "%s bbtoken[%d]: %s\n", time.Now().UTC().Format("15:04:05.000000"), os.Getpid(), line)
}
