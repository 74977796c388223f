package fakesecrets

import (
	"fmt"

	"github.com/godbus/dbus/v5"
)

// Client talks to whatever owns org.freedesktop.secrets on a bus: the fake,
// or a real gnome-keyring a test started there.
type Client struct {
	conn *dbus.Conn
	svc  dbus.BusObject
}

// Dial connects to the bus at address.
func Dial(address string) (*Client, error) {
	conn, err := dbus.Connect(address)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, svc: conn.Object(ServiceName, ServicePath)}, nil
}

// Close disconnects.
func (c *Client) Close() error { return c.conn.Close() }

// HasOwner reports whether anything owns org.freedesktop.secrets.
func (c *Client) HasOwner() (bool, error) {
	var has bool
	err := c.conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, ServiceName).Store(&has)
	return has, err
}

// Lock locks a collection (the Secret Service's Lock, which needs no
// prompt).
func (c *Client) Lock(collection dbus.ObjectPath) error {
	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	if err := c.svc.Call(ifaceService+".Lock", 0, []dbus.ObjectPath{collection}).Store(&locked, &prompt); err != nil {
		return fmt.Errorf("locking %s: %w", collection, err)
	}
	if prompt != noPrompt || len(locked) != 1 || locked[0] != collection {
		return fmt.Errorf("locking %s: locked %v, prompt %s", collection, locked, prompt)
	}
	return nil
}

// UnlockWithMasterPassword unlocks a gnome-keyring collection without a
// prompt, through gnome-keyring's interface for its own tests.
func (c *Client) UnlockWithMasterPassword(collection dbus.ObjectPath, password string) error {
	session, err := c.openSession()
	if err != nil {
		return err
	}
	defer c.closeSession(session)
	secret := Secret{Session: session, Parameters: []byte{}, Value: []byte(password), ContentType: "text/plain"}
	err = c.svc.Call("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.UnlockWithMasterPassword", 0, collection, secret).Err
	if err != nil {
		return fmt.Errorf("unlocking %s: %w", collection, err)
	}
	return nil
}

// Search returns the unlocked and the locked items whose attributes
// include attrs, over all collections.
func (c *Client) Search(attrs map[string]string) (unlocked, locked []dbus.ObjectPath, err error) {
	err = c.svc.Call(ifaceService+".SearchItems", 0, attrs).Store(&unlocked, &locked)
	return unlocked, locked, err
}

// Secrets reads the items whose attributes include attrs: object path to
// secret value. It fails if any of them is locked.
func (c *Client) Secrets(attrs map[string]string) (map[dbus.ObjectPath]string, error) {
	unlocked, locked, err := c.Search(attrs)
	if err != nil {
		return nil, fmt.Errorf("searching items: %w", err)
	}
	if len(locked) > 0 {
		return nil, fmt.Errorf("%d item(s) locked", len(locked))
	}
	out := map[dbus.ObjectPath]string{}
	if len(unlocked) == 0 {
		return out, nil
	}
	session, err := c.openSession()
	if err != nil {
		return nil, err
	}
	defer c.closeSession(session)
	for _, p := range unlocked {
		var s Secret
		if err := c.conn.Object(ServiceName, p).Call(ifaceItem+".GetSecret", 0, session).Store(&s); err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		out[p] = string(s.Value)
	}
	return out, nil
}

func (c *Client) openSession() (dbus.ObjectPath, error) {
	var out dbus.Variant
	var session dbus.ObjectPath
	if err := c.svc.Call(ifaceService+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&out, &session); err != nil {
		return "", fmt.Errorf("opening a session: %w", err)
	}
	return session, nil
}

func (c *Client) closeSession(session dbus.ObjectPath) {
	_ = c.conn.Object(ServiceName, session).Call(ifaceSession+".Close", 0).Err
}
