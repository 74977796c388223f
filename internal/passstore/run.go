package passstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/gitcmd"
)

// run runs bin bounded by the store's timeout, reading in (never a
// terminal), in a session of its own so that nothing it starts can prompt
// on ours.
func (s *Store) run(ctx context.Context, env []string, in []byte, bin string, args ...string) (stdout, stderr []byte, err error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = time.Second // what it starts may hold the pipes open
	gitcmd.Detach(cmd)          // gpg-agent, which gpg may start, detaches itself and lives on, as it should
	err = cmd.Run()
	switch {
	case err == nil || ctx.Err() == nil:
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("%s did not finish within %s: %w", filepath.Base(bin), timeout, ctx.Err())
	default:
		err = fmt.Errorf("%s: %w", filepath.Base(bin), ctx.Err())
	}
	return out.Bytes(), errb.Bytes(), err
}

func (s *Store) environ() []string {
	if s.Env == nil {
		return os.Environ()
	}
	return s.Env
}

// gpgStatus is what gpg said on --status-fd (the fields after "[GNUPG:] ")
// and its last "gpg: " message.
type gpgStatus struct {
	lines     [][]string
	msg       string
	agentDown bool
}

// gpg runs gpg with pass's GPG_OPTS (--quiet only when quiet) and what
// keeps it from ever prompting. Status lines go to stderr along with its
// messages: a separate descriptor is not portable to Windows.
func (s *Store) gpg(ctx context.Context, in []byte, quiet bool, args ...string) ([]byte, gpgStatus, error) {
	bin := s.GPG
	if bin == "" {
		bin = "gpg"
	}
	all := append([]string{}, s.Opts...)
	if quiet {
		all = append(all, "--quiet")
	}
	all = append(all, "--yes", "--compress-algo=none", "--no-encrypt-to",
		"--batch", "--no-tty", "--pinentry-mode", "error", "--status-fd", "2")
	out, errb, err := s.run(ctx, s.environ(), in, bin, append(all, args...)...)
	var st gpgStatus
	for _, line := range strings.Split(string(errb), "\n") {
		if rest, ok := strings.CutPrefix(line, "[GNUPG:] "); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				st.lines = append(st.lines, f)
			}
		} else if m, ok := strings.CutPrefix(line, "gpg: "); ok {
			st.msg = strings.TrimSpace(m)
			st.agentDown = st.agentDown || strings.Contains(m, "can't connect to the agent")
		}
	}
	switch {
	case err == nil || isExit(err) || ctx.Err() != nil:
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("%w: is it waiting for a pinentry or a smartcard? `gpgconf --kill gpg-agent` restarts the agent", err)
	default:
		err = errorf(ErrNoGPG, "gpg cannot be run (%s: %v): install GnuPG or put gpg on PATH", bin, err)
	}
	return out, st, err
}

func (st gpgStatus) failure(err error) string {
	if st.msg != "" {
		return st.msg
	}
	return err.Error()
}

// gpg-error codes (low 16 bits of an ERROR status) that mean the secret
// key needs someone at a pinentry: a passphrase, a PIN or a card.
var needUser = map[int]bool{
	11: true, 62: true, 85: true, 86: true, 87: true, 99: true, 114: true, // bad passphrase, timeout, no pinentry, pinentry error, bad PIN, canceled, not confirmed
	177: true, 178: true, 198: true, // no passphrase, no PIN, fully canceled
	91: true, 110: true, 112: true, // wrong card, card removed, card not present
}

func (s *Store) decryptError(name string, st gpgStatus, err error) error {
	if errors.Is(err, ErrNoGPG) || !isExit(err) {
		return fmt.Errorf("decrypting %s: %w", name, err)
	}
	var encTo, noSecKey []string
	considered := ""
	for _, f := range st.lines {
		switch {
		case f[0] == "ENC_TO" && len(f) > 1:
			encTo = append(encTo, f[1])
		case f[0] == "NO_SECKEY" && len(f) > 1:
			noSecKey = append(noSecKey, f[1])
		case f[0] == "KEY_CONSIDERED" && len(f) > 1:
			considered = f[1]
		case f[0] == "ERROR" && len(f) > 2 && f[1] == "pkdecrypt_failed":
			code, _ := strconv.Atoi(f[2])
			key := considered
			if key == "" {
				key = strings.Join(encTo, ", ")
			}
			if needUser[code&0xffff] {
				return errorf(ErrNeedPassphrase, "gpg needs the passphrase of %s and no gpg-agent holds it: unlock it once (e.g. `pass show` of any entry), or configure a pinentry that works here (e.g. pinentry-curses over SSH)", key)
			}
			return fmt.Errorf("gpg could not use secret key %s to decrypt %s: %s: check `gpg --list-secret-keys %s`", key, name, st.failure(err), key)
		}
	}
	switch {
	case st.agentDown:
		return fmt.Errorf("decrypting %s: gpg cannot reach its gpg-agent: `gpgconf --launch gpg-agent` shows why (a GNUPGHOME path over ~100 bytes is too long for its socket)", name)
	case len(encTo) > 0 && len(noSecKey) == len(encTo):
		return errorf(ErrNotRecipient, "entry %s is encrypted to %s, none of which is this machine's gpg key: ask a teammate to add your key to .gpg-id and run `pass init` again", name, strings.Join(encTo, ", "))
	case len(encTo) == 0:
		return fmt.Errorf("entry %s is not gpg-encrypted data (%s): restore it from the password store's git history or store it again", name, st.failure(err))
	}
	return fmt.Errorf("decrypting %s: gpg: %s", name, st.failure(err))
}

