//go:build linux

// Package ssread reads one secret from the freedesktop.org Secret Service
// in as few round trips as the protocol (and gnome-keyring) allow, for
// get, which git runs on every fetch, clone and push. It speaks to the
// session bus socket itself and uses godbus only to encode and decode
// messages, so that authentication, Hello and the first call go out in one
// write; with the item's path known, no call depends on the number of
// items in the keyring.
//
// It reads the items go-keyring writes (attributes "service" and
// "username") and never writes, unlocks or prompts: a locked item is
// ErrLocked, for the caller's unlocking path to handle.
package ssread

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// Errors of Read and Find; other errors are the service's (a dbus.Error)
// or the connection's.
var (
	ErrNotFound = errors.New("no such item in the Secret Service")
	ErrLocked   = errors.New("the item is locked")
	// ErrUnsupported means this reader cannot talk to the session bus
	// (a transport other than a unix socket, or an authentication other
	// than EXTERNAL): a full D-Bus client must.
	ErrUnsupported = errors.New("session bus not reachable by the lean reader")
)

// Secret Service and bus names.
const (
	ssName       = "org.freedesktop.secrets"
	ssPath       = "/org/freedesktop/secrets"
	ssService    = "org.freedesktop.Secret.Service"
	ssSession    = "org.freedesktop.Secret.Session"
	busName      = "org.freedesktop.DBus"
	busPath      = "/org/freedesktop/DBus"
	propsIface   = "org.freedesktop.DBus.Properties"
	readBuffer   = 8192 // also the longest authentication answer read
	defaultLimit = 5 * time.Second
)

// Read returns the secret of the item whose attributes are
// {service, username: id}, and the item's object path. It makes three
// calls to the service, the first pipelined with the connection's set-up
// (one, when a search finds nothing).
//
// hint and want make the common read independent of the keyring's size:
// hint is the path the item had when it was written, and want recognises
// the value written there (the index keeps a salted MAC of it). The secret
// at hint is returned only if want accepts it; otherwise, or without
// them, the item is searched for by its attributes. The value is the
// proof, not the item's attributes: reading those is a property get on
// the item, which gnome-keyring 42 answers by aborting when it does not
// know the client (one that has just died, a git killed by Ctrl-C say).
func Read(ctx context.Context, service, id string, hint dbus.ObjectPath, want func(string) bool) (string, dbus.ObjectPath, error) {
	c, err := dial(ctx)
	if err != nil {
		return "", "", err
	}
	defer c.close()
	attrs := map[string]string{"service": service, "username": id}
	direct := want != nil && hint.IsValid() && hint != "/"

	// OpenSession is never among gnome-keyring's first messages from a
	// connection: gnome-keyring 42 registers a client asynchronously and,
	// when a method overtakes that (seen after libsecret clients came and
	// went), most methods fail ("not implemented", retried by the caller)
	// but OpenSession aborts the daemon. So the first call is one that
	// fails gracefully, SearchItems or, when the item is known, a read of
	// the service's Collections property, and OpenSession waits for its
	// answer.
	hello := c.call(busName, busPath, busName, "Hello", 0)
	var first uint32
	if direct {
		first = c.call(ssName, ssPath, propsIface, "Get", 0, ssService, "Collections")
	} else {
		first = c.call(ssName, ssPath, ssService, "SearchItems", 0, attrs)
	}
	if err := c.start(); err != nil {
		return "", "", err
	}
	rs, err := c.wait(hello, first)
	if err != nil {
		return "", "", err
	}
	if _, err := rs.body(hello); err != nil {
		return "", "", fmt.Errorf("bus Hello: %w", err)
	}
	var item dbus.ObjectPath
	if direct {
		if _, err := rs.body(first); err != nil {
			return "", "", fmt.Errorf("reading the Secret Service's collections: %w", err)
		}
	} else if item, err = searched(rs, first); err != nil {
		return "", item, err // not found or locked: no session needed
	}
	open := c.call(ssName, ssPath, ssService, "OpenSession", 0, "plain", dbus.MakeVariant(""))
	if err := c.flush(); err != nil {
		return "", "", err
	}
	ro, err := c.wait(open)
	if err != nil {
		return "", "", err
	}
	var session dbus.ObjectPath
	body, err := ro.body(open)
	if err == nil {
		var ignored dbus.Variant
		err = dbus.Store(body, &ignored, &session)
	}
	if err != nil {
		return "", "", fmt.Errorf("OpenSession: %w", err)
	}
	// Close the session ourselves rather than leave it to the daemon's
	// clean-up of a vanished client: gnome-keyring 42 has aborted (a glib
	// assertion) on clients that left within a millisecond or two of
	// opening one. No reply is awaited: the bus delivers the Close before
	// it reports our disconnect, which is all the ordering needed.
	defer func() {
		c.call(ssName, session, ssSession, "Close", dbus.FlagNoReplyExpected)
		_ = c.flush()
	}()

	if direct {
		v, found, err := c.getSecret(hint, session)
		if err == nil && found && want(v) {
			return v, hint, nil
		}
		// Deleted, replaced, renumbered or locked since it was written:
		// search as if there were no hint.
		search := c.call(ssName, ssPath, ssService, "SearchItems", 0, attrs)
		if err := c.flush(); err != nil {
			return "", "", err
		}
		if rs, err = c.wait(search); err != nil {
			return "", "", err
		}
		if item, err = searched(rs, search); err != nil {
			return "", item, err
		}
	}
	v, found, err := c.getSecret(item, session)
	switch {
	case Vanished(err):
		// Deleted between the search and the read (a parallel
		// replacement): gone is not-found, not an unusable keyring.
		return "", "", ErrNotFound
	case err != nil:
		return "", "", err
	case !found:
		// The service leaves out items it will not unlock for us.
		return "", item, ErrLocked
	}
	return v, item, nil
}

