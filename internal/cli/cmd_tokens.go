package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Data Center tokens the helper makes itself: create, rotate, revoke.

const rotateGraceVar = "GIT_CREDENTIAL_BBTOKEN_ROTATE_GRACE"

// tokenHelper is the helper for create, rotate, revoke and repair: its
// HTTPS client calls the token API; with grace (rotate, repair), the grace
// period is read from the environment.
func (r *runner) tokenHelper(grace bool) (*helper.Helper, error) {
	h, err := r.helper(r.interactive())
	if err != nil {
		return nil, err
	}
	if v := r.env.Getenv(rotateGraceVar); v != "" && grace {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > time.Hour {
			return nil, usagef("%s=%q is not a duration like 10s (at most 1h)", rotateGraceVar, v)
		}
		h.RotateGrace = max(d, time.Millisecond) // 0 means the default
	}
	return h, nil
}

// interruptible is the context of a command that talks to the server: an
// interrupt (Ctrl-C, SIGTERM) ends its waits and calls, so that it stops
// with one line saying what is left (for repair), instead of dying
// silently half-way.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func finish(h *helper.Helper, u helper.Unfinished, pw credential.Secret) error {
	ctx, stop := interruptible()
	defer stop()
	return h.Finish(ctx, u, pw)
}

// readPassword reads the password of user on host: the first line of in,
// or a prompt without echo on a terminal. Never from argv.
func (r *runner) readPassword(in *bufio.Reader, user, host string) (credential.Secret, error) {
	pw, err := r.readSecret(in, fmt.Sprintf("Password of %s on %s (used once, never stored)", user, host), "password")
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", fmt.Errorf("%w: no password for %s on stdin (pipe it in, or run on a terminal to be prompted; or log in with OAuth to need none)", helper.ErrNeedCredentials, user)
	}
	return credential.Secret(pw), nil
}

func (r *runner) stdinReader() *bufio.Reader {
	return bufio.NewReaderSize(io.LimitReader(r.env.Stdin, helper.MaxTokenLength*4), 4096)
}

