package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/gitcmd"
)

// probeResult is what the real git did for a credential request: the
// helpers it ran, in order, until one answered or the list ran out.
type probeResult struct {
	Commands []string // helper commands, without " get"
	Answered bool     // the last command supplied a credential
	Err      error    // git could not be run or did not finish in time
}

// DefaultProbeTimeout bounds `git credential fill`: long enough for this
// helper's own keyring timeout, short enough never to hang doctor.
const DefaultProbeTimeout = 20 * time.Second

// probeHelpers asks the real git for a credential for t with GIT_TRACE on,
// and reads from the trace which helpers git runs. Prompts are off
// (GIT_TERMINAL_PROMPT=0, no askpass, GCM_INTERACTIVE=never), so with no
// helper answering git runs every helper in its list and then fails; the
// credential a helper may print is read and dropped, never shown.
func (d *Doctor) probeHelpers(ctx context.Context, dir string, t target) probeResult {
	timeout := d.ProbeTimeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	cmd := gitcmd.Cmd{Path: d.Git, Dir: dir, Env: probeEnv(d.Env), Timeout: timeout,
		Stdin: "protocol=" + t.scheme + "\nhost=" + t.hostPort() + "\n\n"}
	out, err := cmd.Run(ctx, "credential", "fill")
	res := probeResult{Commands: parseTrace(out.Stderr)}
	answered := bytes.Contains(out.Stdout, []byte("\npassword=")) || bytes.HasPrefix(out.Stdout, []byte("password=")) ||
		bytes.Contains(out.Stdout, []byte("credential="))
	clear(out.Stdout) // may hold a secret: never kept
	var exit *gitcmd.Error
	switch {
	case errors.Is(err, gitcmd.ErrTimeout):
		res.Err = fmt.Errorf("git credential fill did not finish within %s (a helper may be waiting for input)", timeout)
	case err == nil:
		res.Answered = answered && len(res.Commands) > 0
	case errors.As(err, &exit):
		// git found no credential and may not prompt: the expected end.
	default:
		res.Err = fmt.Errorf("running git credential fill: %w", err)
	}
	return res
}

// probeEnv is env (nil: this process's) with tracing on and every way of
// prompting off.
func probeEnv(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	drop := map[string]bool{
		"GIT_TRACE": true, "GIT_TERMINAL_PROMPT": true, "GIT_ASKPASS": true,
		"SSH_ASKPASS": true, "GCM_INTERACTIVE": true, "GIT_TRACE_SETUP": true,
	}
	out := make([]string, 0, len(env)+6)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	return append(out, "GIT_TRACE=1", "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "GCM_INTERACTIVE=never")
}

// parseTrace picks the helper commands out of GIT_TRACE output. git runs a
// helper through the shell as the single argument "COMMAND get", which the
// trace prints shell-quoted; traces of processes the helpers start (which
// inherit GIT_TRACE) print argument lists instead and are ignored.
func parseTrace(trace []byte) []string {
	var cmds []string
	sc := bufio.NewScanner(bytes.NewReader(trace))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		_, rest, ok := strings.Cut(sc.Text(), "trace: run_command: ")
		if !ok {
			continue
		}
		words := shellWords(rest)
		if len(words) != 1 {
			continue
		}
		if cmd, ok := strings.CutSuffix(words[0], " get"); ok && cmd != "" {
			cmds = append(cmds, cmd)
		}
	}
	return cmds
}
