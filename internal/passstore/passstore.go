// Package passstore reads and writes entries of the standard unix password
// store (pass) the way pass itself does, so that `pass show`, `pass insert`
// and `pass git pull` work on what this helper stores and the other way
// round: the same gpg options, recipients from the nearest .gpg-id (checked
// against PASSWORD_STORE_SIGNING_KEY when set) and the same git commits.
//
// Unlike pass it never prompts: gpg runs in batch mode with
// --pinentry-mode error and without a terminal, and a key whose passphrase
// no agent holds is reported (ErrNeedPassphrase) instead of waited for.
package passstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Folder is the directory inside the password store that holds this helper's entries.
const Folder = "git-credential-bbtoken"

const (
	maxEntry       = 1 << 20 // a token entry is a few hundred bytes
	defaultTimeout = 10 * time.Second
	staleTemp      = time.Minute
)

// Store is one password store and how to run gpg and git on it.
type Store struct {
	Dir         string        // the password store root
	GPG         string        // gpg binary; "" = "gpg" from PATH
	Opts        []string      // extra gpg options ($PASSWORD_STORE_GPG_OPTS split on spaces)
	SigningKeys []string      // $PASSWORD_STORE_SIGNING_KEY: .gpg-id must carry a valid .gpg-id.sig by one of them
	Keys        []string      // $PASSWORD_STORE_KEY: when set, encrypt to these instead of .gpg-id (as pass does)
	Env         []string      // environment for gpg and git; nil = this process's
	Timeout     time.Duration // bound on each gpg/git run; 0 = 10s
}

// The errors this package returns wrap one of these; the texts of the
// returned errors say more (which file, which key) and how to fix it.
var (
	ErrNoStore             = errors.New("no password store: run `pass init YOUR-GPG-KEY-ID`")
	ErrNoGPG               = errors.New("gpg cannot be run: install GnuPG or put gpg on PATH")
	ErrNeedPassphrase      = errors.New("gpg needs a passphrase that no gpg-agent holds: unlock the key once (e.g. `pass show` of any entry)")
	ErrNotRecipient        = errors.New("the entry is not encrypted to any of this machine's gpg keys: ask a teammate to add your key to .gpg-id and run `pass init` again")
	ErrNotFound            = errors.New("no such entry in the password store")
	ErrUntrustedRecipients = errors.New(".gpg-id has no valid signature by PASSWORD_STORE_SIGNING_KEY: sign it with `pass init` while PASSWORD_STORE_SIGNING_KEY is set")
	ErrBadName             = errors.New("bad password store entry name")
	ErrCommit              = errors.New("committing the change in the password store's git repository failed")
)

// storeError has a one-line text of its own (the sentinel's in other
// words, with the file or key) and errors.Is matches it to the sentinel.
type storeError struct {
	msg  string
	kind error
}

func (e *storeError) Error() string { return e.msg }
func (e *storeError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &storeError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// FromEnv builds the Store pass itself would use. getenv is os.Getenv in production.
func FromEnv(getenv func(string) string) (*Store, error) {
	dir := getenv("PASSWORD_STORE_DIR")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			home = getenv("USERPROFILE")
		}
		if home == "" {
			return nil, errorf(ErrNoStore, "no password store: neither PASSWORD_STORE_DIR nor HOME is set: set PASSWORD_STORE_DIR, or run `pass init YOUR-GPG-KEY-ID`")
		}
		dir = filepath.Join(home, ".password-store")
	}
	dir, err := filepath.Abs(dir) // as the helper may run in any directory
	if err != nil {
		return nil, fmt.Errorf("password store directory: %w", err)
	}
	s := &Store{
		Dir:         dir,
		Opts:        strings.Fields(getenv("PASSWORD_STORE_GPG_OPTS")),
		SigningKeys: strings.Fields(getenv("PASSWORD_STORE_SIGNING_KEY")),
		Keys:        strings.Fields(getenv("PASSWORD_STORE_KEY")),
	}
	if _, err := exec.LookPath("gpg2"); err == nil {
		s.GPG = "gpg2" // as pass prefers it
	}
	return s, nil
}

