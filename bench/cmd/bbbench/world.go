//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/keyring"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// The credential every helper serves: a Cloud repository access token for
// bitbucket.org/ws0/repo0, the most specific of the stored tokens.
const (
	targetURL  = "https://bitbucket.org/ws0/repo0"
	targetUser = "x-token-auth"
	seedFormat = 1 // bump when decoys change, to invalidate cached keyrings
)

var targetToken = tokenFor("ATCTT", "target")

// tokenFor makes a deterministic token of realistic length (Bitbucket's are
// about 190 characters).
func tokenFor(prefix, seed string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for i := 0; b.Len() < 190; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", seed, i)))
		b.WriteString(strings.ToUpper(hex.EncodeToString(sum[:])))
	}
	return b.String()[:190]
}

// decoy is one of the other stored tokens: spread over workspaces and their
// repositories, with a host-wide API token and a workspace token that also
// cover the target (so get must pick the most specific).
type decoy struct {
	ID, URL, User, Secret string
	Kind                  store.Kind
}

func decoyFor(i, n int) decoy {
	w := max(3, n/25) // about 25 repositories per workspace
	sum := sha256.Sum256([]byte(fmt.Sprintf("decoy/%d", i)))
	d := decoy{ID: hex.EncodeToString(sum[:4]), User: targetUser}
	switch {
	case i == 1:
		d.URL, d.Kind, d.User = "https://bitbucket.org", store.KindAPI, "alice"
	case i == 2:
		d.URL, d.Kind = "https://bitbucket.org/ws0", store.KindWorkspace
	case i/w == 0:
		d.URL, d.Kind = fmt.Sprintf("https://bitbucket.org/ws%d", i%w), store.KindWorkspace
	default:
		d.URL, d.Kind = fmt.Sprintf("https://bitbucket.org/ws%d/repo%d", i%w, i/w), store.KindRepository
	}
	prefix := "ATCTT"
	if d.Kind == store.KindAPI {
		prefix = "ATATT"
	}
	d.Secret = tokenFor(prefix, fmt.Sprintf("decoy/%d", i))
	return d
}

// decoysFor returns the n-1 tokens stored besides the target, with unique
// ids.
func decoysFor(n int) []decoy {
	decoys := make([]decoy, 0, n)
	seen := map[string]bool{}
	for i := 1; i < n; i++ {
		d := decoyFor(i, n)
		for k := 1; seen[d.ID]; k++ {
			sum := sha256.Sum256([]byte(fmt.Sprintf("decoy/%d/%d", i, k)))
			d.ID = hex.EncodeToString(sum[:4])
		}
		seen[d.ID] = true
		decoys = append(decoys, d)
	}
	return decoys
}

// world is one keyring (a fresh gnome-keyring-daemon) holding n of our
// tokens, with the index that names them.
type world struct {
	n       int
	dir     string // world's files
	cfg     string // XDG_CONFIG_HOME with our index (n tokens)
	cfg1    string // XDG_CONFIG_HOME with only the target (same keyring)
	d       *daemon
	env     []string // for every process: private bus, isolated HOME and git config
	gitcfg  map[string]string
	files   map[string]string // stdin files
	seeded  string            // how the keyring got its tokens
	seedDur time.Duration
}

func (w *world) envWith(cfg string, extra ...string) []string {
	env := slices.Clone(w.env)
	env = append(env, "XDG_CONFIG_HOME="+cfg)
	return append(env, extra...)
}

// run runs a setup step (not timed) and returns its stdout.
func (w *world) run(env []string, stdin string, argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (w *world) write(name, content string) string {
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		panic(err)
	}
	return p
}

// newWorld starts a fresh keyring, fills it with n tokens (from the cache
// when one matches) and prepares every input the commands read.
func newWorld(b *bench, n int) (*world, error) {
	w := &world{n: n, dir: filepath.Join(b.work, fmt.Sprintf("world-%d", n)), gitcfg: map[string]string{}, files: map[string]string{}}
	w.cfg, w.cfg1 = filepath.Join(w.dir, "config"), filepath.Join(w.dir, "config-1")
	for _, d := range []string{w.dir, w.cfg, w.cfg1} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	w.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"XDG_DATA_HOME=" + os.Getenv("XDG_DATA_HOME"),
		"DBUS_SESSION_BUS_ADDRESS=" + os.Getenv("DBUS_SESSION_BUS_ADDRESS"),
		"LANG=C.UTF-8",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
	}
	if b.provider != "" {
		// The provider's script started it, empty: nothing to seed.
		return w, w.prepare(b, nil, keyring.New(2*time.Minute))
	}
	// A fresh keyring: no leftovers of the previous world.
	kdir := keyringsDir()
	if err := os.RemoveAll(kdir); err != nil {
		return nil, err
	}
	cache := filepath.Join(b.cache, fmt.Sprintf("keyring-f%d-n%d", seedFormat, n))
	decoys := decoysFor(n)
	t0 := time.Now()
	fromCache := false
	if n > 1 && b.cache != "" {
		if err := copyFile(filepath.Join(cache, loginKeyring), filepath.Join(kdir, loginKeyring)); err == nil {
			fromCache = true
		}
	}
	var err error
	if w.d, err = startDaemon(); err != nil {
		return nil, err
	}
	ctx := context.Background()
	kr := keyring.New(2 * time.Minute)
	if fromCache {
		// Spot-check the cached keyring through the product's own keyring code.
		for _, d := range []decoy{decoys[0], decoys[len(decoys)/2], decoys[len(decoys)-1]} {
			if v, _, err := kr.Get(ctx, d.ID, "", nil); err != nil || v != d.Secret {
				b.logf("world %d: cached keyring does not hold decoy %s (%v): seeding it again", n, d.ID, err)
				fromCache = false
				break
			}
		}
		if !fromCache {
			w.d.stop()
			_ = os.RemoveAll(kdir)
			if w.d, err = startDaemon(); err != nil {
				return nil, err
			}
		}
	}
	if !fromCache && len(decoys) > 0 {
		b.logf("world %d: writing %d secrets to the keyring (gnome-keyring rewrites its file on every item: slow for thousands)", n, len(decoys))
		for i, d := range decoys {
			if _, err := kr.Set(ctx, d.ID, d.Secret); err != nil {
				return nil, fmt.Errorf("seeding the keyring: %w", err)
			}
			if (i+1)%500 == 0 {
				b.logf("world %d: %d/%d secrets (%s)", n, i+1, len(decoys), time.Since(t0).Round(time.Second))
			}
		}
		if b.cache != "" {
			// Copy the keyring file while no daemon holds it.
			w.d.stop()
			if err := os.MkdirAll(cache, 0o700); err == nil {
				if err := copyFile(filepath.Join(kdir, loginKeyring), filepath.Join(cache, loginKeyring)); err != nil {
					b.logf("world %d: not cached: %v", n, err)
				}
			}
			if w.d, err = startDaemon(); err != nil {
				return nil, err
			}
		}
	}
	w.seedDur = time.Since(t0)
	switch {
	case n == 1:
		w.seeded = "-"
	case fromCache:
		w.seeded = "keyring from cache"
	default:
		w.seeded = fmt.Sprintf("seeded in %s", w.seedDur.Round(time.Second))
	}
	return w, w.prepare(b, decoys, kr)
}

