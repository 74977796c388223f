//go:build linux || freebsd || openbsd || netbsd || dragonfly

package secretservice

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// Secret Service and bus names (freedesktop.org Secret Service API 0.2).
const (
	ssName     = "org.freedesktop.secrets"
	ssPath     = dbus.ObjectPath("/org/freedesktop/secrets")
	ssService  = "org.freedesktop.Secret.Service"
	ssColl     = "org.freedesktop.Secret.Collection"
	ssItem     = "org.freedesktop.Secret.Item"
	ssSession  = "org.freedesktop.Secret.Session"
	ssPrompt   = "org.freedesktop.Secret.Prompt"
	busName    = "org.freedesktop.DBus"
	busPath    = dbus.ObjectPath("/org/freedesktop/DBus")
	propsIface = "org.freedesktop.DBus.Properties"
	noPrompt   = dbus.ObjectPath("/")
	// loginCollection is where gnome-keyring and go-keyring keep items
	// when no "default" alias says otherwise.
	loginCollection = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
)

// secret is the Secret Service's Secret struct, (oayays).
type secret struct {
	Session     dbus.ObjectPath
	Parameters  []byte
	Value       []byte
	ContentType string
}

// Errors of the protocol that the backend turns into secrets' errors.
var (
	errNotFound = errors.New("no such item")
	errLocked   = errors.New("the item is locked")
	errNoColl   = errors.New("the Secret Service has no collection to store items in")
	errDenied   = errors.New("the unlock prompt was dismissed")
)

// dismissWait bounds sending Dismiss for a prompt nobody answered.
const dismissWait = 200 * time.Millisecond

// client is the Secret Service as one connection sees it. Every operation
// has one path: no other client, no fallback.
//
// The order of the first calls matters. gnome-keyring 42 registers a new
// client asynchronously; a method that overtakes the registration fails
// with "not implemented" (Transient: retried), but an OpenSession that
// overtakes it makes the daemon abort (a glib assertion; reproduced by
// alternating libsecret and this client, about 1 in 1000). So the first
// call is always one that fails gracefully (SearchItems, a property read,
// ReadAlias), and OpenSession goes out only after an answer.
type client struct {
	c        *conn
	started  bool            // the first call was sent, with the authentication
	answered bool            // the service has answered a call
	session  dbus.ObjectPath // the open "plain" session, if any
	coll     dbus.ObjectPath // where new items go, once known
}

// send queues a call to the Secret Service and sends everything queued,
// starting the connection if this is its first call.
func (cl *client) send(serials ...uint32) (replies, error) {
	var rs replies
	var err error
	if !cl.started {
		cl.started = true
		if err := cl.c.start(); err != nil {
			return nil, err
		}
		rs, err = cl.c.wait(serials...)
	} else {
		rs, err = cl.c.roundTrip(serials...)
	}
	if err == nil && !slices.ContainsFunc(serials, func(s uint32) bool { _, e := rs.body(s); return Transient(e) }) {
		// Not registered yet is not an answer: OpenSession must still wait.
		cl.answered = true
	}
	return rs, err
}

// search returns the items whose attributes are attrs, in every
// collection: unlocked ones, and locked ones.
func (cl *client) search(attrs map[string]string) (unlocked, locked []dbus.ObjectPath, err error) {
	s := cl.c.call(ssName, ssPath, ssService, "SearchItems", 0, attrs)
	rs, err := cl.send(s)
	if err != nil {
		return nil, nil, err
	}
	body, err := rs.body(s)
	if err == nil {
		err = dbus.Store(body, &unlocked, &locked)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("SearchItems: %w", err)
	}
	return unlocked, locked, nil
}

// find is search that tells an empty answer from a locked store that
// hides its items: KeePassXC answers a search of its locked database with
// no items at all (gnome-keyring and KWallet list locked ones), and its
// collection then lists no Items either. So when nothing is found, the
// collection items go to is locked and lists no item, it is unlocked
// (KeePassXC shows its dialog) and searched again.
func (cl *client) find(attrs map[string]string) (unlocked, locked []dbus.ObjectPath, err error) {
	unlocked, locked, err = cl.search(attrs)
	if err != nil || len(unlocked)+len(locked) > 0 {
		return unlocked, locked, err
	}
	coll, err := cl.collection()
	if err != nil {
		return nil, nil, err
	}
	if hides, err := cl.hidesItems(coll); err != nil || !hides {
		return nil, nil, err
	}
	if err := cl.unlock(coll); err != nil {
		return nil, nil, err
	}
	if hides, err := cl.hidesItems(coll); err != nil || hides {
		return nil, nil, cmp.Or(err, errLocked) // refused without a prompt
	}
	return cl.search(attrs)
}

