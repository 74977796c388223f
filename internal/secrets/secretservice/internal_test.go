//go:build linux

package secretservice

import (
	"bufio"
	"errors"
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

func TestSocketAddress(t *testing.T) {
	tests := []struct {
		addr, runtimeDir, want string
		err                    error
	}{
		{addr: "unix:path=/run/user/1000/bus", want: "/run/user/1000/bus"},
		{addr: "unix:path=/tmp/dbus-x,guid=0123abcd", want: "/tmp/dbus-x"},
		{addr: "unix:guid=0123abcd,path=/tmp/dbus-x", want: "/tmp/dbus-x"},
		{addr: "unix:abstract=/tmp/dbus-AbC,guid=1", want: "@/tmp/dbus-AbC"},
		{addr: "unix:path=/tmp/with%20space%2c", want: "/tmp/with space,"},
		{addr: "tcp:host=localhost,port=1;unix:path=/second", want: "/second"},
		{addr: "", runtimeDir: "/run/user/7", want: "/run/user/7/bus"},
		{addr: "", err: errNoBus},
		{addr: "tcp:host=localhost,port=1", err: errUnsupported},
		{addr: "unix:tmpdir=/tmp", err: errUnsupported},
		{addr: "unix:path=", err: errUnsupported},
		{addr: "unix:path=/bad%zz", err: errUnsupported},
		{addr: "unix:path=/truncated%2", err: errUnsupported},
		{addr: "garbage", err: errUnsupported},
	}
	for _, tt := range tests {
		got, err := socketAddress(tt.addr, tt.runtimeDir)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("socketAddress(%q, %q) = %q, %v; want %v", tt.addr, tt.runtimeDir, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("socketAddress(%q, %q) = %q, %v; want %q", tt.addr, tt.runtimeDir, got, err, tt.want)
		}
	}
}
