//go:build linux

package ssread

import (
	"errors"
	"testing"
)

func TestSocketAddress(t *testing.T) {
	tests := []struct {
		addr, runtimeDir, want string
		unsupported            bool
	}{
		{addr: "unix:path=/run/user/1000/bus", want: "/run/user/1000/bus"},
		{addr: "unix:path=/tmp/dbus-x,guid=0123abcd", want: "/tmp/dbus-x"},
		{addr: "unix:guid=0123abcd,path=/tmp/dbus-x", want: "/tmp/dbus-x"},
		{addr: "unix:abstract=/tmp/dbus-AbC,guid=1", want: "@/tmp/dbus-AbC"},
		{addr: "unix:path=/tmp/with%20space%2c", want: "/tmp/with space,"},
		{addr: "tcp:host=localhost,port=1;unix:path=/second", want: "/second"},
		{addr: "", runtimeDir: "/run/user/7", want: "/run/user/7/bus"},
		{addr: "", unsupported: true},
		{addr: "tcp:host=localhost,port=1", unsupported: true},
		{addr: "unix:tmpdir=/tmp", unsupported: true},
		{addr: "unix:path=", unsupported: true},
		{addr: "unix:path=/bad%zz", unsupported: true},
		{addr: "unix:path=/truncated%2", unsupported: true},
		{addr: "garbage", unsupported: true},
	}
	for _, tt := range tests {
		got, err := socketAddress(tt.addr, tt.runtimeDir)
		if tt.unsupported {
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("socketAddress(%q, %q) = %q, %v; want ErrUnsupported", tt.addr, tt.runtimeDir, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("socketAddress(%q, %q) = %q, %v; want %q", tt.addr, tt.runtimeDir, got, err, tt.want)
		}
	}
}
