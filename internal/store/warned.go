package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bbtoken/git-credential-bbtoken/internal/regfile"
)

// WarnedFile remembers the day each token's expiry warning was last shown,
// so that git's many calls a day show it once.
const WarnedFile = "warned.json"

// WarnedOn returns the day (YYYY-MM-DD) the entry was last warned about.
// An error means the file is not one the helper can use (a named pipe,
// say): the caller says so rather than warn every time.
func (s *Store) WarnedOn(id string) (string, error) {
	m, err := s.readWarned()
	return m[id], err
}

// MarkWarned records today's warning. It takes no lock: two git processes
// racing here cost at most one repeated line, never data.
func (s *Store) MarkWarned(id, day string) error {
	m, err := s.readWarned()
	if err != nil {
		return err
	}
	for k, d := range m {
		if d != day {
			delete(m, k) // only today's warnings matter
		}
	}
	m[id] = day
	data, _ := json.Marshal(m) // strings only
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	return writeFile(filepath.Join(s.Dir, WarnedFile), data)
}

func (s *Store) readWarned() (map[string]string, error) {
	m := map[string]string{}
	data, err := regfile.ReadFile(filepath.Join(s.Dir, WarnedFile), regfile.NoLinks)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return m, fmt.Errorf("reading the expiry warnings: %w", err)
	default:
		_ = json.Unmarshal(data, &m) // damaged: warn again, that is all
	}
	return m, nil
}
