// Package gitcmd runs git the one way this helper does: bounded by a
// timeout, in the C locale, with stdout and stderr captured. The locale
// matters because callers read what git prints ("not a git repository",
// trace lines, config values): in the user's language those texts differ,
// and a translation must not change what the helper concludes.
package gitcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// DefaultTimeout bounds a git command: reading config is instant unless
// something is badly wrong (a hung network file system).
const DefaultTimeout = 15 * time.Second

// Cmd says how to run git.
type Cmd struct {
	Path    string        // the git binary; "" = git from PATH
	Dir     string        // working directory; "" = this process's
	Env     []string      // environment; nil = this process's
	Stdin   string        // what git reads
	Timeout time.Duration // 0 = DefaultTimeout
}

// Result is what git printed and how it exited.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// ErrTimeout means git did not finish in time.
var ErrTimeout = errors.New("git did not finish in time")

// Error is a run of git that exited with a non-zero status.
type Error struct {
	Args     []string
	ExitCode int
	Stderr   string // its first line
	err      error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("git %s: exit status %d", e.Args[0], e.ExitCode)
	if e.Stderr != "" {
		msg = fmt.Sprintf("git %s: %s (exit status %d)", e.Args[0], e.Stderr, e.ExitCode)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.err }

// Run runs git with args. A non-zero exit is an *Error (with the Result
// filled in); git that cannot be started or does not finish is another
// error.
func (c Cmd) Run(ctx context.Context, args ...string) (Result, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path := c.Path
	if path == "" {
		path = "git"
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = c.Dir
	cmd.Env = Environ(c.Env)
	if c.Stdin != "" {
		cmd.Stdin = strings.NewReader(c.Stdin)
	}
	Detach(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A helper git runs may keep the pipes open after git exits.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("git %s: %w (%s)", args[0], ErrTimeout, timeout)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		res.ExitCode = exit.ExitCode()
		first, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		return res, &Error{Args: args, ExitCode: res.ExitCode, Stderr: first, err: err}
	}
	if err != nil {
		return res, fmt.Errorf("running git: %w", err)
	}
	return res, nil
}

// Environ is env (nil: this process's) in the C locale: LC_ALL=C, which
// also makes gettext ignore LANGUAGE.
func Environ(env []string) []string {
	return Replace(env, func(k string) bool { return k == "LC_ALL" || k == "LANGUAGE" }, "LC_ALL=C", "LANGUAGE=")
}

// Replace is env (nil: this process's) without the variables drop names,
// with set (KEY=VALUE) added.
func Replace(env []string, drop func(key string) bool, set ...string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !drop(k) {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}
