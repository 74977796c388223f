// Package trace writes the helper's decisions for GIT_CREDENTIAL_BBTOKEN_TRACE.
// It redacts by construction: credential.Secret values print as a mask, and
// each line goes through the process's redact.Redactor before it is
// written, so a secret the process has seen, or text that looks like one
// (a URL's password), never reaches the output even when passed by mistake
// as a plain string.
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

	"github.com/bbtoken/git-credential-bbtoken/internal/redact"
	"github.com/bbtoken/git-credential-bbtoken/internal/regfile"
)

// EnvVar turns tracing on: "1"/"true" for stderr, an absolute path for a file.
const EnvVar = "GIT_CREDENTIAL_BBTOKEN_TRACE"

// Logger writes trace lines. A nil *Logger is valid and silent.
type Logger struct {
	mu     sync.Mutex
	w      io.Writer
	redact *redact.Redactor
	closer io.Closer
}

// Open builds a Logger from the environment variable's value, masking
// through r (nil: a Redactor of its own). Files are opened for append,
// created 0600 (traces are private even when redacted).
func Open(value string, stderr io.Writer, r *redact.Redactor) (*Logger, error) {
	if r == nil {
		r = redact.New()
	}
	switch strings.ToLower(value) {
	case "", "0", "false", "no", "off":
		return nil, nil
	case "1", "true", "yes", "on", "2":
		return &Logger{w: stderr, redact: r}, nil
	}
	if !filepath.IsAbs(value) {
		return nil, fmt.Errorf("%s=%q: use 1 for stderr or an absolute file path", EnvVar, value)
	}
	f, err := regfile.OpenAppend(value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvVar, err)
	}
	// Traces are private even though redacted: refuse to append to a file
	// others can read (one created earlier with a looser umask, say).
	if st, err := f.Stat(); err == nil && runtime.GOOS != "windows" && st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
		f.Close()
		return nil, fmt.Errorf("%s: %s has mode %04o; fix: chmod 600 %s", EnvVar, value, st.Mode().Perm(), value)
	}
	return &Logger{w: f, redact: r, closer: f}, nil
}

// New returns a Logger writing to w through r (nil: a Redactor of its own).
func New(w io.Writer, r *redact.Redactor) *Logger {
	if r == nil {
		r = redact.New()
	}
	return &Logger{w: w, redact: r}
}

// Close closes a trace file.
func (l *Logger) Close() error {
	if l == nil || l.closer == nil {
		return nil
	}
	return l.closer.Close()
}

// Enabled reports whether lines are written.
func (l *Logger) Enabled() bool { return l != nil }

// Printf writes one trace line.
func (l *Logger) Printf(format string, args ...any) {
	if l == nil {
		return
	}
	line := l.redact.String(fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	line = strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(line)
	fmt.Fprintf(l.w, "%s bbtoken[%d]: %s\n", time.Now().UTC().Format("15:04:05.000000"), os.Getpid(), line)
}