func (s *Store) folder() string { return filepath.Join(s.Dir, Folder) }

// checkName accepts the names Names can list: slash-separated segments
// under Folder, none empty, "." or "..", none hidden (a leading dot: pass
// ls and Names do not show those), no control characters.
func checkName(name string) error {
	why := ""
	switch {
	case name == "":
		why = "it is empty"
	case !utf8.ValidString(name):
		why = "it is not valid UTF-8"
	case strings.ContainsFunc(name, unicode.IsControl):
		why = "it contains a control character"
	case strings.HasPrefix(name, "/") || strings.Contains(name, `\`):
		why = "it is absolute or contains a backslash"
	case !filepath.IsLocal(filepath.FromSlash(name)):
		why = "it would leave " + Folder
	default:
		for _, seg := range strings.Split(name, "/") {
			if seg == "" || strings.HasPrefix(seg, ".") {
				why = fmt.Sprintf("segment %q is empty or starts with a dot", seg)
				break
			}
		}
	}
	if why != "" {
		return errorf(ErrBadName, "bad password store entry name %q: %s: use host/path segments without empty, dot or control-character parts", name, why)
	}
	return nil
}

// entryPath is the file that holds entry name.
func (s *Store) entryPath(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if s.Dir == "" {
		return "", errorf(ErrNoStore, "no password store directory given: run `pass init YOUR-GPG-KEY-ID`")
	}
	return filepath.Join(s.folder(), filepath.FromSlash(name)+".gpg"), nil
}

// Names lists every entry under Dir/Folder, sorted, as names relative to
// Folder. It does not follow symbolic links and skips anything but regular
// .gpg files, reporting what it skipped to skip (may be nil); .gpg-id files
// and this package's temporary files are skipped silently.
func (s *Store) Names(skip func(path, why string)) ([]string, error) {
	if skip == nil {
		skip = func(string, string) {}
	}
	root := s.folder()
	var names []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil && p == root && errors.Is(err, fs.ErrNotExist):
			return nil // nothing stored yet
		case err != nil && p == root:
			return err
		case err != nil:
			skip(p, "unreadable: "+err.Error())
			return nil
		case p == root && !d.IsDir():
			skip(p, "not a directory (symbolic links are not followed)")
			return nil
		case p == root:
			return nil
		}
		base := d.Name()
		switch {
		case d.IsDir() && strings.HasPrefix(base, "."):
			skip(p, "hidden directory")
			return fs.SkipDir
		case d.IsDir():
		case base == ".gpg-id" || base == ".gpg-id.sig" || isTemp(base):
		case d.Type()&fs.ModeSymlink != 0:
			skip(p, "symbolic link (not followed)")
		case !d.Type().IsRegular():
			skip(p, "not a regular file")
		case !strings.HasSuffix(base, ".gpg"):
			skip(p, "not a .gpg file")
		default:
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			name := strings.TrimSuffix(filepath.ToSlash(rel), ".gpg")
			if err := checkName(name); err != nil {
				skip(p, err.Error())
			} else {
				names = append(names, name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", root, err)
	}
	slices.Sort(names)
	return names, nil
}

// isTemp matches the temporary files Write creates (".NAME.RANDOM.tmp").
func isTemp(base string) bool { return strings.HasPrefix(base, ".") && strings.HasSuffix(base, ".tmp") }

// Stamp identifies the current ciphertext of an entry without decrypting
// it: the hex SHA-256 of the file.
func (s *Store) Stamp(name string) (string, error) {
	data, err := s.load(name)
	if err != nil {
		return "", err
	}
	return hashOf(data), nil
}

func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// load reads the ciphertext of entry name. It opens without blocking (a
// FIFO put in its place must not hang the helper) and without following a
// symbolic link (which Names would not list either).
func (s *Store) load(name string) ([]byte, error) {
	file, err := s.entryPath(name)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(file)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, errorf(ErrNotFound, "no entry %s in the password store (%s): store one first", name, file)
	} else if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s): remove or replace it", file, fi.Mode().Type())
	}
	f, err := os.OpenFile(file, os.O_RDONLY|nonBlock|noFollow, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() { // replaced since the Lstat
		return nil, fmt.Errorf("%s is not a regular file: remove or replace it", file)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEntry+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	if len(data) > maxEntry {
		return nil, fmt.Errorf("%s is larger than %d bytes: it is not an entry this helper wrote", file, maxEntry)
	}
	return data, nil
}

// Read decrypts one entry, returning its plaintext and the stamp of the
// very ciphertext that was decrypted.
func (s *Store) Read(ctx context.Context, name string) (plaintext, stamp string, err error) {
	data, err := s.load(name)
	if err != nil {
		return "", "", err
	}
	// No --quiet here: with it gpg 2.2 leaves out the NO_SECKEY and
	// "ERROR pkdecrypt_failed" status lines that tell a missing key from
	// a locked one.
	out, st, err := s.gpg(ctx, data, false, "-d")
	if err != nil {
		return "", "", s.decryptError(name, st, err)
	}
	return string(out), hashOf(data), nil
}

// Write encrypts plaintext to the recipients pass would use for name and
// replaces the entry atomically, then commits it when the store is a git
// work tree. A failed commit returns the new stamp and an error wrapping
// ErrCommit: the entry is stored all the same. message "" is pass's
// "Add given password for NAME to store.".
func (s *Store) Write(ctx context.Context, name, plaintext, message string) (string, error) {
	file, err := s.entryPath(name)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(file)
	keys, from, err := s.recipients(ctx, dir)
	if err != nil {
		return "", err
	}
	// Encrypted into memory (plaintext only on gpg's stdin), written to
	// a hidden temporary file we create 0600 and renamed over the entry:
	// a crash leaves the old entry or the new one, never half of one.
	ct, st, err := s.gpg(ctx, []byte(plaintext), true, encryptArgs(keys)...)
	if err != nil {
		return "", s.encryptError(from, st, err)
	}
	if len(ct) > maxEntry {
		return "", fmt.Errorf("the encrypted entry %s is larger than %d bytes: store less", name, maxEntry)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the entry's directory: %w", err)
	}
	removeStale(dir)
	if err := replaceFile(file, ct); err != nil {
		return "", fmt.Errorf("storing %s: %w", name, err)
	}
	if message == "" {
		message = fmt.Sprintf("Add given password for %s to store.", path.Join(Folder, name))
	}
	return hashOf(ct), s.commit(ctx, file, message, false)
}

func encryptArgs(keys []string) []string {
	args := []string{"-e"}
	for _, k := range keys {
		args = append(args, "-r", k)
	}
	return args
}

func replaceFile(file string, data []byte) (err error) {
	dir, base := filepath.Split(file)
	tmp, err := os.CreateTemp(dir, "."+strings.TrimSuffix(base, ".gpg")+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	// Best effort: the rename is atomic either way; this makes it durable
	// (and fails harmlessly where directories cannot be synced).
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// removeStale deletes temporary files a crashed Write left in dir.
func removeStale(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !isTemp(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTemp {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// Remove deletes an entry and the directories under Folder it leaves
// empty, and commits that when the store is a git work tree (ErrCommit as
// in Write). message "" is pass's "Remove NAME from store.".
func (s *Store) Remove(ctx context.Context, name, message string) error {
	file, err := s.entryPath(name)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(file); errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return errorf(ErrNotFound, "no entry %s in the password store (%s): nothing to remove", name, file)
	}
	if err := os.Remove(file); err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	folder := s.folder()
	for d := filepath.Dir(file); strings.HasPrefix(d, folder+string(filepath.Separator)); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break // not empty
		}
	}
	if message == "" {
		message = fmt.Sprintf("Remove %s from store.", path.Join(Folder, name))
	}
	return s.commit(ctx, file, message, true)
}

// Usable reports whether this machine can write entries here: a store with
// a .gpg-id for Folder (validly signed when SigningKeys is set) whose
// recipients gpg can encrypt to. It decrypts nothing.
func (s *Store) Usable(ctx context.Context) error {
	if fi, err := os.Stat(s.Dir); s.Dir == "" || err != nil || !fi.IsDir() {
		return errorf(ErrNoStore, "no password store at %q: run `pass init YOUR-GPG-KEY-ID`", s.Dir)
	}
	keys, from, err := s.recipients(ctx, s.folder())
	if err != nil {
		return err
	}
	if _, st, err := s.gpg(ctx, nil, true, encryptArgs(keys)...); err != nil {
		return s.encryptError(from, st, err)
	}
	return nil
}

// recipients are the keys pass encrypts an entry in dir to, and where they
// came from: $PASSWORD_STORE_KEY, else the nearest .gpg-id in dir or above
// up to the store root, one key (or gpg group) a line, # comments.
func (s *Store) recipients(ctx context.Context, dir string) ([]string, string, error) {
	if len(s.Keys) > 0 {
		return s.Keys, "PASSWORD_STORE_KEY", nil
	}
	root := filepath.Clean(s.Dir)
	idFile := ""
	for d := dir; idFile == ""; d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, ".gpg-id")); err == nil && fi.Mode().IsRegular() {
			idFile = filepath.Join(d, ".gpg-id")
		} else if d == root || !strings.HasPrefix(d, root+string(filepath.Separator)) {
			return nil, "", errorf(ErrNoStore, "no password store at %s (no .gpg-id there or in %s): run `pass init YOUR-GPG-KEY-ID`", root, Folder)
		}
	}
	if len(s.SigningKeys) > 0 {
		if err := s.verify(ctx, idFile); err != nil {
			return nil, "", err
		}
	}
	data, err := os.ReadFile(idFile)
	if err != nil {
		return nil, "", err
	}
	var keys []string
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line != "" {
			keys = append(keys, line)
		}
	}
	if len(keys) == 0 {
		return nil, "", errorf(ErrNoStore, "%s names no gpg key: run `pass init YOUR-GPG-KEY-ID`", idFile)
	}
	return keys, idFile, nil
}

// verify is pass's verify_file: .gpg-id.sig must be a valid signature of
// idFile by one of SigningKeys (40 upper-case hex digits; others are
// ignored, as pass does), made with the key or its subkey.
func (s *Store) verify(ctx context.Context, idFile string) error {
	sig := idFile + ".sig"
	if fi, err := os.Stat(sig); err != nil || !fi.Mode().IsRegular() {
		return errorf(ErrUntrustedRecipients, "%s is not signed (no %s) but PASSWORD_STORE_SIGNING_KEY is set: sign it by running `pass init` with PASSWORD_STORE_SIGNING_KEY set, or unset PASSWORD_STORE_SIGNING_KEY", idFile, filepath.Base(sig))
	}
	_, st, err := s.gpg(ctx, nil, true, "--verify", sig, idFile)
	if errors.Is(err, ErrNoGPG) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	for _, f := range st.lines {
		if f[0] != "VALIDSIG" || len(f) < 3 {
			continue
		}
		for _, k := range s.SigningKeys {
			if isFingerprint(k) && (k == f[1] || k == f[len(f)-1]) {
				return nil
			}
		}
	}
	return errorf(ErrUntrustedRecipients, "%s is not a valid signature of %s by a key in PASSWORD_STORE_SIGNING_KEY: re-sign it by running `pass init` with one of those keys, or correct PASSWORD_STORE_SIGNING_KEY", sig, idFile)
}

func isFingerprint(k string) bool {
	return len(k) == 40 && !strings.ContainsFunc(k, func(r rune) bool { return !('0' <= r && r <= '9' || 'A' <= r && r <= 'F') })
}
