// Package regfile opens the files the helper keeps and reads (its index,
// journal, lock and notes, a credential-store file, a trace file) so that
// something else found at their path never blocks it: opening a named pipe
// waits for a writer, reading a device may never end, and git waits on the
// helper. Each open checks what the path is before and after opening,
// without blocking, and refuses anything but a regular file with an error
// that names the path and what is there.
package regfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotRegular is wrapped by every refusal of a path that holds something
// other than a regular file.
var ErrNotRegular = errors.New("not a regular file")

// Follow says whether a symbolic link at the path is followed (the index,
// which dotfile managers link) or refused (files only the helper writes).
type Follow bool

// Whether to follow a symbolic link.
const (
	FollowLinks Follow = true
	NoLinks     Follow = false
)

// What describes a file mode for a message: "a named pipe (FIFO)", ...
func What(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file"
}

// NotRegular is the error for path holding a file of mode m.
func NotRegular(path string, m fs.FileMode) error {
	return fmt.Errorf("%s is %s, %w: move it aside (e.g. mv %s %s.bad)", path, What(m), ErrNotRegular, path, path)
}

// stat is Stat or Lstat as follow says.
func stat(path string, follow Follow) (fs.FileInfo, error) {
	if follow {
		return os.Stat(path)
	}
	return os.Lstat(path)
}

// Check returns nil when path is a regular file or does not exist, and
// the refusal otherwise. A dangling link is reported as such.
func Check(path string, follow Follow) error {
	st, err := stat(path, follow)
	if errors.Is(err, fs.ErrNotExist) {
		if follow {
			if lst, lerr := os.Lstat(path); lerr == nil && lst.Mode()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%s is a symbolic link to a file that does not exist", path)
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return NotRegular(path, st.Mode())
	}
	return nil
}

// Open opens a regular file for reading. An error wrapping
// fs.ErrNotExist means there is none.
func Open(path string, follow Follow) (*os.File, error) {
	if err := Check(path, follow); err != nil {
		return nil, err
	}
	return open(path, os.O_RDONLY, follow, 0)
}

// ReadFile reads a regular file whole.
func ReadFile(path string, follow Follow) ([]byte, error) {
	f, err := Open(path, follow)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// OpenLock opens (creating it 0600) a lock file for reading and writing;
// a link there is refused.
func OpenLock(path string) (*os.File, error) {
	if err := Check(path, NoLinks); err != nil {
		return nil, err
	}
	return open(path, os.O_RDWR|os.O_CREATE, NoLinks, 0o600)
}

// open opens without blocking (a named pipe put there after the check
// fails instead of waiting for a writer) and checks the opened file.
func open(path string, flag int, follow Follow, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|nonBlock|noFollow(follow), perm)
	if err != nil {
		if isLoop(err) {
			return nil, fmt.Errorf("%s is a symbolic link, %w: move it aside (e.g. mv %s %s.bad)", path, ErrNotRegular, path, path)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, NotRegular(path, st.Mode())
	}
	return f, nil
}

// OpenAppend opens a file for appending, creating it 0600, for a trace
// the user pointed somewhere: a regular file, a terminal or /dev/stderr,
// or a named pipe that someone reads. A named pipe nobody reads, or a
// directory, is refused at once rather than waited on.
func OpenAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|nonBlock, 0o600)
	if err != nil {
		if isNoReader(err) {
			return nil, fmt.Errorf("%s is a named pipe (FIFO) that nobody reads", path)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if m := st.Mode(); m.IsDir() || m&(fs.ModeSocket|fs.ModeDevice) != 0 && m&fs.ModeCharDevice == 0 {
		f.Close()
		return nil, NotRegular(path, m)
	}
	return f, nil
}

// AppendExisting opens a regular file that must already exist for
// appending; a link, a named pipe or anything else there is refused
// without waiting.
func AppendExisting(path string) (*os.File, error) {
	return open(path, os.O_WRONLY|os.O_APPEND, NoLinks, 0)
}