// searched reads a SearchItems reply: the first unlocked item, or
// ErrLocked (with the first locked one) or ErrNotFound.
func searched(rs replies, serial uint32) (dbus.ObjectPath, error) {
	body, err := rs.body(serial)
	var unlocked, locked []dbus.ObjectPath
	if err == nil {
		err = dbus.Store(body, &unlocked, &locked)
	}
	switch {
	case err != nil:
		return "", fmt.Errorf("SearchItems: %w", err)
	case len(unlocked) > 0:
		return unlocked[0], nil
	case len(locked) > 0:
		return locked[0], ErrLocked
	}
	return "", ErrNotFound
}

// getSecret reads one item's secret; found is false when the service left
// it out of its answer (locked).
func (c *conn) getSecret(item, session dbus.ObjectPath) (v string, found bool, err error) {
	get := c.call(ssName, ssPath, ssService, "GetSecrets", 0, []dbus.ObjectPath{item}, session)
	if err := c.flush(); err != nil {
		return "", false, err
	}
	rs, err := c.wait(get)
	if err != nil {
		return "", false, err
	}
	body, err := rs.body(get)
	var secrets map[dbus.ObjectPath]secret
	if err == nil {
		err = dbus.Store(body, &secrets)
	}
	if err != nil {
		return "", false, fmt.Errorf("GetSecrets: %w", err)
	}
	s, found := secrets[item]
	return string(s.Value), found, nil
}

// Find returns the object path of the item {service, username: id}, for
// Read's hint. A locked item is found too: its path is what matters.
func Find(ctx context.Context, service, id string) (dbus.ObjectPath, error) {
	c, err := dial(ctx)
	if err != nil {
		return "", err
	}
	defer c.close()
	hello := c.call(busName, busPath, busName, "Hello", 0)
	search := c.call(ssName, ssPath, ssService, "SearchItems", 0, map[string]string{"service": service, "username": id})
	if err := c.start(); err != nil {
		return "", err
	}
	rs, err := c.wait(hello, search)
	if err != nil {
		return "", err
	}
	if _, err := rs.body(hello); err != nil {
		return "", fmt.Errorf("bus Hello: %w", err)
	}
	item, err := searched(rs, search)
	if errors.Is(err, ErrLocked) {
		return item, nil // its path is all Find is asked for
	}
	return item, err
}

// secret is the Secret Service's Secret struct, (oayays).
type secret struct {
	Session     dbus.ObjectPath
	Parameters  []byte
	Value       []byte
	ContentType string
}

// conn is one connection to the session bus, used by one goroutine.
type conn struct {
	sock   net.Conn
	r      *bufio.Reader
	out    bytes.Buffer
	serial uint32
	// err is the first call that could not be encoded: flush reports it
	// instead of sending, so that it surfaces as itself, not as a reply
	// that never came.
	err error
}

// dial connects to the session bus and queues the authentication; start
// sends it with the calls queued after it.
func dial(ctx context.Context) (*conn, error) {
	addr, err := socketAddress(os.Getenv("DBUS_SESSION_BUS_ADDRESS"), os.Getenv("XDG_RUNTIME_DIR"))
	if err != nil {
		return nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultLimit)
	}
	d := net.Dialer{Deadline: deadline}
	sock, err := d.DialContext(ctx, "unix", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to the session bus: %w", err)
	}
	_ = sock.SetDeadline(deadline)
	c := &conn{sock: sock, r: bufio.NewReaderSize(sock, readBuffer)}
	// EXTERNAL with our uid, and BEGIN without waiting for OK, as sd-bus
	// does: the bus reads the messages that follow once it has agreed.
	c.out.WriteString("\x00AUTH EXTERNAL ")
	c.out.WriteString(hex.EncodeToString([]byte(strconv.Itoa(os.Getuid()))))
	c.out.WriteString("\r\nBEGIN\r\n")
	return c, nil
}

func (c *conn) close() { _ = c.sock.Close() }

