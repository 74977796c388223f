//go:build linux

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	secretsName    = "org.freedesktop.secrets"
	keyringPass    = "bbtoken-bench"
	loginKeyring   = "login.keyring"
	itemInterface  = "org.freedesktop.Secret.Item"
	collInterface  = "org.freedesktop.Secret.Collection"
	loginColl      = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	defaultAlias   = dbus.ObjectPath("/org/freedesktop/secrets/aliases/default")
	daemonWaitTime = 15 * time.Second
)

// daemon is the gnome-keyring-daemon this benchmark started on its private
// session bus. Its data lives under $XDG_DATA_HOME/keyrings.
type daemon struct {
	pid     uint32
	dataDir string // …/keyrings
	conn    *dbus.Conn
}

// daemonLog collects what the keyring daemons print.
var daemonLog = os.DevNull

func keyringsDir() string {
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		data = filepath.Join(os.Getenv("HOME"), ".local", "share")
	}
	return filepath.Join(data, "keyrings")
}

func sessionConn() (*dbus.Conn, error) {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		return nil, errors.New("no DBUS_SESSION_BUS_ADDRESS: run bench/run.sh, which starts a private D-Bus session")
	}
	return dbus.SessionBus()
}

func nameOwned(conn *dbus.Conn) (bool, error) {
	var has bool
	err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, secretsName).Store(&has)
	return has, err
}

// startDaemon starts gnome-keyring-daemon unlocked from stdin (creating the
// login keyring on first start) and waits until it owns the Secret Service
// name on the bus.
func startDaemon() (*daemon, error) {
	conn, err := sessionConn()
	if err != nil {
		return nil, err
	}
	if owned, err := nameOwned(conn); err != nil {
		return nil, err
	} else if owned {
		return nil, errors.New("a Secret Service already runs on this session bus")
	}
	dir := keyringsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// In the foreground, so that what it logs (its own assertion
	// failures, should it abort) lands in daemonLog.
	log, err := os.OpenFile(daemonLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	cmd.Stdin = strings.NewReader(keyringPass)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("gnome-keyring-daemon: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reaps it once stop (or a crash) ends it
	deadline := time.Now().Add(daemonWaitTime)
	for {
		owned, err := nameOwned(conn)
		if err != nil {
			return nil, err
		}
		if owned {
			break
		}
		if time.Now().After(deadline) {
			return nil, errors.New("gnome-keyring-daemon did not take the Secret Service name")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var pid uint32
	if err := conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, secretsName).Store(&pid); err != nil {
		return nil, err
	}
	d := &daemon{pid: pid, dataDir: dir, conn: conn}
	// The login collection must exist and be unlocked: nothing may prompt.
	locked, err := d.conn.Object(secretsName, loginColl).GetProperty(collInterface + ".Locked")
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("the login collection is missing: %w", err)
	}
	if l, _ := locked.Value().(bool); l {
		d.stop()
		return nil, errors.New("the login collection is locked")
	}
	return d, nil
}

// stop ends the daemon this benchmark started (by its pid) and waits until
// the name is released.
func (d *daemon) stop() {
	if d == nil || d.pid == 0 {
		return
	}
	_ = syscall.Kill(int(d.pid), syscall.SIGTERM)
	deadline := time.Now().Add(daemonWaitTime)
	for time.Now().Before(deadline) {
		owned, err := nameOwned(d.conn)
		if err == nil && !owned && syscall.Kill(int(d.pid), 0) != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if syscall.Kill(int(d.pid), 0) == nil {
		_ = syscall.Kill(int(d.pid), syscall.SIGKILL)
		time.Sleep(100 * time.Millisecond)
	}
	d.pid = 0
}

// items lists the login collection's items.
func (d *daemon) items() ([]dbus.ObjectPath, error) {
	v, err := d.conn.Object(secretsName, loginColl).GetProperty(collInterface + ".Items")
	if err != nil {
		return nil, err
	}
	paths, ok := v.Value().([]dbus.ObjectPath)
	if !ok {
		return nil, fmt.Errorf("unexpected Items type %T", v.Value())
	}
	return paths, nil
}

// fingerprint describes everything a write could change: each keyring
// item's Modified time, the keyring file, and every file in dirs.
func (d *daemon) fingerprint(dirs ...string) (map[string]string, error) {
	fp := map[string]string{}
	items, err := d.items()
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		v, err := d.conn.Object(secretsName, it).GetProperty(itemInterface + ".Modified")
		if err != nil {
			return nil, err
		}
		fp["item "+string(it)] = fmt.Sprint(v.Value())
	}
	fp["items"] = fmt.Sprint(len(items))
	for _, dir := range append([]string{d.dataDir}, dirs...) {
		err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			st := info.Sys().(*syscall.Stat_t)
			if e.IsDir() {
				fp["dir "+p] = fmt.Sprint(info.ModTime().UnixNano())
				return nil
			}
			fp["file "+p] = fmt.Sprint(info.Size(), info.ModTime().UnixNano(), st.Ino)
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return fp, nil
}

// watch returns an Around hook: a fingerprint before a run and, after it,
// whether anything changed and what.
func (d *daemon) watch(dirs ...string) func() (func() (bool, string), error) {
	return func() (func() (bool, string), error) {
		before, err := d.fingerprint(dirs...)
		if err != nil {
			return nil, err
		}
		return func() (bool, string) {
			after, err := d.fingerprint(dirs...)
			if err != nil {
				return true, "fingerprint failed: " + err.Error()
			}
			var diff []string
			for k, v := range after {
				if before[k] != v {
					diff = append(diff, k)
				}
			}
			for k := range before {
				if _, ok := after[k]; !ok {
					diff = append(diff, k+" (gone)")
				}
			}
			slices.Sort(diff)
			return len(diff) > 0, strings.Join(diff, ", ")
		}, nil
	}
}
