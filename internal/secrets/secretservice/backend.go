//go:build linux || freebsd || openbsd || netbsd || dragonfly

package secretservice

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
)

// DefaultTimeout bounds each call when the Backend's Timeout is 0.
const DefaultTimeout = 5 * time.Second

// Backend is the Secret Service as a secrets.Backend. It holds one
// connection, opened at its first call; Close releases it.
type Backend struct {
	// Service is the "service" attribute of every item.
	Service string
	// Timeout bounds each call (a locked keyring may wait on an unlock
	// prompt nobody answers).
	Timeout time.Duration
	cl      *client
}

// New returns the Secret Service backend with the helper's service name.
func New(timeout time.Duration) *Backend {
	return &Backend{Service: secrets.Service, Timeout: timeout}
}

var _ secrets.Backend = (*Backend)(nil)

func (b *Backend) timeout() time.Duration {
	if b.Timeout <= 0 {
		return DefaultTimeout
	}
	return b.Timeout
}

// run runs op on the connection (dialled at the first call) with a
// deadline, retrying an answer the service gives a client it is not ready
// for (Transient), and turns what went wrong into secrets' errors.
func (b *Backend) run(ctx context.Context, what string, op func(cl *client) error) error {
	start := time.Now()
	deadline := start.Add(b.timeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var err error
	for attempt := 1; ; attempt++ {
		if b.cl == nil {
			c, derr := dial(deadline)
			if derr != nil {
				return b.classify(what, derr, deadline.Sub(start))
			}
			b.cl = &client{c: c}
		}
		cl := b.cl
		cl.c.setDeadline(deadline)
		// A cancelled context ends the call in flight as a deadline would.
		stop := context.AfterFunc(ctx, func() { cl.c.setDeadline(time.Now()) })
		err = op(cl)
		stop()
		if ctx.Err() != nil && (err == nil || errors.Is(err, os.ErrDeadlineExceeded)) {
			err = ctx.Err()
		}
		if !Transient(err) || attempt == transientTries || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Duration(attempt) * transientPause)
	}
	switch {
	case err == nil, errors.Is(err, errNotFound):
	case isServiceAnswer(err):
		// The service answered (locked, refused, dismissed): the
		// connection works; end it as every connection ends, its session
		// closed with the answer awaited, and start afresh next time.
		_ = b.cl.done()
		b.cl = nil
	default:
		// A connection that failed mid-call is not used again.
		_ = b.cl.c.close()
		b.cl = nil
	}
	return b.classify(what, err, deadline.Sub(start))
}

// isServiceAnswer reports whether err is the Secret Service's own answer
// on a connection that still works (not a broken or timed-out one).
func isServiceAnswer(err error) bool {
	var de dbus.Error
	return errors.Is(err, errDenied) || errors.Is(err, errLocked) || errors.Is(err, errNoColl) ||
		(errors.As(err, &de) && de.Name != "org.freedesktop.DBus.Error.NoReply" &&
			de.Name != "org.freedesktop.DBus.Error.ServiceUnknown" && de.Name != "org.freedesktop.DBus.Error.NameHasNoOwner")
}

// A transient answer is retried at most transientTries times, after a
// pause that grows with each attempt.
const (
	transientTries = 3
	transientPause = 25 * time.Millisecond
)

// Close implements secrets.Closer: it closes the session (waiting for the
// service's answer) and the connection.
func (b *Backend) Close() error {
	if b.cl == nil {
		return nil
	}
	err := b.cl.done()
	b.cl = nil
	return err
}

// Get implements secrets.Backend. With a hint and want it reads the item
// at hint in three calls (a property read, OpenSession, GetSecrets) and
// serves the value only if want accepts it; otherwise (or when the item
// was deleted, replaced or locked since) it searches by attributes:
// SearchItems, OpenSession, GetSecrets. The session is closed with the
// last call's round trip.
func (b *Backend) Get(ctx context.Context, id, hint string, want func(string) bool) (string, string, error) {
	var value string
	var at dbus.ObjectPath
	err := b.run(ctx, "read", func(cl *client) error {
		attrs := b.attrs(id)
		item := dbus.ObjectPath(hint)
		if want != nil && item.IsValid() && item != noPrompt {
			if !cl.answered {
				// The first call, harmless (see client).
				p := cl.c.call(ssName, ssPath, propsIface, "Get", 0, ssService, "Collections")
				rs, err := cl.send(p)
				if err == nil {
					_, err = rs.body(p) // not registered yet: retried
				}
				if err != nil {
					return err
				}
			}
			// The session is closed with this read: a miss (deleted,
			// replaced, renumbered or locked since) opens another.
			v, found, err := cl.get(item, true)
			if err == nil && found && want(v) {
				value, at = v, item
				return nil
			}
			if err != nil && !Vanished(err) {
				return err
			}
		}
		unlocked, locked, err := cl.find(attrs)
		if err != nil {
			return err
		}
		if len(unlocked) == 0 && len(locked) == 0 {
			return errNotFound
		}
		if len(unlocked) == 0 {
			if err := cl.unlock(locked[0]); err != nil {
				return err
			}
			unlocked = locked[:1]
		}
		v, found, err := cl.get(unlocked[0], true)
		switch {
		case Vanished(err):
			// Deleted between the search and the read (a parallel
			// replacement): gone is not-found, not an unusable keyring.
			return errNotFound
		case err != nil:
			return err
		case !found:
			// Left out of the answer: still locked, or (KeePassXC)
			// deleted since the search.
			if cl.gone(unlocked[0]) {
				return errNotFound
			}
			return errLocked
		}
		value, at = v, unlocked[0]
		return nil
	})
	return value, string(at), err
}