func (r *runner) create(args []string) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	kind := fs.String("kind", "", "")
	perms := fs.String("permissions", "", "")
	days := fs.String("expiry-days", "", "")
	name := fs.String("name", "", "")
	username := fs.String("username", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("%s", commandUsage["create"])
	}
	if err := refuseToken(pos[0]); err != nil {
		return err
	}
	if *kind != "" && !slices.Contains([]store.Kind{store.KindPersonal, store.KindProject, store.KindRepository}, store.Kind(*kind)) {
		return usagef("--kind %q: use personal, project or repository", *kind)
	}
	n, err := expiryDays(*days)
	if err != nil {
		return err
	}
	permsGiven := false
	fs.Visit(func(f *flag.Flag) { permsGiven = permsGiven || f.Name == "permissions" })
	if permsGiven && strings.Trim(*perms, ", ") == "" {
		return usagef("--permissions is empty: give a list like REPO_READ or PROJECT_READ,REPO_WRITE, or leave the flag out for read and write")
	}
	o := helper.CreateOptions{
		URL: pos[0], Kind: store.Kind(*kind), ExpiryDays: n, Name: *name, Username: *username,
		Permissions: strings.FieldsFunc(*perms, func(r rune) bool { return r == ',' || r == ' ' }),
	}
	if o.Name == "" {
		o.Name = "git-credential-bbtoken"
		if host, err := os.Hostname(); err == nil && host != "" {
			o.Name += " on " + host
		}
	}
	h, err := r.tokenHelper(false)
	if err != nil {
		return err
	}
	plan, err := h.PlanCreate(o)
	if err != nil {
		return err
	}
	var pw credential.Secret
	if plan.PasswordFor != "" {
		if pw, err = r.readPassword(r.stdinReader(), plan.PasswordFor, plan.Host); err != nil {
			return err
		}
	}
	ctx, stop := interruptible()
	defer stop()
	e, err := h.Create(ctx, plan, pw)
	if errors.Is(err, secrets.ErrUnavailable) {
		return fmt.Errorf("%w; tokens create makes are kept in the keyring (start one, e.g. gnome-keyring-daemon in a D-Bus session), or make the token in Bitbucket and `add` it with --store pass or --from-env VAR", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(r.env.Stdout, e.ID)
	fmt.Fprintf(r.env.Stderr, "created %s token %s (%q, %s) for %s, %s; kept in the %s (`git-credential-bbtoken doctor` checks that git asks this helper)\n",
		e.Kind, e.Server.ID, e.Server.Name, strings.Join(e.Server.Permissions, ","), e.URL, expiryWords(e), e.StoreName())
	return nil
}

func expiryDays(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 36500 {
		return 0, usagef("--expiry-days %q: a number of days from 1 to 36500", v)
	}
	return n, nil
}

func expiryWords(e *store.Entry) string {
	if e.Expires == "" {
		return "no expiry"
	}
	if t, ok, err := e.ExpiresAt(); ok && err == nil {
		return "expires " + t.UTC().Format(time.DateOnly)
	}
	return "expires " + e.Expires
}

func (r *runner) rotate(args []string) error {
	fs := flag.NewFlagSet("rotate", flag.ContinueOnError)
	days := fs.String("expiry-days", "", "")
	t, err := r.created(fs, args, func() error { _, err := expiryDays(*days); return err })
	if err != nil {
		return err
	}
	n, _ := expiryDays(*days) // checked above
	ctx, stop := interruptible()
	defer stop()
	e, err := t.h.Rotate(ctx, t.c, n, t.password)
	if err != nil {
		return err // names the entry when it did switch
	}
	fmt.Fprintln(r.env.Stdout, e.ID)
	fmt.Fprintf(r.env.Stderr, "rotated %s: it serves token %s (%s); the token it replaced is revoked\n", e.ID, e.Server.ID, expiryWords(e))
	return nil
}

func (r *runner) revoke(args []string) error {
	t, err := r.created(flag.NewFlagSet("revoke", flag.ContinueOnError), args, nil)
	if err != nil {
		return err
	}
	ctx, stop := interruptible()
	defer stop()
	e, gone, err := t.h.Revoke(ctx, t.c, t.password)
	if err != nil {
		return err
	}
	if gone {
		fmt.Fprintf(r.env.Stderr, "note: the server no longer knew token %s (revoked or deleted in Bitbucket already): removed here only\n", e.Server.ID)
	}
	fmt.Fprintf(r.env.Stdout, "revoked %s (%s %s, token %s)\n", e.ID, e.Kind, e.URL, e.Server.ID)
	return nil
}

// createdTarget is the created token rotate or revoke acts on, with the
// password that manages it ("" when the host's login does).
type createdTarget struct {
	h        *helper.Helper
	c        *helper.Created
	password credential.Secret
}

// created parses rotate's or revoke's command line (ID|URL, then fs's
// flags, checked further by check), finds the token, and reads the
// password it needs: every mistake is told before a password is asked.
func (r *runner) created(fs *flag.FlagSet, args []string, check func() error) (*createdTarget, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != 1 {
		return nil, usagef("%s", commandUsage[fs.Name()])
	}
	if err := refuseToken(pos[0]); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, err
		}
	}
	t := &createdTarget{}
	if t.h, err = r.tokenHelper(fs.Name() == "rotate"); err != nil {
		return nil, err
	}
	if t.c, err = t.h.FindCreated(pos[0], fs.Name() == "rotate"); err != nil {
		return nil, err
	}
	if t.c.PasswordFor != "" {
		if t.password, err = r.readPassword(r.stdinReader(), t.c.PasswordFor, t.c.Host); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// finishUnfinished completes creates and rotations that were
// interrupted, for repair: it reads one password per user who needs one.
// It reports whether any is left unfinished.
func (r *runner) finishUnfinished(h *helper.Helper, dryRun bool) (left bool, err error) {
	todo, err := h.Unfinished()
	if err != nil || len(todo) == 0 {
		return false, err
	}
	out := r.env.Stdout
	if dryRun {
		for _, u := range todo {
			fmt.Fprintf(out, "would finish %s\n", u.Subject)
		}
		return true, nil
	}
	in := r.stdinReader()
	passwords := map[string]credential.Secret{}
	for _, u := range todo {
		if u.Err != nil {
			fmt.Fprintf(out, "%s is unfinished: %s\n", u.Subject, oneLine(u.Err.Error()))
			left = true
			continue
		}
		pw, ok := passwords[u.PasswordFor]
		if !ok && u.PasswordFor != "" {
			if pw, err = r.readPassword(in, u.PasswordFor, u.Host); err != nil {
				fmt.Fprintf(out, "%s is unfinished: %s\n", u.Subject, oneLine(err.Error()))
				left = true
				continue
			}
			passwords[u.PasswordFor] = pw
		}
		if err := finish(h, u, pw); err != nil {
			fmt.Fprintf(out, "%s is unfinished: %s\n", u.Subject, oneLine(err.Error()))
			left = true
			continue
		}
		fmt.Fprintf(out, "finished %s: no token it made is left unserved on the server\n", u.Subject)
	}
	return left, nil
}
