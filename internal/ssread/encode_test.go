//go:build linux

package ssread

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
)

// TestCallThatCannotBeEncoded: a call whose message cannot be encoded (an
// invalid object path, say) fails as itself when the calls are sent, and
// nothing is sent; it never turns into a reply that did not come.
func TestCallThatCannotBeEncoded(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	c := &conn{sock: client, r: bufio.NewReader(client)}
	good := c.call(busName, busPath, busName, "Hello", 0)
	bad := c.call(ssName, dbus.ObjectPath("not a path"), ssService, "GetSecrets", 0)
	if good == 0 || bad == 0 || good == bad {
		t.Fatalf("serials %d and %d: want two distinct non-zero serials", good, bad)
	}
	err := c.flush()
	if err == nil || !strings.Contains(err.Error(), "encoding the GetSecrets call") {
		t.Fatalf("flush: %v; want an error naming the call that could not be encoded", err)
	}
	if err := c.start(); err == nil {
		t.Fatal("start after an encoding failure must fail too")
	}
}