// prepare writes what the commands read: setup's git config, the index
// (decoys, then the target through the real add), libsecret's and
// credential-store's copies of the target, and the stdin files.
func (w *world) prepare(b *bench, decoys []decoy, kr secrets.Backend) error {
	n := w.n
	ctx := context.Background()

	// setup (the README's install step) with its own global git config.
	w.gitcfg["bbtoken"] = filepath.Join(w.dir, "gitconfig-bbtoken")
	if _, err := w.run(w.envWith(w.cfg, "GIT_CONFIG_GLOBAL="+w.gitcfg["bbtoken"]), "", b.bbtoken, "setup"); err != nil {
		return err
	}
	// The index: decoys first (written through the product's store, no
	// keyring writes), then the target through the real `add`, so the match
	// is the last entry.
	if len(decoys) > 0 {
		st := &store.Store{Dir: filepath.Join(w.cfg, "git-credential-bbtoken"), Secrets: kr}
		now := time.Now().UTC()
		err := st.Update(ctx, func(tx *store.Tx) error {
			entries := make([]store.Entry, 0, len(decoys)+len(tx.Index.Entries))
			for _, d := range decoys {
				entries = append(entries, store.Entry{ID: d.ID, URL: d.URL, Kind: d.Kind, Username: d.User, State: store.StateActive, Created: now, Updated: now})
			}
			tx.Index.Entries = append(entries, tx.Index.Entries...)
			tx.Changed()
			return nil
		})
		if err != nil {
			return fmt.Errorf("writing the index: %w", err)
		}
	}
	for _, cfg := range []string{w.cfg, w.cfg1} {
		if n == 1 && cfg == w.cfg1 {
			continue
		}
		if _, err := w.run(w.envWith(cfg), targetToken+"\n", b.bbtoken, "add", targetURL); err != nil {
			return err
		}
	}
	// Check the index through the binary: n entries, the target served, and
	// a decoy repository served its own token (the decoys are real entries).
	out, err := w.run(w.envWith(w.cfg), "", b.bbtoken, "list", "--json")
	if err != nil {
		return err
	}
	var listed []json.RawMessage
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != n {
		return fmt.Errorf("world %d: list --json shows %d entries (%v), want %d", n, len(listed), err, n)
	}
	if n > 3 {
		last := decoys[len(decoys)-1]
		if last.Kind == store.KindRepository {
			path := strings.TrimPrefix(last.URL, "https://bitbucket.org/") + ".git"
			out, err := w.run(w.envWith(w.cfg), "protocol=https\nhost=bitbucket.org\npath="+path+"\n", b.bbtoken, "get")
			if err != nil || !strings.Contains(out, "password="+last.Secret) {
				return fmt.Errorf("world %d: get for decoy %s did not serve its token (%v)", n, last.URL, err)
			}
		}
	}

	// libsecret: the same credential, as git would store it.
	w.files["get"] = w.write("get.in", "protocol=https\nhost=bitbucket.org\npath=ws0/repo0.git\n")
	w.files["store"] = w.write("store.in", "protocol=https\nhost=bitbucket.org\npath=ws0/repo0.git\nusername="+targetUser+"\npassword="+targetToken+"\n")
	w.files["fill"] = w.write("fill.in", "url=https://bitbucket.org/ws0/repo0.git\n")
	if _, err := w.run(w.env, mustRead(w.files["store"]), b.libsecret, "store"); err != nil {
		return err
	}
	w.gitcfg["libsecret"] = w.write("gitconfig-libsecret", fmt.Sprintf("[credential]\n\thelper = %s\n\tuseHttpPath = true\n", b.libsecret))
	// git credential-store: the same credential in its file.
	w.files["credstore"] = w.write("git-credentials", "https://"+targetUser+":"+targetToken+"@bitbucket.org/ws0/repo0.git\n")
	w.gitcfg["store"] = w.write("gitconfig-store", fmt.Sprintf("[credential]\n\thelper = store --file=%s\n\tuseHttpPath = true\n", w.files["credstore"]))
	return nil
}

func (w *world) close() { w.d.stop() } // nil-safe: a provider world has no daemon of ours

func mustRead(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