// start sends the queued authentication and calls, then reads the bus's
// answer to the authentication.
func (c *conn) start() error {
	if err := c.flush(); err != nil {
		return err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%w: authentication answer longer than %d bytes", ErrUnsupported, readBuffer)
		}
		return fmt.Errorf("session bus authentication: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("OK ")) {
		// REJECTED (another mechanism is required) or ERROR.
		return fmt.Errorf("%w: the bus answered %q to EXTERNAL", ErrUnsupported, strings.TrimSpace(string(line)))
	}
	return nil
}

// call queues a method call and returns its serial.
func (c *conn) call(dest string, path dbus.ObjectPath, iface, member string, flags dbus.Flags, body ...any) uint32 {
	c.serial++
	msg := &dbus.Message{
		Type:  dbus.TypeMethodCall,
		Flags: flags,
		Headers: map[dbus.HeaderField]dbus.Variant{
			dbus.FieldDestination: dbus.MakeVariant(dest),
			dbus.FieldPath:        dbus.MakeVariant(path),
			dbus.FieldInterface:   dbus.MakeVariant(iface),
			dbus.FieldMember:      dbus.MakeVariant(member),
		},
		Body: body,
	}
	if len(body) > 0 {
		msg.Headers[dbus.FieldSignature] = dbus.MakeVariant(dbus.SignatureOf(body...))
	}
	var buf bytes.Buffer
	if err := msg.EncodeTo(&buf, binary.LittleEndian); err != nil {
		if c.err == nil {
			c.err = fmt.Errorf("encoding the %s call: %w", member, err)
		}
		return c.serial
	}
	// godbus keeps the serial unexported; it sits at bytes 8-11 of the
	// fixed header.
	b := buf.Bytes()
	binary.LittleEndian.PutUint32(b[8:12], c.serial)
	c.out.Write(b)
	return c.serial
}

func (c *conn) flush() error {
	if c.err != nil {
		return c.err
	}
	if c.out.Len() == 0 {
		return nil
	}
	_, err := c.sock.Write(c.out.Bytes())
	c.out.Reset()
	if err != nil {
		return fmt.Errorf("writing to the session bus: %w", err)
	}
	return nil
}

// replies holds the answers to calls by serial.
type replies map[uint32]*dbus.Message

// body returns a reply's body, or its error as a dbus.Error.
func (r replies) body(serial uint32) ([]any, error) {
	m := r[serial]
	if m == nil {
		return nil, errors.New("no reply")
	}
	if m.Type == dbus.TypeError {
		name, _ := m.Headers[dbus.FieldErrorName].Value().(string)
		return nil, dbus.Error{Name: name, Body: m.Body}
	}
	return m.Body, nil
}

// wait reads messages until every serial has its reply; signals (the
// bus's NameAcquired) are skipped.
func (c *conn) wait(serials ...uint32) (replies, error) {
	out := make(replies, len(serials))
	want := 0
	for _, s := range serials {
		if s != 0 {
			want++
		}
	}
	for len(out) < want {
		m, err := dbus.DecodeMessage(c.r)
		if err != nil {
			return nil, fmt.Errorf("reading from the session bus: %w", err)
		}
		if m.Type != dbus.TypeMethodReply && m.Type != dbus.TypeError {
			continue
		}
		v, ok := m.Headers[dbus.FieldReplySerial].Value().(uint32)
		if !ok {
			continue
		}
		if v != 0 && slices.Contains(serials, v) {
			out[v] = m
		}
	}
	return out, nil
}

// socketAddress picks the unix socket of a D-Bus address ("unix:path=..."
// or "unix:abstract=...", the first of several separated by ';'), or
// $XDG_RUNTIME_DIR/bus when the address is unset, as libdbus does.
func socketAddress(addr, runtimeDir string) (string, error) {
	if addr == "" {
		if runtimeDir == "" {
			return "", fmt.Errorf("%w: DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset", ErrUnsupported)
		}
		return filepath.Join(runtimeDir, "bus"), nil
	}
	for _, one := range strings.Split(addr, ";") {
		transport, params, ok := strings.Cut(one, ":")
		if !ok || transport != "unix" {
			continue
		}
		for _, kv := range strings.Split(params, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v, err := unescape(v)
			if err != nil || v == "" {
				continue
			}
			switch k {
			case "path":
				return v, nil
			case "abstract":
				return "@" + v, nil
			}
		}
	}
	return "", fmt.Errorf("%w: no unix path or abstract socket in DBUS_SESSION_BUS_ADDRESS", ErrUnsupported)
}

// unescape decodes a D-Bus address value's %XX escapes.
func unescape(v string) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+2 >= len(v) {
			return "", errors.New("truncated escape")
		}
		x, err := strconv.ParseUint(v[i+1:i+3], 16, 8)
		if err != nil {
			return "", err
		}
		b.WriteByte(byte(x))
		i += 2
	}
	return b.String(), nil
}
