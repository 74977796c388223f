// Package memory is a secrets.Backend in a map, for tests.
package memory

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
)

// Backend keeps values in memory. Its methods are safe for concurrent use.
type Backend struct {
	mu sync.Mutex
	m  map[string]string
	// Fail, when set, is returned by every call (to test keyring faults).
	Fail error
	// MaxSize, when set, refuses longer values as Windows' Credential
	// Manager does (ErrTooBig).
	MaxSize int
}

// New returns an empty Backend.
func New() *Backend { return &Backend{m: map[string]string{}} }

var _ secrets.Backend = (*Backend)(nil)

// Get implements secrets.Backend. It has no hints.
func (b *Backend) Get(_ context.Context, id, _ string, _ func(string) bool) (string, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Fail != nil {
		return "", "", b.Fail
	}
	v, ok := b.m[id]
	if !ok {
		return "", "", secrets.ErrNotFound
	}
	return v, "", nil
}

// Set implements secrets.Backend.
func (b *Backend) Set(_ context.Context, id, value string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Fail != nil {
		return "", b.Fail
	}
	if b.MaxSize > 0 && len(value) > b.MaxSize {
		return "", secrets.ErrTooBig
	}
	b.m[id] = value
	return "", nil
}

// Delete implements secrets.Backend.
func (b *Backend) Delete(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Fail != nil {
		return b.Fail
	}
	if _, ok := b.m[id]; !ok {
		return secrets.ErrNotFound
	}
	delete(b.m, id)
	return nil
}

// List implements secrets.Backend.
func (b *Backend) List(context.Context) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Fail != nil {
		return nil, b.Fail
	}
	return slices.Sorted(maps.Keys(b.m)), nil
}

// Len is the number of values held.
func (b *Backend) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// Snapshot is a copy of every value held, by id.
func (b *Backend) Snapshot() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.m)
}
