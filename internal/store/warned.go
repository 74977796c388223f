package store

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// WarnedFile remembers the day each token's expiry warning was last shown,
// so that git's many calls a day show it once.
const WarnedFile = "warned.json"

// WarnedOn returns the day (YYYY-MM-DD) the entry was last warned about.
func (s *Store) WarnedOn(id string) string {
	return s.readWarned()[id]
}

// MarkWarned records today's warning. It takes no lock: two git processes
// racing here cost at most one repeated line, never data.
func (s *Store) MarkWarned(id, day string) error {
	m := s.readWarned()
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
	return s.writeFile(filepath.Join(s.Dir, WarnedFile), data)
}

func (s *Store) readWarned() map[string]string {
	m := map[string]string{}
	data, err := os.ReadFile(filepath.Join(s.Dir, WarnedFile))
	if err == nil {
		_ = json.Unmarshal(data, &m) // unreadable: warn again, that is all
	}
	return m
}
