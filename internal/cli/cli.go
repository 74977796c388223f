// Package cli is git-credential-bbtoken's command line: git's helper
// operations (get, store, erase) and the user's commands. It takes its
// streams and environment as arguments so tests drive it without a process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/doctor"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/redact"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/keyring"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
	"github.com/bbtoken/git-credential-bbtoken/internal/trace"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // the user (or git) gave something wrong, or something failed
	ExitUsage = 2 // the command line itself is wrong
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// version is Version, or, in a binary `go install …@VERSION` built (no
// ldflags), the module version its build info records.
func version() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}

// Env is everything a run depends on.
type Env struct {
	Args   []string // without the program name
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Dir is the working directory (for `add` without a URL).
	Dir string
	// ConfigDir holds the index; "" means the user's config directory.
	ConfigDir string
	// Secrets is the secret backend; nil means the OS keyring.
	Secrets secrets.Backend
	// Executable is this program's path, for `setup`.
	Executable string
	// Git is the git binary `setup` runs; "" means git from PATH.
	Git string
	// IsTerminal reports whether stdin is a terminal; ReadPassword reads
	// a line from it without echo. Both nil when there is no terminal.
	IsTerminal   func() bool
	ReadPassword func() ([]byte, error)
	Now          func() time.Time
}

// errUsage marks command-line mistakes (exit 2).
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
func (e usageError) Is(t error) bool {
	return t == errUsage
}

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// Main runs one command and returns the exit code.
//
// Every line it writes for people (errors, notices, reports, traces) goes
// through one redact.Redactor, which knows the secrets the arguments carry
// and every secret read later: stdout of get, which is git's and must
// carry the token, is the only stream that does not.
func Main(env Env) (code int) {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	red := redact.New()
	for _, a := range env.Args {
		red.AddArg(a)
	}
	env.Stderr = red.Writer(env.Stderr)
	if len(env.Args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return ExitUsage
	}
	op, args := env.Args[0], env.Args[1:]
	if op != "get" {
		env.Stdout = red.Writer(env.Stdout)
	}
	switch op {
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, helpText(args))
		return ExitOK
	case "version", "--version":
		fmt.Fprintf(env.Stdout, "git-credential-bbtoken %s\n", version())
		return ExitOK
	}
	cmd, ok := commands[op]
	if !ok {
		// git may grow operations: ignore them silently. git always pipes
		// stdin, so a terminal means a person who mistyped a command.
		if isGitOperation(op) && (env.IsTerminal == nil || !env.IsTerminal()) {
			return ExitOK
		}
		fmt.Fprintf(env.Stderr, "git-credential-bbtoken: unknown command %q (see git-credential-bbtoken help)\n", op)
		return ExitUsage
	}
	tr, err := trace.Open(env.Getenv(trace.EnvVar), env.Stderr, red)
	if err != nil {
		fmt.Fprintf(env.Stderr, "git-credential-bbtoken: %v\n", err)
		return ExitUsage
	}
	defer tr.Close()
	// A bug must not become a stack trace on git's terminal, with whatever
	// the panic's value holds: one masked line instead.
	defer func() {
		if p := recover(); p != nil {
			msg := oneLine(fmt.Sprint(p))
			tr.Printf("%s: panic: %s", op, msg)
			fmt.Fprintf(env.Stderr, "git-credential-bbtoken: %s: internal error: %s (please report it)\n", op, msg)
			code = ExitError
		}
	}()
	r := &runner{env: env, red: red, trace: tr}
	defer r.close()
	if err := cmd(r, args); err != nil {
		msg := oneLine(err.Error())
		tr.Printf("%s: failed: %s", op, msg)
		// One line, whatever went wrong: git shows a helper's stderr as is.
		if errors.Is(err, errUsage) {
			fmt.Fprintf(env.Stderr, "git-credential-bbtoken: %s: %s (see git-credential-bbtoken help)\n", op, msg)
			return ExitUsage
		}
		fmt.Fprintf(env.Stderr, "git-credential-bbtoken: %s: %s\n", op, msg)
		return ExitError
	}
	return ExitOK
}

// isGitOperation tells git's (future) helper operations from typos of our
// commands: git only ever passes a single lower-case word.
func isGitOperation(op string) bool {
	if op == "" || strings.HasPrefix(op, "-") {
		return false
	}
	for _, r := range op {
		if (r < 'a' || r > 'z') && r != '-' {
			return false
		}
	}
	return true
}

func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

type runner struct {
	env     Env
	red     *redact.Redactor // every message and trace goes through it
	trace   *trace.Logger
	closers []secrets.Closer // backends opened for the command
}

// close releases what the command opened (a keyring connection: its
// session is closed and the service's answer awaited).
func (r *runner) close() {
	for _, c := range r.closers {
		_ = c.Close()
	}
	r.closers = nil
}

var commands map[string]func(*runner, []string) error

