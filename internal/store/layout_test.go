package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

func fillIndex(t testing.TB, st *store.Store, n int) {
	require.NoError(t, st.Update(context.Background(), func(tx *store.Tx) error {
		tx.Index.Hosts = map[string]store.HostConfig{"bb.example.com": {Flavor: "datacenter"}}
		tx.Index.Settings = map[string]string{"expiry-warnings": "off"}
		for i := range n {
			url := fmt.Sprintf("https://bitbucket.org/ws%d/repo%d", i/10, i%10)
			if i%10 == 0 {
				url = fmt.Sprintf("https://bitbucket.org/ws%d", i/10)
			}
			tx.Index.Entries = append(tx.Index.Entries, store.Entry{ID: fmt.Sprintf("%08x", i), URL: url, Kind: store.KindRepository,
				Label: `a "quoted" label, with ,"url":"https://evil" & <html>`})
		}
		tx.Changed()
		return nil
	}))
}

func TestLayoutIsOneJSONDocument(t *testing.T) {
	st := &store.Store{Dir: t.TempDir(), Secrets: memory.New()}
	fillIndex(t, st, 25)
	data, err := os.ReadFile(st.Path())
	require.NoError(t, err)
	var ix store.Index
	require.NoError(t, json.Unmarshal(data, &ix), "any JSON reader must read the index")
	assert.Len(t, ix.Entries, 25)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	assert.Len(t, lines, 27, "header, one line per entry, closing line")
	full, err := st.Load()
	require.NoError(t, err)
	assert.Equal(t, ix.Entries, full.Entries)
}

func TestLoadScopes(t *testing.T) {
	st := &store.Store{Dir: t.TempDir(), Secrets: memory.New()}
	fillIndex(t, st, 100)
	ix, err := st.LoadScopes([]string{"https://bitbucket.org", "https://bitbucket.org/WS3", "https://bitbucket.org/ws3/Repo4"})
	require.NoError(t, err)
	var ids []string
	for _, e := range ix.Entries {
		ids = append(ids, e.ID)
	}
	assert.Equal(t, []string{"0000001e", "00000022"}, ids)
	assert.Equal(t, "datacenter", ix.Hosts["bb.example.com"].Flavor)
	assert.Equal(t, "off", ix.Settings["expiry-warnings"])

	none, err := st.LoadScopes(nil)
	require.NoError(t, err)
	assert.Empty(t, none.Entries)

	missing := &store.Store{Dir: filepath.Join(t.TempDir(), "none")}
	empty, err := missing.LoadScopes([]string{"https://bitbucket.org"})
	require.NoError(t, err)
	assert.Empty(t, empty.Entries)
}

// Files in another layout (hand-edited, pretty-printed) and damaged files
// take the full decoder: same answers, same errors as Load.
func TestLoadScopesOtherLayouts(t *testing.T) {
	tests := []struct {
		name, data string
		ids        []string
		err        error
	}{
		{"pretty printed", "{\n  \"version\": 1,\n  \"entries\": [\n    {\"id\": \"a1\", \"url\": \"https://bitbucket.org/ws\", \"kind\": \"workspace\"},\n    {\"id\": \"b2\", \"url\": \"https://bitbucket.org/other\", \"kind\": \"workspace\"}\n  ]\n}\n", []string{"a1"}, nil},
		{"escaped url", `{"version":1,"entries":[` + "\n" + `{"id":"a1","url":"https:\/\/bitbucket.org\/ws","kind":"workspace"}` + "\n]}\n", []string{"a1"}, nil},
		{"truncated", `{"version":1,"entries":[` + "\n" + `{"id":"a1","url":"https://bitbucket.org/ws","kind":"workspace"},` + "\n", nil, store.ErrIndexDamaged},
		{"trailing garbage", `{"version":1,"entries":[` + "\n]}\n{}", nil, store.ErrIndexDamaged},
		{"entry without kind", `{"version":1,"entries":[` + "\n" + `{"id":"a1","url":"https://bitbucket.org/ws"}` + "\n]}\n", nil, store.ErrIndexDamaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &store.Store{Dir: t.TempDir()}
			writeIndex(t, st, tt.data, 0o600)
			ix, err := st.LoadScopes([]string{"https://bitbucket.org", "https://bitbucket.org/ws"})
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			var ids []string
			for _, e := range ix.Entries {
				ids = append(ids, e.ID)
			}
			assert.Equal(t, tt.ids, ids)
		})
	}
}

func BenchmarkLoadScopes(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			st := &store.Store{Dir: b.TempDir(), Secrets: memory.New()}
			fillIndex(b, st, n)
			urls := []string{"https://bitbucket.org", "https://bitbucket.org/ws0", "https://bitbucket.org/ws0/repo1"}
			b.ResetTimer()
			for b.Loop() {
				if _, err := st.LoadScopes(urls); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