// Set implements secrets.Backend: a new item in the default collection,
// whose object path is the hint.
func (b *Backend) Set(ctx context.Context, id, value string) (string, error) {
	var item dbus.ObjectPath
	err := b.run(ctx, "write", func(cl *client) error {
		var err error
		item, err = cl.create(b.attrs(id), "git-credential-bbtoken token "+id, value)
		return err
	})
	return string(item), err
}

// Delete implements secrets.Backend: every item with the id's attributes
// (there is one; an interrupted older version may have left two).
func (b *Backend) Delete(ctx context.Context, id string) error {
	return b.run(ctx, "delete", func(cl *client) error {
		unlocked, locked, err := cl.find(b.attrs(id))
		if err != nil {
			return err
		}
		if len(unlocked)+len(locked) == 0 {
			return errNotFound
		}
		for _, it := range unlocked {
			if err := cl.remove(it, false); err != nil && !Vanished(err) {
				return err
			}
		}
		for _, it := range locked {
			if err := cl.remove(it, true); err != nil && !Vanished(err) {
				return err
			}
		}
		return nil
	})
}

// List implements secrets.Backend: the ids of every item of the service,
// in every collection.
func (b *Backend) List(ctx context.Context) ([]string, error) {
	var ids []string
	err := b.run(ctx, "list", func(cl *client) error {
		unlocked, locked, err := cl.find(map[string]string{"service": b.Service})
		if err != nil {
			return err
		}
		all, err := cl.attributes(append(unlocked, locked...))
		if err != nil {
			return err
		}
		ids = ids[:0]
		for _, a := range all {
			if a["service"] == b.Service && a["username"] != "" {
				ids = append(ids, a["username"])
			}
		}
		return nil
	})
	return ids, err
}

func (b *Backend) attrs(id string) map[string]string {
	return map[string]string{"service": b.Service, "username": id}
}

// classify turns what went wrong into one of secrets' errors, with the
// cause and the fix in one line.
func (b *Backend) classify(what string, err error, limit time.Duration) error {
	var de dbus.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNotFound):
		return secrets.ErrNotFound
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w during %s", err, what)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w within %s during %s; %s", secrets.ErrTimeout, limit.Round(time.Millisecond), what, fixLocked)
	case errors.Is(err, errDenied), errors.Is(err, errLocked), isLockedError(err):
		return fmt.Errorf("%w during %s: %v; %s", secrets.ErrLocked, what, err, fixLocked)
	case errors.Is(err, errNoBus):
		return fmt.Errorf("%w during %s: %v; %s", secrets.ErrUnavailable, what, err, fixUnavailable)
	case errors.As(err, &de) && (de.Name == "org.freedesktop.DBus.Error.ServiceUnknown" || de.Name == "org.freedesktop.DBus.Error.NameHasNoOwner"):
		return fmt.Errorf("%w during %s: no Secret Service is running on the session bus (none was started, or it quit or crashed); %s", secrets.ErrUnavailable, what, fixUnavailable)
	case errors.Is(err, errNoColl):
		return fmt.Errorf("%w during %s: %v; fix: create a keyring (collection) in your Secret Service, e.g. with Passwords and Keys", secrets.ErrUnavailable, what, err)
	case errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.NoReply":
		// The bus answers for a service that left with calls unanswered.
		return fmt.Errorf("%w during %s: the Secret Service left the bus without answering (it quit or crashed); fix: start the Secret Service again, and see its log for why it stopped", secrets.ErrUnavailable, what)
	case errors.As(err, &de):
		return fmt.Errorf("%w during %s: the Secret Service refused it (%s: %s); fix: check that it works (e.g. `secret-tool search service %s`) and see its log", secrets.ErrUnavailable, what, de.Name, errorText(de), b.Service)
	}
	return fmt.Errorf("%w during %s: %v; %s", secrets.ErrUnavailable, what, err, fixUnavailable)
}

// fixUnavailable and fixLocked are the fixes for a Secret Service that is
// not there, and for one that is locked or waits on a dialog (in the words
// of each provider: a message cannot cheaply tell which one runs).
var fixUnavailable = func() string {
	if runtime.GOOS == "linux" {
		return "fix: start your Secret Service (log in to a desktop session, or start KeePassXC with its Secret Service integration, or KWallet; headless: `dbus-run-session -- sh -c 'echo PASSWORD | gnome-keyring-daemon --unlock --components=secrets; ...'`, see the README, Headless Linux)"
	}
	return "fix: start a Secret Service (gnome-keyring, KeePassXC or KWallet) on the session bus"
}()

const fixLocked = "fix: unlock the keyring or answer its dialog (gnome-keyring: open Passwords and Keys, or run `gnome-keyring-daemon --unlock`; KeePassXC: unlock the database, and to stop it asking untick \"Confirm when passwords are retrieved by clients\" in its Secret Service Integration settings; KWallet: open the wallet), or raise GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT"