func init() {
	commands = map[string]func(*runner, []string) error{
		"get":    (*runner).get,
		"store":  (*runner).store,
		"erase":  (*runner).erase,
		"add":    (*runner).add,
		"list":   (*runner).list,
		"remove": (*runner).remove,
		"setup":  (*runner).setup,
		"repair": (*runner).repair,
		"config": (*runner).config,
		"doctor": (*runner).doctor,
		"import": (*runner).importCredentials,
		"verify": (*runner).verify,
		"login":  (*runner).login,
		"logout": (*runner).logout,
		"create": (*runner).create,
		"rotate": (*runner).rotate,
		"revoke": (*runner).revoke,
	}
}

// keyringTimeout bounds each keyring call. git operations get a short one
// (git must never hang); interactive commands a longer one, since a person
// may be typing into an unlock prompt.
func (r *runner) keyringTimeout(interactive bool) (time.Duration, error) {
	if v := r.env.Getenv("GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, usagef("GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT=%q is not a duration like 5s", v)
		}
		return d, nil
	}
	if interactive {
		return 60 * time.Second, nil
	}
	return 5 * time.Second, nil
}

// lockTimeout bounds the wait for the index lock ("" = the store's
// default): a CI machine running many git processes at once may want more.
func (r *runner) lockTimeout() (time.Duration, error) {
	v := r.env.Getenv("GIT_CREDENTIAL_BBTOKEN_LOCK_TIMEOUT")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, usagef("GIT_CREDENTIAL_BBTOKEN_LOCK_TIMEOUT=%q is not a duration like 10s", v)
	}
	return d, nil
}

func (r *runner) helper(interactive bool) (*helper.Helper, error) {
	lockTimeout, err := r.lockTimeout()
	if err != nil {
		return nil, err
	}
	dir := r.env.ConfigDir
	if dir == "" {
		var err error
		if dir, err = store.DefaultDir(); err != nil {
			return nil, err
		}
	}
	backend := r.env.Secrets
	if backend == nil {
		timeout, err := r.keyringTimeout(interactive)
		if err != nil {
			return nil, err
		}
		backend = keyring.New(timeout)
		if c, ok := backend.(secrets.Closer); ok {
			r.closers = append(r.closers, c)
		}
	}
	// No password store (no HOME) is not an error until one is needed:
	// then passErr says why.
	pass, passErr := passstore.FromEnv(r.env.Getenv)
	h := &helper.Helper{
		Store:    &store.Store{Dir: dir, Secrets: backend, Pass: pass, NoPass: passErr, Getenv: r.env.Getenv, LockTimeout: lockTimeout},
		Now:      r.env.Now,
		Trace:    r.trace,
		Redactor: r.red,
		Notices:  r.env.Stderr,
		// No connection until a login refreshes.
		OAuthHTTP: r.oauthHTTP(),
	}
	h.Store.Warn = func(msg string) { fmt.Fprintf(r.env.Stderr, "git-credential-bbtoken: %s\n", msg) }
	return h, nil
}

// readQuery reads git's description from stdin.
func (r *runner) readQuery(args []string) (*credential.Credential, error) {
	if len(args) > 0 {
		return nil, usagef("unexpected arguments %q", args)
	}
	return credential.Read(r.env.Stdin)
}

// protocol runs one of git's operations: the description on stdin, the
// helper's answer (get only) on stdout.
func (r *runner) protocol(args []string, op func(*helper.Helper, context.Context, *credential.Credential) (*credential.Credential, error)) error {
	q, err := r.readQuery(args)
	if err != nil {
		return err
	}
	h, err := r.helper(false)
	if err != nil {
		return err
	}
	a, err := op(h, context.Background(), q)
	if err != nil || a == nil {
		return err
	}
	return credential.Write(r.env.Stdout, a)
}

func (r *runner) get(args []string) error {
	if file := r.env.Getenv(doctor.ProbeEnv); doctor.IsProbe(file) {
		// doctor's probe: say what git sent, answer nothing.
		q, err := r.readQuery(args)
		if err != nil {
			return err
		}
		if err := doctor.Record(file, q.Path != ""); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stderr, "git-credential-bbtoken: get: answering nothing: doctor's probe (%s)\n", doctor.ProbeEnv)
		return nil
	}
	return r.protocol(args, (*helper.Helper).Get)
}

func (r *runner) store(args []string) error {
	return r.protocol(args, func(h *helper.Helper, ctx context.Context, q *credential.Credential) (*credential.Credential, error) {
		return nil, h.StoreCredential(ctx, q)
	})
}

func (r *runner) erase(args []string) error {
	return r.protocol(args, func(h *helper.Helper, ctx context.Context, q *credential.Credential) (*credential.Credential, error) {
		return nil, h.Erase(ctx, q)
	})
}

// parseFlags lets flags and positional arguments mix (`add URL --kind x`),
// which the flag package alone does not.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, usagef("%s", commandUsage[fs.Name()])
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
