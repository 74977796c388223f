//go:build unix

package regfile

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOpenRefusesWhatIsNotAFile(t *testing.T) {
	dir, err := os.MkdirTemp("", "rf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("content"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	sub := filepath.Join(dir, "dir")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	devLink := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", devLink); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		follow Follow
		want   string // "" for content, "missing" for fs.ErrNotExist, else a phrase of the error
	}{
		{file, NoLinks, ""},
		{file, FollowLinks, ""},
		{link, FollowLinks, ""},
		{link, NoLinks, "a symbolic link"},
		{fifo, NoLinks, "a named pipe (FIFO)"},
		{fifo, FollowLinks, "a named pipe (FIFO)"},
		{sock, NoLinks, "a socket"},
		{sub, NoLinks, "a directory"},
		{devLink, FollowLinks, "a character device"},
		{devLink, NoLinks, "a symbolic link"},
		{dangling, FollowLinks, "does not exist"},
		{dangling, NoLinks, "a symbolic link"},
		{filepath.Join(dir, "absent"), NoLinks, "missing"},
	}
	for _, tt := range tests {
		data, err := ReadFile(tt.path, tt.follow)
		switch {
		case tt.want == "":
			if err != nil || string(data) != "content" {
				t.Errorf("ReadFile(%s, %v) = %q, %v", tt.path, tt.follow, data, err)
			}
		case tt.want == "missing":
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("ReadFile(%s) = %v, want fs.ErrNotExist", tt.path, err)
			}
		default:
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("ReadFile(%s, %v) = %v, want an error naming it and %q", tt.path, tt.follow, err, tt.want)
			}
		}
	}
	for _, p := range []string{fifo, sock, sub, link} {
		if _, err := OpenLock(p); !errors.Is(err, ErrNotRegular) {
			t.Errorf("OpenLock(%s) = %v, want ErrNotRegular", p, err)
		}
	}
	lock := filepath.Join(dir, "lock")
	f, err := OpenLock(lock)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st, err := os.Stat(lock); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v, %v", st, err)
	}
	// A named pipe nobody reads is refused at once; a directory too.
	if _, err := OpenAppend(fifo); err == nil || !strings.Contains(err.Error(), "nobody reads") {
		t.Errorf("OpenAppend(fifo) = %v", err)
	}
	if _, err := OpenAppend(sub); err == nil {
		t.Error("OpenAppend(dir) succeeded")
	}
}
