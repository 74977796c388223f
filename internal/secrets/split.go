package secrets

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Split keeps a value longer than max in several items of b: its first
// part under id, behind a marker that says how many parts there are, the
// others under id~2, id~3, … For a backend with a small cap (Windows'
// Credential Manager keeps at most 2560 bytes), which an OAuth login's
// rotating refresh token alone can exceed. Shorter values are stored as
// they are.
func Split(b Backend, max int) Backend { return &split{b: b, max: max} }

type split struct {
	b   Backend
	max int
}

// splitMark starts a first part: no token or JSON value starts with NUL.
const splitMark = "\x00bbtoken-split:"

func partID(id string, n int) string { return id + "~" + strconv.Itoa(n) }

// parts reads the marker of a first part: how many parts, and its data.
func parts(head string) (n int, data string, ok bool) {
	rest, ok := strings.CutPrefix(head, splitMark)
	if !ok {
		return 0, "", false
	}
	count, data, ok := strings.Cut(rest, ":")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n < 2 || n > 64 {
		return 0, "", false
	}
	return n, data, true
}

func (s *split) Set(ctx context.Context, id, value string) (string, error) {
	room := s.max - len(splitMark) - 3 // "NN:"
	if len(value) <= s.max || room < 1 {
		return s.b.Set(ctx, id, value)
	}
	var chunks []string
	for v := value; v != ""; {
		n := min(room, len(v))
		chunks = append(chunks, v[:n])
		v = v[n:]
	}
	if len(chunks) > 64 {
		return "", fmt.Errorf("%w: %d bytes", ErrTooBig, len(value))
	}
	// The tail first, the head last: a reader finds the whole value or
	// no head (and so nothing).
	for i := len(chunks) - 1; i >= 1; i-- {
		if _, err := s.b.Set(ctx, partID(id, i+1), chunks[i]); err != nil {
			for j := i + 1; j < len(chunks); j++ {
				_ = s.b.Delete(ctx, partID(id, j+1))
			}
			return "", err
		}
	}
	hint, err := s.b.Set(ctx, id, splitMark+strconv.Itoa(len(chunks))+":"+chunks[0])
	if err != nil {
		for j := 1; j < len(chunks); j++ {
			_ = s.b.Delete(ctx, partID(id, j+1))
		}
	}
	return hint, err
}

func (s *split) Get(ctx context.Context, id, hint string, want func(string) bool) (string, string, error) {
	// A head found at the hint is checked once whole.
	inner := want
	if want != nil {
		inner = func(v string) bool { return strings.HasPrefix(v, splitMark) || want(v) }
	}
	head, found, err := s.b.Get(ctx, id, hint, inner)
	if err != nil {
		return "", "", err
	}
	n, data, ok := parts(head)
	if !ok {
		return head, found, nil
	}
	var b strings.Builder
	b.WriteString(data)
	for i := 2; i <= n; i++ {
		p, _, err := s.b.Get(ctx, partID(id, i), "", nil)
		if err != nil {
			return "", "", fmt.Errorf("part %d of %d: %w", i, n, err)
		}
		b.WriteString(p)
	}
	v := b.String()
	if want != nil && !want(v) && hint != "" {
		return s.Get(ctx, id, "", want) // a stale hint: search
	}
	return v, found, nil
}

func (s *split) Delete(ctx context.Context, id string) error {
	head, _, err := s.b.Get(ctx, id, "", nil)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	n, _, ok := parts(head)
	if !ok {
		n = 64 // no head (a write cut short): look for the parts it left
	}
	for i := 2; i <= n; i++ {
		err := s.b.Delete(ctx, partID(id, i))
		if !ok && errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return s.b.Delete(ctx, id)
}

func (s *split) List(ctx context.Context) ([]string, error) {
	ids, err := s.b.List(ctx)
	out := ids[:0]
	for _, id := range ids {
		if i := strings.LastIndexByte(id, '~'); i < 0 || strings.Trim(id[i+1:], "0123456789") != "" {
			out = append(out, id)
		}
	}
	return out, err
}

// Close releases b's connection, if it holds one.
func (s *split) Close() error {
	if c, ok := s.b.(Closer); ok {
		return c.Close()
	}
	return nil
}
