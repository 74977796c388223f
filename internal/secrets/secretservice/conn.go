//go:build linux || freebsd || openbsd || netbsd || dragonfly

package secretservice

import (
	"bufio"
	"bytes"
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

// readBuffer is the connection's read buffer, and so also the longest
// authentication answer it reads.
const readBuffer = 8192

// errUnsupported: the session bus is not one this client can reach (a
// transport other than a unix socket, or an authentication other than
// EXTERNAL).
var errUnsupported = errors.New("session bus not reachable")

// conn is one connection to the session bus, used by one goroutine. It
// speaks D-Bus itself and uses godbus only to encode and decode messages,
// so that authentication, Hello and the first call go out in one write.
type conn struct {
	sock   net.Conn
	r      *bufio.Reader
	out    bytes.Buffer
	serial uint32
	// err is the first call that could not be encoded: flush reports it
	// instead of sending, so that it surfaces as itself, not as a reply
	// that never came.
	err error
	// signals are signals read while waiting for replies, kept for
	// waitSignal (a prompt's Completed may come before its call's reply).
	signals []*dbus.Message
	hello   uint32
}

// dial connects to the session bus and queues the authentication and
// Hello; start sends them with the calls queued after them.
func dial(deadline time.Time) (*conn, error) {
	addr, err := socketAddress(os.Getenv("DBUS_SESSION_BUS_ADDRESS"), os.Getenv("XDG_RUNTIME_DIR"))
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Deadline: deadline}
	sock, err := d.Dial("unix", addr)
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
	c.hello = c.call(busName, busPath, busName, "Hello", 0)
	return c, nil
}

func (c *conn) setDeadline(t time.Time) { _ = c.sock.SetDeadline(t) }

func (c *conn) close() error { return c.sock.Close() }

// start sends the queued authentication, Hello and calls, then reads the
// bus's answer to the authentication. The Hello reply is read with the
// first call's (see wait).
func (c *conn) start() error {
	if err := c.flush(); err != nil {
		return err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%w: authentication answer longer than %d bytes", errUnsupported, readBuffer)
		}
		return fmt.Errorf("session bus authentication: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("OK ")) {
		// REJECTED (another mechanism is required) or ERROR.
		return fmt.Errorf("%w: the bus answered %q to EXTERNAL", errUnsupported, strings.TrimSpace(string(line)))
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

// roundTrip sends what is queued and waits for the replies to serials.
func (c *conn) roundTrip(serials ...uint32) (replies, error) {
	if err := c.flush(); err != nil {
		return nil, err
	}
	return c.wait(serials...)
}

// wait reads messages until every serial has its reply (and the Hello's,
// the first time); signals are kept for waitSignal.
func (c *conn) wait(serials ...uint32) (replies, error) {
	if c.hello != 0 {
		serials = append(serials, c.hello)
	}
	out := make(replies, len(serials))
	for len(out) < len(serials) {
		m, err := dbus.DecodeMessage(c.r)
		if err != nil {
			return nil, fmt.Errorf("reading from the session bus: %w", err)
		}
		switch m.Type {
		case dbus.TypeSignal:
			c.signals = append(c.signals, m)
			continue
		case dbus.TypeMethodReply, dbus.TypeError:
		default:
			continue
		}
		v, ok := m.Headers[dbus.FieldReplySerial].Value().(uint32)
		if ok && slices.Contains(serials, v) {
			out[v] = m
		}
	}
	if c.hello != 0 {
		if _, err := out.body(c.hello); err != nil {
			return nil, fmt.Errorf("bus Hello: %w", err)
		}
		c.hello = 0
	}
	return out, nil
}

// waitSignal returns the first signal (already read or still to come)
// from path with the given interface and member.
func (c *conn) waitSignal(path dbus.ObjectPath, iface, member string) (*dbus.Message, error) {
	match := func(m *dbus.Message) bool {
		p, _ := m.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
		i, _ := m.Headers[dbus.FieldInterface].Value().(string)
		n, _ := m.Headers[dbus.FieldMember].Value().(string)
		return p == path && i == iface && n == member
	}
	if i := slices.IndexFunc(c.signals, match); i >= 0 {
		m := c.signals[i]
		c.signals = slices.Delete(c.signals, i, i+1)
		return m, nil
	}
	for {
		m, err := dbus.DecodeMessage(c.r)
		if err != nil {
			return nil, fmt.Errorf("reading from the session bus: %w", err)
		}
		if m.Type == dbus.TypeSignal && match(m) {
			return m, nil
		}
	}
}

// socketAddress picks the unix socket of a D-Bus address ("unix:path=..."
// or "unix:abstract=...", the first of several separated by ';'), or
// $XDG_RUNTIME_DIR/bus when the address is unset, as libdbus does.
func socketAddress(addr, runtimeDir string) (string, error) {
	if addr == "" {
		if runtimeDir == "" {
			return "", fmt.Errorf("%w: DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset", errNoBus)
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
	return "", fmt.Errorf("%w: DBUS_SESSION_BUS_ADDRESS names no unix socket (path= or abstract=)", errUnsupported)
}

// errNoBus: no session bus is configured at all (an SSH session, a
// container, CI).
var errNoBus = errors.New("no D-Bus session bus")

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