// gone reports whether an item no longer exists (its properties cannot
// be read because the object is gone).
func (cl *client) gone(item dbus.ObjectPath) bool {
	g := cl.c.call(ssName, item, propsIface, "Get", 0, ssItem, "Locked")
	rs, err := cl.send(g)
	if err == nil {
		_, err = rs.body(g)
	}
	return Vanished(err)
}

// hidesItems reports whether a collection is locked with no item listed.
func (cl *client) hidesItems(coll dbus.ObjectPath) (bool, error) {
	g := cl.c.call(ssName, coll, propsIface, "GetAll", 0, ssColl)
	rs, err := cl.send(g)
	if err != nil {
		return false, err
	}
	var props map[string]dbus.Variant
	body, err := rs.body(g)
	if err == nil {
		err = dbus.Store(body, &props)
	}
	if err != nil {
		return false, fmt.Errorf("reading the properties of %s: %w", coll, err)
	}
	isLocked, _ := props["Locked"].Value().(bool)
	items, _ := props["Items"].Value().([]dbus.ObjectPath)
	return isLocked && len(items) == 0, nil
}

// touch makes the first call a harmless one (see client), when the
// operation's first real call would be OpenSession.
func (cl *client) touch() error {
	if cl.answered {
		return nil
	}
	_, err := cl.collection()
	return err
}

// openSession opens a "plain" session once per connection.
func (cl *client) openSession() (dbus.ObjectPath, error) {
	if cl.session != "" {
		return cl.session, nil
	}
	if err := cl.touch(); err != nil {
		return "", err
	}
	s := cl.c.call(ssName, ssPath, ssService, "OpenSession", 0, "plain", dbus.MakeVariant(""))
	rs, err := cl.send(s)
	if err != nil {
		return "", err
	}
	body, err := rs.body(s)
	var ignored dbus.Variant
	if err == nil {
		err = dbus.Store(body, &ignored, &cl.session)
	}
	if err != nil {
		return "", fmt.Errorf("OpenSession: %w", err)
	}
	return cl.session, nil
}

// closeSession closes the open session and waits for the answer: a
// service must not be left to clean up after a client that is gone
// (gnome-keyring 42 aborted on clients that left within a millisecond or
// two of opening one; KeePassXC crashed on calls answered after their
// client had left). extra are calls queued before, whose replies come
// back with it.
func (cl *client) closeSession(extra ...uint32) (replies, error) {
	if cl.session == "" {
		return cl.send(extra...)
	}
	s := cl.c.call(ssName, cl.session, ssSession, "Close", 0)
	cl.session = ""
	rs, err := cl.send(append(extra, s)...)
	if err != nil {
		return nil, err
	}
	_, _ = rs.body(s) // a failure to close is the service's business
	return rs, nil
}

// readSecret queues GetSecrets for one item; the caller sends it.
func (cl *client) readSecret(item dbus.ObjectPath) uint32 {
	return cl.c.call(ssName, ssPath, ssService, "GetSecrets", 0, []dbus.ObjectPath{item}, cl.session)
}

// secretOf reads GetSecrets' answer for item: found is false when the
// service left the item out (it is locked).
func secretOf(rs replies, serial uint32, item dbus.ObjectPath) (v string, found bool, err error) {
	body, err := rs.body(serial)
	var out map[dbus.ObjectPath]secret
	if err == nil {
		err = dbus.Store(body, &out)
	}
	if err != nil {
		return "", false, fmt.Errorf("GetSecrets: %w", err)
	}
	s, found := out[item]
	return string(s.Value), found, nil
}

// get reads item's secret, closing the session with the same round trip
// when last (nothing else will be read on this connection).
func (cl *client) get(item dbus.ObjectPath, last bool) (string, bool, error) {
	if _, err := cl.openSession(); err != nil {
		return "", false, err
	}
	s := cl.readSecret(item)
	var rs replies
	var err error
	if last {
		rs, err = cl.closeSession(s)
	} else {
		rs, err = cl.send(s)
	}
	if err != nil {
		return "", false, err
	}
	return secretOf(rs, s, item)
}

// unlock unlocks objects, through the prompt the service asks for if any.
func (cl *client) unlock(objects ...dbus.ObjectPath) error {
	s := cl.c.call(ssName, ssPath, ssService, "Unlock", 0, objects)
	rs, err := cl.send(s)
	if err != nil {
		return err
	}
	body, err := rs.body(s)
	var unlocked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	if err == nil {
		err = dbus.Store(body, &unlocked, &prompt)
	}
	if err != nil {
		return fmt.Errorf("unlocking: %w", err)
	}
	_, err = cl.prompt(prompt)
	return err
}