// INV_RECP reasons worth their own advice.
var invalidRecipient = map[string]string{
	"1":  "is not in this machine's gpg keyring: import it (`gpg --import` or `gpg --recv-keys`)",
	"2":  "is ambiguous: name it by its full fingerprint",
	"4":  "is revoked: replace it",
	"5":  "has expired: have its owner extend it and import it again",
	"10": "is not trusted by gpg: check it belongs to its owner, then `gpg --lsign-key` it",
	"13": "is disabled: enable it with `gpg --edit-key`",
}

func (s *Store) encryptError(from string, st gpgStatus, err error) error {
	if errors.Is(err, ErrNoGPG) || !isExit(err) {
		return fmt.Errorf("encrypting: %w", err)
	}
	for _, f := range st.lines {
		if f[0] == "INV_RECP" && len(f) > 2 {
			why := invalidRecipient[f[1]]
			if why == "" {
				why = "cannot be encrypted to (gpg reason " + f[1] + "): fix or replace it"
			}
			return fmt.Errorf("key %s from %s %s", f[2], from, why)
		}
		if f[0] == "NO_RECP" {
			return fmt.Errorf("%s names no key gpg can encrypt to: fix it with `pass init`", from)
		}
	}
	return fmt.Errorf("encrypting to the keys from %s: gpg: %s", from, st.failure(err))
}

func isExit(err error) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit)
}

// gitMu serialises this process's git work in stores: git's index.lock
// lets one git at a time change the index, so concurrent commits would
// fail. Other processes are waited for by retrying (git).
var gitMu sync.Mutex

// git runs git in dir the helper's one way (internal/gitcmd: C locale,
// bounded, no terminal), isolated from a repository the helper was started
// in, as pass does. A command that finds index.lock taken is retried for
// about three seconds.
func (s *Store) git(ctx context.Context, dir string, args ...string) (string, error) {
	root, _ := filepath.Abs(s.Dir)
	env := gitcmd.Replace(s.Env, func(k string) bool {
		switch k {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_NAMESPACE", "GIT_INDEX_FILE", "GIT_INDEX_VERSION",
			"GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR", "GIT_TERMINAL_PROMPT", "GIT_CEILING_DIRECTORIES":
			return true
		}
		return false
	}, "GIT_TERMINAL_PROMPT=0", "GIT_CEILING_DIRECTORIES="+filepath.Dir(root))
	c := gitcmd.Cmd{Env: env, Timeout: s.Timeout}
	if c.Timeout <= 0 {
		c.Timeout = defaultTimeout
	}
	all := append([]string{"--literal-pathspecs", "-C", dir}, args...)
	for attempt := 1; ; attempt++ {
		res, err := c.Run(ctx, all...)
		if err == nil {
			return string(res.Stdout), nil
		}
		if attempt <= 10 && bytes.Contains(res.Stderr, []byte("index.lock': File exists")) {
			select {
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
				continue
			case <-ctx.Done():
			}
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(res.Stderr)), "\n")
		if line == "" {
			line = err.Error()
		} else if strings.Contains(line, "index.lock") {
			line += " (if no git is running there, remove that file)"
		}
		return "", fmt.Errorf("git %s in %s: %s", args[0], dir, line)
	}
}

// commit is pass's git_add_file (or, for a removed file, its cmd_delete):
// in the git work tree the store (or the part of it holding file) is in,
// stage file and commit it when that changed anything. The commit is
// limited to file so that other staged changes, ours from a concurrent
// process or the user's, do not land in it under our message.
func (s *Store) commit(ctx context.Context, file, message string, removed bool) error {
	dir := s.gitDir(ctx, file)
	if dir == "" {
		return nil
	}
	rel, err := filepath.Rel(dir, file)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCommit, err)
	}
	gitMu.Lock()
	defer gitMu.Unlock()
	stage := []string{"add", "--", rel}
	if removed {
		stage = []string{"rm", "-q", "--cached", "--ignore-unmatch", "--", rel}
	}
	if _, err := s.git(ctx, dir, stage...); err != nil {
		return fmt.Errorf("%w: %v", ErrCommit, err)
	}
	if out, err := s.git(ctx, dir, "status", "--porcelain", "--", rel); err != nil || strings.TrimSpace(out) == "" {
		return nil
	}
	args := []string{"commit", "-q", "-m", message}
	if out, _ := s.git(ctx, dir, "config", "--bool", "--get", "pass.signcommits"); strings.TrimSpace(out) == "true" {
		args = append(args, "-S")
	}
	if _, err := s.git(ctx, dir, append(args, "--", rel)...); err != nil {
		return fmt.Errorf("%w: %v", ErrCommit, err)
	}
	return nil
}

// gitDir is pass's INNER_GIT_DIR: the nearest existing directory holding
// file, if it is in a git work tree; "" otherwise (also when git is
// missing: pass then stores without committing too).
func (s *Store) gitDir(ctx context.Context, file string) string {
	root := filepath.Clean(s.Dir)
	dir := filepath.Dir(file)
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			break
		}
		if parent := filepath.Dir(dir); parent == root || strings.HasPrefix(parent, root+string(filepath.Separator)) {
			dir = parent
		} else {
			break
		}
	}
	out, err := s.git(ctx, dir, "rev-parse", "--is-inside-work-tree")
	if err != nil || strings.TrimSpace(out) != "true" {
		return ""
	}
	return dir
}
