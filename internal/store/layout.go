package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/regfile"
)

// The index layout, one JSON document:
//
//	{"version":1,"hosts":{...},"settings":{...},"entries":[
//	{"id":"...","url":"https://...",...},
//	...
//	{"id":"...","url":"https://...",...}
//	]}
//
// get reads the header, then looks only at each line's "url" value and
// decodes just the entries whose scope could cover its request: its cost
// stays flat from one token to ten thousand.

const (
	entriesOpen  = `"entries":[`
	layoutClose  = "]}"
	urlFieldMark = `,"url":"`
)

// header is the index without its entries.
type header struct {
	Version  int                   `json:"version"`
	Hosts    map[string]HostConfig `json:"hosts,omitempty"`
	Settings map[string]string     `json:"settings,omitempty"`
	Creating []PendingCreate       `json:"creating,omitempty"`
}

func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep URLs literal so the fast path can read them
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func encodeIndex(ix *Index) ([]byte, error) {
	h, err := marshalCompact(header{Version: ix.Version, Hosts: ix.Hosts, Settings: ix.Settings, Creating: ix.Creating})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Write(h[:len(h)-1]) // drop the closing brace
	buf.WriteString(",")
	buf.WriteString(entriesOpen)
	buf.WriteString("\n")
	for i := range ix.Entries {
		line, err := marshalCompact(&ix.Entries[i])
		if err != nil {
			return nil, err
		}
		buf.Write(line)
		if i < len(ix.Entries)-1 {
			buf.WriteString(",")
		}
		buf.WriteString("\n")
	}
	buf.WriteString(layoutClose + "\n")
	return buf.Bytes(), nil
}

// errLayout means the file is valid JSON in some other layout (written by
// hand or by an older build): the full decoder reads it.
var errLayout = errors.New("not in the line layout")

// LoadScopes reads the index keeping only the entries whose scope URL is
// one of urls, compared case-insensitively (ASCII), plus hosts and
// settings. It is get's read: it decodes no other entry. Files in another
// layout, from a newer build, or not parsing cleanly go through the full
// decoder (which reports damage exactly as Load does).
func (s *Store) LoadScopes(urls []string) (*Index, error) {
	want := make([]string, len(urls))
	for i, u := range urls {
		want[i] = asciiLower(u)
	}
	path, err := s.target()
	if err != nil {
		return nil, err
	}
	f, err := regfile.Open(path, regfile.FollowLinks)
	if errors.Is(err, fs.ErrNotExist) {
		return &Index{Version: IndexVersion}, nil
	}
	if err != nil {
		return nil, s.openError(path, err)
	}
	defer f.Close()
	st, err := s.checkPrivate(f, path)
	if err != nil {
		return nil, err
	}
	data, release, err := mapFile(f)
	if err != nil {
		return nil, fmt.Errorf("reading token index %s: %w", path, err)
	}
	// scanLayout copies what it keeps (json.Unmarshal), so the mapping
	// can go as soon as it returns.
	ix, err := scanLayout(data, want)
	// A file others can read goes through the full decoder, which refuses
	// it when any entry holds a check (however its keys are spelt).
	readable := runtime.GOOS != "windows" && st.Mode().Perm()&0o044 != 0
	release()
	if err != nil || readable {
		full, err := s.Load()
		if err != nil {
			return nil, err
		}
		full.Entries = slices.DeleteFunc(full.Entries, func(e Entry) bool { return !slices.Contains(want, asciiLower(e.URL)) })
		return full, nil
	}
	return ix, nil
}

func scanLayout(data []byte, want []string) (*Index, error) {
	first, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok || !bytes.HasSuffix(first, []byte(","+entriesOpen)) {
		return nil, errLayout
	}
	var h header
	if err := json.Unmarshal(append(first[:len(first)-len(entriesOpen)-1:len(first)-len(entriesOpen)-1], '}'), &h); err != nil {
		return nil, errLayout
	}
	if h.Version < 1 || h.Version > IndexVersion {
		return nil, errLayout // the full decoder explains
	}
	ix := &Index{Version: h.Version, Hosts: h.Hosts, Settings: h.Settings, Creating: h.Creating}
	closed := false
	// Every id, not only those of the entries kept: a duplicate anywhere
	// is a damaged index, which the full decoder reports. A hash of each
	// id is enough to notice one (a collision only sends the read to the
	// full decoder, which compares the ids themselves).
	ids := make(map[uint64]struct{}, bytes.Count(rest, []byte("\n")))
	seed := maphash.MakeSeed()
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if string(line) == layoutClose {
			closed = true
			break
		}
		line = bytes.TrimSuffix(line, []byte(","))
		id, url, ok := idAndURL(line)
		if !ok {
			return nil, errLayout
		}
		sum := maphash.Bytes(seed, id)
		if _, dup := ids[sum]; dup {
			return nil, errLayout
		}
		ids[sum] = struct{}{}
		if !wanted(want, url) {
			continue
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil || e.ID == "" || e.URL == "" || e.Kind == "" {
			return nil, errLayout
		}
		e.upgrade()
		ix.Entries = append(ix.Entries, e)
	}
	if !closed || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errLayout // truncated or trailing bytes: let the full decoder report it
	}
	return ix, nil
}

// idAndURL reads the "id" and "url" values of an entry line without
// decoding it: the id (no quotes or escapes in ids we write) comes first,
// the url right after. Lines in any other shape go to the full decoder.
func idAndURL(line []byte) (id, url []byte, ok bool) {
	const idMark = `{"id":"`
	if !bytes.HasPrefix(line, []byte(idMark)) {
		return nil, nil, false
	}
	rest := line[len(idMark):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, nil, false
	}
	id, rest = rest[:end], rest[end:]
	if !bytes.HasPrefix(rest, []byte(`"`+urlFieldMark)) {
		return nil, nil, false
	}
	rest = rest[1+len(urlFieldMark):]
	end = bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, nil, false
	}
	return id, rest[:end], true
}

// wanted compares without allocating: it runs once per entry on get's path.
func wanted(want []string, url []byte) bool {
	for _, w := range want {
		if len(w) == len(url) && asciiEqualFold(w, url) {
			return true
		}
	}
	return false
}

// asciiEqualFold compares a lower-case string with bytes, folding ASCII
// letters only (see bitbucket.NormalizeHost on Unicode look-alikes).
func asciiEqualFold(lower string, b []byte) bool {
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func readAll(f *os.File) ([]byte, error) {
	size := 0
	if st, err := f.Stat(); err == nil && st.Size() < 1<<30 {
		size = int(st.Size())
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+512))
	_, err := buf.ReadFrom(f)
	return buf.Bytes(), err
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