// prompt runs a prompt, if the service asked for one (p is not "/"), and
// returns its result. A dismissed prompt is errDenied. Headless,
// gnome-keyring dismisses an unlock prompt it cannot show, KWallet
// completes one without a dialog, and a prompt nobody answers runs into
// the connection's deadline: it is dismissed then, so that its dialog does
// not outlive the helper.
func (cl *client) prompt(p dbus.ObjectPath) (dbus.Variant, error) {
	if p == noPrompt || p == "" {
		return dbus.Variant{}, nil
	}
	rule := fmt.Sprintf("type='signal',interface='%s',member='Completed',path='%s'", ssPrompt, p)
	match := cl.c.call(busName, busPath, busName, "AddMatch", 0, rule)
	call := cl.c.call(ssName, p, ssPrompt, "Prompt", 0, "")
	rs, err := cl.send(match, call)
	if err != nil {
		return dbus.Variant{}, err
	}
	for _, s := range []uint32{match, call} {
		if _, err := rs.body(s); err != nil {
			return dbus.Variant{}, fmt.Errorf("prompt: %w", err)
		}
	}
	m, err := cl.c.waitSignal(p, ssPrompt, "Completed")
	if errors.Is(err, os.ErrDeadlineExceeded) {
		cl.c.setDeadline(time.Now().Add(dismissWait))
		cl.c.call(ssName, p, ssPrompt, "Dismiss", dbus.FlagNoReplyExpected)
		_ = cl.c.flush()
	}
	if err != nil {
		return dbus.Variant{}, err
	}
	var dismissed bool
	var result dbus.Variant
	if err := dbus.Store(m.Body, &dismissed, &result); err != nil {
		return dbus.Variant{}, fmt.Errorf("prompt: %w", err)
	}
	if dismissed {
		return dbus.Variant{}, errDenied
	}
	return result, nil
}

// collection is where new items go: the "default" alias, else the login
// collection, else the first there is. gnome-keyring and KeePassXC alias
// "default" to their login collection (KeePassXC: the database exposed to
// the Secret Service); KWallet to its wallet ("kdewallet").
func (cl *client) collection() (dbus.ObjectPath, error) {
	if cl.coll != "" {
		return cl.coll, nil
	}
	alias := cl.c.call(ssName, ssPath, ssService, "ReadAlias", 0, "default")
	colls := cl.c.call(ssName, ssPath, propsIface, "Get", 0, ssService, "Collections")
	rs, err := cl.send(alias, colls)
	if err != nil {
		return "", err
	}
	var path dbus.ObjectPath
	if body, err := rs.body(alias); err == nil {
		_ = dbus.Store(body, &path)
	}
	if path != "" && path != noPrompt {
		cl.coll = path
		return path, nil
	}
	var v dbus.Variant
	body, err := rs.body(colls)
	if err == nil {
		err = dbus.Store(body, &v)
	}
	if err != nil {
		return "", fmt.Errorf("reading the Secret Service's collections: %w", err)
	}
	all, _ := v.Value().([]dbus.ObjectPath)
	switch {
	case slices.Contains(all, loginCollection):
		cl.coll = loginCollection
	case len(all) > 0:
		cl.coll = all[0]
	default:
		return "", errNoColl
	}
	return cl.coll, nil
}

// create stores value as a new item with attrs in the collection and
// returns the item's path. It never replaces an item (replace=false):
// every value has an id of its own, and KeePassXC 2.7.4 opens an access
// dialog (invisible, so it hangs) when a client replaces an item another
// client created (its bug #9255). A locked collection is unlocked first;
// a prompt the service answers CreateItem with (KeePassXC) is run.
func (cl *client) create(attrs map[string]string, label, value string) (dbus.ObjectPath, error) {
	coll, err := cl.collection()
	if err != nil {
		return "", err
	}
	session, err := cl.openSession()
	if err != nil {
		return "", err
	}
	props := map[string]dbus.Variant{
		ssItem + ".Label":      dbus.MakeVariant(label),
		ssItem + ".Attributes": dbus.MakeVariant(attrs),
	}
	sec := secret{Session: session, Parameters: []byte{}, Value: []byte(value), ContentType: "text/plain; charset=utf8"}
	for attempt := 0; ; attempt++ {
		s := cl.c.call(ssName, coll, ssColl, "CreateItem", 0, props, sec, false)
		rs, err := cl.send(s)
		if err != nil {
			return "", err
		}
		body, err := rs.body(s)
		var item, prompt dbus.ObjectPath
		if err == nil {
			err = dbus.Store(body, &item, &prompt)
		}
		if isLockedError(err) && attempt == 0 {
			if err := cl.unlock(coll); err != nil {
				return "", err
			}
			continue
		}
		if err != nil {
			return "", fmt.Errorf("creating the item: %w", err)
		}
		result, err := cl.prompt(prompt)
		if err != nil {
			return "", err
		}
		if paths, ok := result.Value().([]dbus.ObjectPath); ok && len(paths) > 0 {
			item = paths[0]
		} else if p, ok := result.Value().(dbus.ObjectPath); ok {
			item = p
		}
		if item == noPrompt || item == "" {
			return "", errors.New("creating the item: the service created none")
		}
		return item, nil
	}
}

