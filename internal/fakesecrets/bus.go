// Package fakesecrets is test equipment for keyring faults: a private D-Bus
// session bus (a real dbus-daemon) and, on it, an in-process fake of the
// freedesktop Secret Service with the methods go-keyring calls, whose
// faults a test switches on: drop off the bus in the middle of a call as if
// its process died, never answer a call, or keep the collection locked
// behind an unlock prompt that never completes (or is dismissed).
//
// The program under test is another process that finds the bus through
// DBUS_SESSION_BUS_ADDRESS, so the fake runs in the test process.
//
// Client talks to any Secret Service on a bus (the fake or a real
// gnome-keyring) to lock a collection and read items back.
package fakesecrets

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Bus is a private dbus-daemon for one test.
type Bus struct {
	// Address is the value for DBUS_SESSION_BUS_ADDRESS.
	Address string
	cmd     *exec.Cmd
}

// BusOptions configures StartBus.
type BusOptions struct {
	// Activation lets the bus start services from the system's session
	// service directories on demand, as a desktop session bus does (so a
	// real gnome-keyring can start its unlock prompter, which fails without
	// a display: the bus runs without DISPLAY and WAYLAND_DISPLAY, so no
	// dialog ever opens on a developer's screen). Without it nothing is
	// activatable: a name has an owner only once a test starts one, so an
	// empty bus really has no Secret Service (the system's files would
	// otherwise start gnome-keyring).
	Activation bool
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  %s
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// StartBus starts a private session bus, stopped when the test ends.
func StartBus(t testing.TB, opts BusOptions) *Bus {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Fatalf("fakesecrets: dbus-daemon is not installed (Debian package dbus): %v", err)
	}
	// Not t.TempDir: a unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "fakesecrets-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	servicedirs := ""
	if opts.Activation {
		servicedirs = "<standard_session_servicedirs/>"
	}
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "socket"), servicedirs), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--nofork", "--print-address", "--config-file="+conf)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISPLAY=") && !strings.HasPrefix(kv, "WAYLAND_DISPLAY=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("fakesecrets: starting dbus-daemon: %v", err)
	}
	b := &Bus{cmd: cmd}
	t.Cleanup(b.stop)
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			b.stop() // stderr is complete once dbus-daemon has exited
			t.Fatalf("fakesecrets: dbus-daemon printed no address: %s", stderr.String())
		}
		b.Address = a
	case <-time.After(10 * time.Second):
		b.stop()
		t.Fatalf("fakesecrets: dbus-daemon did not start within 10s: %s", stderr.String())
	}
	return b
}

func (b *Bus) stop() {
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
}