// remove deletes an item, unlocking it first if it is locked, and running
// the prompt the service may answer with.
func (cl *client) remove(item dbus.ObjectPath, locked bool) error {
	if locked {
		if err := cl.unlock(item); err != nil {
			return err
		}
	}
	s := cl.c.call(ssName, item, ssItem, "Delete", 0)
	rs, err := cl.send(s)
	if err != nil {
		return err
	}
	body, err := rs.body(s)
	var prompt dbus.ObjectPath
	if err == nil {
		err = dbus.Store(body, &prompt)
	}
	if err != nil {
		return fmt.Errorf("deleting the item: %w", err)
	}
	_, err = cl.prompt(prompt)
	return err
}

// attributes reads the Attributes of items, in one round trip. An item
// that vanished meanwhile (deleted by another process) is left out.
func (cl *client) attributes(items []dbus.ObjectPath) ([]map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	serials := make([]uint32, len(items))
	for i, it := range items {
		serials[i] = cl.c.call(ssName, it, propsIface, "Get", 0, ssItem, "Attributes")
	}
	rs, err := cl.send(serials...)
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for i, s := range serials {
		body, err := rs.body(s)
		var v dbus.Variant
		if err == nil {
			err = dbus.Store(body, &v)
		}
		if Vanished(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("item %s: %w", items[i], err)
		}
		attrs, ok := v.Value().(map[string]string)
		if !ok {
			return nil, fmt.Errorf("item %s: attributes of type %T", items[i], v.Value())
		}
		out = append(out, attrs)
	}
	return out, nil
}

// done ends the connection: it closes the session (awaiting the answer,
// see closeSession) and the socket, within a short bound of its own.
func (cl *client) done() error {
	if cl.session != "" && cl.started {
		cl.c.setDeadline(time.Now().Add(time.Second))
		_, _ = cl.closeSession()
	}
	return cl.c.close()
}

func isLockedError(err error) bool {
	var de dbus.Error
	return errors.As(err, &de) && de.Name == "org.freedesktop.Secret.Error.IsLocked"
}

// notImplemented is in gnome-keyring's answer to a brand-new connection
// whose registration it has not finished ("Method SearchItems is not
// implemented on interface org.freedesktop.Secret.Service"): the method
// exists, and the same call a moment later succeeds.
const notImplemented = "is not implemented on interface org.freedesktop.Secret"

// Transient recognises an answer that a retry clears (see notImplemented).
// Its error name, UnknownMethod, is also what a vanished object gets:
// Transient is asked first, so that a stored token is never taken for a
// deleted one because the service was not ready.
func Transient(err error) bool {
	return err != nil && strings.Contains(err.Error(), notImplemented)
}

// Vanished recognises the errors a Secret Service gives for an item that
// no longer exists (deleted by a parallel write between a search and a
// read), and never a Transient one.
func Vanished(err error) bool {
	var de dbus.Error
	if !errors.As(err, &de) || Transient(err) {
		return false
	}
	switch de.Name {
	case "org.freedesktop.DBus.Error.UnknownObject",
		"org.freedesktop.DBus.Error.UnknownInterface",
		"org.freedesktop.DBus.Error.UnknownMethod",
		"org.freedesktop.Secret.Error.NoSuchObject":
		return true
	case "org.freedesktop.DBus.Error.InvalidArgs":
		// KWallet's GetSecrets of an item that is gone.
		return strings.HasPrefix(errorText(de), "Can't find item at path")
	}
	return false
}

// errorText is a D-Bus error's message.
func errorText(de dbus.Error) string {
	if len(de.Body) > 0 {
		if s, ok := de.Body[0].(string); ok {
			return s
		}
	}
	return ""
}
