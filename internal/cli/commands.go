package cli

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bbapi"
	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/gitrepo"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/setup"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

const usage = `git-credential-bbtoken: scoped Bitbucket tokens for git, kept in the OS keyring

Usage:
  git-credential-bbtoken add [URL] [--kind repository|project|workspace|api|personal]
                         [--username NAME] [--expires YYYY-MM-DD] [--label TEXT] [--email ADDRESS]
                         [--store keyring|pass | --from-env VAR]
        Store a token (read from stdin, or prompted for without echo on a
        terminal) for a clone URL, browser URL or prefix. Without URL, inside
        a git work tree: the origin remote's repository. Prints the entry id.
        --email: a Cloud API token's Atlassian e-mail, which verify needs.
        --store: the OS keyring, or the password store (pass, gpg) that a
        team may share through git (default: the store setting).
        --from-env VAR: store no token; get reads it from $VAR (CI).
  git-credential-bbtoken list [--json]
        Show stored tokens (never their secrets) and where each is kept.
  git-credential-bbtoken remove ID|URL
        Delete a token: its metadata and its keyring secret.
  git-credential-bbtoken login [HOST_URL] --consumer KEY [--callback URL] [--no-browser] [--scopes LIST]
        Log in with an OAuth consumer (its secret read from stdin or
        prompted for): a browser comes back to --callback (default
        http://127.0.0.1:53171/, the consumer's callback URL); with
        --no-browser, open the printed URL anywhere and paste back the URL
        the browser was sent to. The access token is renewed when needed.
  git-credential-bbtoken logout [HOST_URL]
        Remove the host's login.
  git-credential-bbtoken create URL [--kind personal|project|repository] [--permissions LIST]
                         [--expiry-days N] [--name TEXT] [--username NAME]
        Data Center: have the server make an HTTP access token for URL (kind
        from the URL, like add; permissions default to read and write
        there, e.g. REPO_WRITE) and keep it in the keyring, never shown. It takes the
        password of --username (stdin or hidden prompt; never stored), or
        the host's OAuth login. Prints the entry id.
  git-credential-bbtoken rotate ID|URL [--expiry-days N]
        Replace a created token: a new one with the same permissions,
        checked, then served; the old one is revoked after a grace period
        (git processes holding it finish first). Prints the entry id.
  git-credential-bbtoken revoke ID|URL
        Revoke a created token on the server, then remove it here.
  git-credential-bbtoken setup [--host URL]... [--flavor cloud|datacenter] [--api-url URL] [--detect] [--dry-run] [--remove]
        Make git use this helper (and only it) for each host
        (default https://bitbucket.org), with credential.useHttpPath=true.
        --detect: ask the host (HEAD/GET, 5s) whether it is Data Center.
        --api-url: the host's REST API for verify ("" for the default).
  git-credential-bbtoken verify [ID|URL] [--json]
        Check stored tokens against the Bitbucket REST API: valid, rejected,
        lacking scope, rate-limited; type, scopes, clone/push. Exit 1 when
        any is not valid. Never run by git: get stays offline.
  git-credential-bbtoken repair [--dry-run] [--delete-unknown]
        Check the index against the keyring: delete secrets left by an
        interrupted write, report entries whose secret is gone, finish
        interrupted creates and rotations (the password on stdin, as for
        rotate).
  git-credential-bbtoken doctor [--fix] [--json]
        Check git, the helper list and useHttpPath per host, the keyring,
        the index, tokens, plaintext credentials and this work tree's
        remotes; one line each with its fix. Exit 1 when any needs action.
        --fix re-runs setup for hosts set up wrongly, deletes orphaned
        secrets, drops checks of passwords and makes a readable index
        private, nothing else.
  git-credential-bbtoken import [--from FILE] [--dry-run] [--remove-plaintext]
        Move Bitbucket tokens from a git-credential-store file (default
        ~/.git-credentials) into the keyring; report dead app passwords.
        --remove-plaintext removes the imported lines from FILE.
  git-credential-bbtoken config [expiry-warnings [on|off] | store [keyring|pass]]
        Show or change a setting: expiry-warnings (one stderr line a day
        per token in its last 7 days; default on); store (where add,
        import and git's store put new tokens; default keyring).
  git-credential-bbtoken version | help [--man]
  git-credential-bbtoken get | store | erase
        git's credential helper protocol (git runs these).

Environment:
  GIT_CREDENTIAL_BBTOKEN_TRACE=1|/abs/file   trace decisions (secrets masked)
  GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT=5s  bound on each keyring call
  GIT_CREDENTIAL_BBTOKEN_LOCK_TIMEOUT=10s    bound on the wait for the index lock
  GIT_CREDENTIAL_BBTOKEN_VERIFY_MAX_WAIT=10s total wait on rate limits (verify)
  GIT_CREDENTIAL_BBTOKEN_ROTATE_GRACE=10s    how long a rotated-out token keeps working

Exit status: 0 success, 1 error, 2 usage error.
`

var commandUsage = map[string]string{
	"add":    "usage: git-credential-bbtoken add [URL] [--kind KIND] [--username NAME] [--expires YYYY-MM-DD] [--label TEXT] [--email ADDRESS] [--store keyring|pass | --from-env VAR]",
	"list":   "usage: git-credential-bbtoken list [--json]",
	"remove": "usage: git-credential-bbtoken remove ID|URL",
	"login":  "usage: git-credential-bbtoken login [HOST_URL] --consumer KEY [--callback URL] [--no-browser] [--scopes LIST]",
	"logout": "usage: git-credential-bbtoken logout [HOST_URL]",
	"create": "usage: git-credential-bbtoken create URL [--kind personal|project|repository] [--permissions LIST] [--expiry-days N] [--name TEXT] [--username NAME]",
	"rotate": "usage: git-credential-bbtoken rotate ID|URL [--expiry-days N]",
	"revoke": "usage: git-credential-bbtoken revoke ID|URL",
	"setup":  "usage: git-credential-bbtoken setup [--host URL]... [--flavor cloud|datacenter] [--api-url URL] [--detect] [--dry-run] [--remove]",
	"doctor": "usage: git-credential-bbtoken doctor [--fix] [--json]",
	"import": "usage: git-credential-bbtoken import [--from FILE] [--dry-run] [--remove-plaintext]",
	"verify": "usage: git-credential-bbtoken verify [ID|URL] [--json]",
	"repair": "usage: git-credential-bbtoken repair [--dry-run] [--delete-unknown]",
	"config": "usage: git-credential-bbtoken config [expiry-warnings [on|off] | store [keyring|pass]]",
}

func (r *runner) add(args []string) error {
	fs := flag.NewFlagSet("add", flag.ContinueOnError)
	kind := fs.String("kind", "", "")
	username := fs.String("username", "", "")
	expires := fs.String("expires", "", "")
	label := fs.String("label", "", "")
	email := fs.String("email", "", "")
	where := fs.String("store", "", "")
	fromEnv := fs.String("from-env", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *where != "" && !slices.Contains(store.Stores, *where) {
		return usagef("--store %q: use keyring or pass", *where)
	}
	if *where != "" && *fromEnv != "" {
		return usagef("--store and --from-env exclude each other: an env entry keeps no token anywhere")
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "from-env" && *fromEnv == "" {
			err = usagef("--from-env needs the name of a variable, e.g. --from-env BITBUCKET_REPO_TOKEN")
		}
	})
	if err != nil {
		return err
	}
	if *fromEnv != "" {
		if err := helper.CheckEnvName(*fromEnv); err != nil {
			return usagef("--from-env: %v", err)
		}
	}
	if len(pos) > 1 {
		return usagef("add takes at most one URL, got %d arguments (the token is read from stdin, never from arguments)", len(pos))
	}
	if *kind != "" && !slices.Contains(store.AddKinds, store.Kind(*kind)) {
		return usagef("--kind %q: use repository, project, workspace, api or personal", *kind)
	}
	url := ""
	if len(pos) == 1 {
		url = pos[0]
		if err := refuseToken(url); err != nil {
			return err
		}
	} else {
		url, err = gitrepo.RemoteURL(r.env.Dir, "origin")
		if err != nil {
			return fmt.Errorf("no URL given and %w: pass the repository's URL, e.g. add https://bitbucket.org/WORKSPACE/REPO", err)
		}
	}
	// Refuse an unusable URL (ssh, http, garbage) before asking for the
	// token. The flavour only shapes the scope, never the verdict.
	if _, _, err := bitbucket.ParseUserURL(url, bitbucket.DefaultFlavor); err != nil {
		if len(pos) == 0 {
			return fmt.Errorf("the origin remote: %w", err)
		}
		return err
	}
	if len(pos) == 0 {
		fmt.Fprintf(r.env.Stderr, "using the origin remote: %s\n", bitbucket.RedactURL(url))
	}
	h, err := r.helper(r.interactive())
	if err != nil {
		return err
	}
	opts := helper.AddOptions{URL: url, Kind: store.Kind(*kind), Username: *username, Expires: *expires, Label: *label, Email: *email, Store: *where, FromEnv: *fromEnv}
	if err := h.CheckAddOptions(opts); err != nil {
		return err
	}
	if *fromEnv == "" {
		if opts.Token, err = r.readToken(url); err != nil {
			return err
		}
	}
	e, err := h.Add(context.Background(), opts)
	if errors.Is(err, secrets.ErrUnavailable) {
		return fmt.Errorf("%w; without a keyring, keep the token in a password store (--store pass, after `pass init KEY-ID`) or read it from the environment (--from-env VAR), or start a keyring (e.g. gnome-keyring-daemon in a D-Bus session)", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(r.env.Stdout, e.ID)
	who := e.Username
	if e.AuthType != "" {
		who = e.AuthType
	}
	switch e.Store {
	case store.StoreEnv:
		fmt.Fprintf(r.env.Stderr, "added %s token for %s (as %s), read from $%s when git asks\n", e.Kind, e.URL, who, e.Env)
	case store.StorePass:
		fmt.Fprintf(r.env.Stderr, "added %s token %s for %s (as %s) to the password store as %s/%s\n", e.Kind, opts.Token, e.URL, who, passstore.Folder, e.Name)
	default:
		fmt.Fprintf(r.env.Stderr, "added %s token %s for %s (as %s)\n", e.Kind, opts.Token, e.URL, who)
	}
	return nil
}

func (r *runner) interactive() bool {
	return r.env.IsTerminal != nil && r.env.IsTerminal()
}

// readToken reads the token: without echo from a terminal, else the first
// line of stdin. Never from argv, where every process could read it.
func (r *runner) readToken(url string) (credential.Secret, error) {
	in := bufio.NewReaderSize(io.LimitReader(r.env.Stdin, helper.MaxTokenLength*2), 4096)
	tok, err := r.readSecret(in, "Token for "+bitbucket.RedactURL(url), "token")
	if err != nil {
		return "", err
	}
	if tok == "" {
		return "", fmt.Errorf("%w: no token on stdin (pipe it in, e.g. `add URL < token.txt`, or run on a terminal to be prompted)", helper.ErrBadToken)
	}
	return credential.Secret(tok), nil
}

// readSecret reads a secret: without echo from a terminal, after prompt,
// else the first line of in (whose later lines stay readable); what names
// it in messages. It is registered for redaction before anything can
// print it.
func (r *runner) readSecret(in *bufio.Reader, prompt, what string) (string, error) {
	var raw string
	if r.interactive() && r.env.ReadPassword != nil {
		fmt.Fprintf(r.env.Stderr, "%s (input hidden): ", prompt)
		b, err := r.env.ReadPassword()
		fmt.Fprintln(r.env.Stderr)
		if err != nil {
			return "", fmt.Errorf("reading the %s: %w", what, err)
		}
		raw = string(b)
	} else {
		line, err := in.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the %s from stdin: %w", what, err)
		}
		if errors.Is(err, io.EOF) && len(line) >= helper.MaxTokenLength*2 {
			return "", fmt.Errorf("%w: the first line of stdin is longer than %d bytes", helper.ErrBadToken, helper.MaxTokenLength)
		}
		raw = line
	}
	s := strings.TrimSpace(raw)
	r.red.Add(s)
	return s, nil
}

// listed is one row of `list --json`.
type listed struct {
	ID       string `json:"id"`
	URL      string `json:"url"`
	Kind     string `json:"kind"`
	Username string `json:"username"`
	Label    string `json:"label"`
	Expires  string `json:"expires"`
	State    string `json:"state"`
	Store    string `json:"store"`
	Env      string `json:"env,omitempty"`  // env entries: the variable
	Name     string `json:"name,omitempty"` // pass entries: the name in the password store
	// Tokens created through the Data Center API: the server's id and
	// permissions.
	ServerID    string   `json:"server_id,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
}

func (r *runner) list(args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("list takes no arguments")
	}
	h, err := r.helper(false)
	if err != nil {
		return err
	}
	// What a password store holds now (a teammate's pull), then the
	// index only: list works without a keyring.
	if err := h.RefreshPass(context.Background()); err != nil {
		return err
	}
	ix, err := h.Store.Load()
	if err != nil {
		return err
	}
	if v := ix.Newer(); v != 0 {
		fmt.Fprintf(r.env.Stderr, "note: %s was written by a newer git-credential-bbtoken (format %d): shown read-only; upgrade to change it\n", h.Store.Path(), v)
	}
	now := time.Now()
	if r.env.Now != nil {
		now = r.env.Now()
	}
	rows := make([]listed, 0, len(ix.Entries))
	for _, e := range ix.Entries {
		user := e.Username
		if e.AuthType != "" {
			user = ""
		}
		rows = append(rows, listed{
			ID: e.ID, URL: e.URL, Kind: string(e.Kind), Username: user, Label: e.Label,
			Expires: e.Expires, State: string(e.EffectiveState(now)), Store: e.StoreName(), Env: e.Env, Name: e.Name,
		})
		if e.Server != nil {
			rows[len(rows)-1].ServerID, rows[len(rows)-1].Permissions = e.Server.ID, e.Server.Permissions
		}
	}
	slices.SortStableFunc(rows, func(a, b listed) int {
		return cmp.Or(strings.Compare(a.URL, b.URL), strings.Compare(a.Kind, b.Kind))
	})
	if *asJSON {
		enc := json.NewEncoder(r.env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(r.env.Stdout, "no tokens stored; add one with: git-credential-bbtoken add https://bitbucket.org/WORKSPACE/REPO")
		return nil
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tEXPIRES\tUSERNAME\tSTORE\tURL\tLABEL")
	for _, row := range rows {
		user := row.Username
		if user == "" {
			user = "-"
		}
		where := row.Store
		if row.Env != "" {
			where += ":$" + row.Env
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.ID, row.Kind, row.State, dash(row.Expires), user, where, row.URL, dash(row.Label))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (r *runner) remove(args []string) error {
	fs := flag.NewFlagSet("remove", flag.ContinueOnError)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("%s", commandUsage["remove"])
	}
	if err := refuseToken(pos[0]); err != nil {
		return err
	}
	h, err := r.helper(r.interactive())
	if err != nil {
		return err
	}
	removed, err := h.Remove(context.Background(), pos[0])
	for _, e := range removed {
		fmt.Fprintf(r.env.Stdout, "removed %s (%s %s)\n", e.ID, e.Kind, e.URL)
	}
	return err
}

type hostList []string

func (h *hostList) String() string     { return strings.Join(*h, ",") }
func (h *hostList) Set(v string) error { *h = append(*h, v); return nil }

func (r *runner) setup(args []string) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	var hosts hostList
	fs.Var(&hosts, "host", "")
	flavorArg := fs.String("flavor", "", "")
	dryRun := fs.Bool("dry-run", false, "")
	remove := fs.Bool("remove", false, "")
	apiURLArg := fs.String("api-url", "", "")
	detect := fs.Bool("detect", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("setup takes no arguments (use --host URL)")
	}
	o := setup.Options{Hosts: hosts, Detect: *detect, DryRun: *dryRun, Remove: *remove, Executable: r.env.Executable, Client: detectClient}
	fs.Visit(func(f *flag.Flag) { o.APIURLSet = o.APIURLSet || f.Name == "api-url" })
	if o.APIURLSet && *apiURLArg != "" {
		if o.APIURL, err = bbapi.ParseBaseURL(*apiURLArg); err != nil {
			return usagef("--api-url: %v", err)
		}
	}
	if *flavorArg != "" {
		if o.Flavor, err = bitbucket.ParseFlavor(*flavorArg); err != nil {
			return usagef("--flavor: %v", err)
		}
	}
	for _, raw := range hosts {
		if err := refuseToken(raw); err != nil {
			return err
		}
	}
	usage := func(err error) error {
		if errors.Is(err, setup.ErrUsage) {
			return usagef("%s", strings.TrimPrefix(err.Error(), "usage: "))
		}
		return err
	}
	if err := o.Check(); err != nil {
		return usage(err)
	}
	h, err := r.helper(true)
	if err != nil {
		return err
	}
	o.Store = h.Store
	o.Git = &setup.Git{Path: r.env.Git, DryRun: *dryRun, Out: r.env.Stdout}
	return usage(setup.Run(context.Background(), o, r.env.Stdout))
}

// refuseToken catches a token pasted where a URL or an id goes: without a
// scheme, the argument (or what comes before its first '/': base64 tokens
// hold slashes) has a Bitbucket token prefix, or is long, random-looking
// text with no dot. Messages never show it (see Main), but the user should
// know where it went.
func refuseToken(arg string) error {
	if strings.Contains(arg, "://") {
		return nil
	}
	first, _, _ := strings.Cut(arg, "/")
	token := len(arg) >= 32 && !strings.ContainsAny(arg, "/.:@")
	for _, s := range []string{arg, first} {
		token = token || bitbucket.HasTokenPrefix(s) || bitbucket.LooksLikeToken(s) && !strings.Contains(s, ".")
	}
	if token {
		return usagef("the argument looks like a token, not a URL or an id: tokens are read from stdin or a hidden prompt, never from arguments (if it was a real token it may now be in your shell history: consider revoking it)")
	}
	return nil
}

func (r *runner) repair(args []string) error {
	fs := flag.NewFlagSet("repair", flag.ContinueOnError)
	var o store.RepairOptions
	fs.BoolVar(&o.DryRun, "dry-run", false, "")
	fs.BoolVar(&o.DeleteUnknown, "delete-unknown", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("%s", commandUsage["repair"])
	}
	h, err := r.tokenHelper(true)
	if err != nil {
		return err
	}
	if !o.DryRun {
		// The index's copies of pass entries, as the password store has them now.
		if err := h.RefreshPass(context.Background()); err != nil {
			return err
		}
	}
	unfinished, err := r.finishUnfinished(h, o.DryRun)
	if err != nil {
		return err
	}
	rep, err := h.Store.Repair(context.Background(), o)
	if err != nil {
		return err
	}
	out := r.env.Stdout
	verb := "deleted"
	if o.DryRun {
		verb = "would delete"
	}
	for _, id := range rep.Orphans {
		fmt.Fprintf(out, "%s orphaned secret %s (left by an interrupted write)\n", verb, id)
	}
	for _, id := range rep.Removals {
		if o.DryRun {
			fmt.Fprintf(out, "would complete the interrupted removal of entry %s\n", id)
		} else {
			fmt.Fprintf(out, "completed the interrupted removal of entry %s\n", id)
		}
	}
	for _, id := range rep.Unknown {
		if o.DeleteUnknown {
			fmt.Fprintf(out, "%s unknown keyring item %s\n", verb, id)
		} else {
			fmt.Fprintf(out, "unknown keyring item %s under service %s: no entry here names it (another config directory may own it); --delete-unknown deletes it\n", id, secrets.Service)
		}
	}
	for _, id := range rep.Failed {
		fmt.Fprintf(out, "could not delete secret %s; run repair again when the keyring answers\n", id)
	}
	if n := len(rep.Indexed); n > 0 {
		if o.DryRun {
			fmt.Fprintf(out, "would record where %d token(s) added by an older version are kept, so get reads them directly\n", n)
		} else {
			fmt.Fprintf(out, "recorded where %d token(s) added by an older version are kept: get reads them directly now\n", n)
		}
	}
	if n := len(rep.Unchecked); n > 0 {
		if o.DryRun {
			fmt.Fprintf(out, "would drop the check an older version kept of %d value(s) that are not tokens (%s): a password could be guessed from one\n", n, strings.Join(rep.Unchecked, ", "))
		} else {
			fmt.Fprintf(out, "dropped the check an older version kept of %d value(s) that are not tokens (%s)\n", n, strings.Join(rep.Unchecked, ", "))
		}
	}
	for _, e := range rep.Missing {
		fmt.Fprintf(out, "entry %s (%s %s) has no secret in the keyring: add the token again, or `remove %s`\n", e.ID, e.Kind, e.URL, e.ID)
	}
	secrets := "secrets not listable on this platform"
	if rep.Secrets >= 0 {
		secrets = fmt.Sprintf("%d keyring item(s)", rep.Secrets)
	}
	if !rep.Consistent(o) || unfinished {
		return fmt.Errorf("needs attention (%d entries, %s): see above", rep.Entries, secrets)
	}
	fmt.Fprintf(out, "consistent: %d entries, %s\n", rep.Entries, secrets)
	return nil
}

func (r *runner) config(args []string) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 2 {
		return usagef("%s", commandUsage["config"])
	}
	check := func(err error) error {
		return usagef("%s", strings.TrimPrefix(err.Error(), helper.ErrBadSetting.Error()+": "))
	}
	switch len(pos) {
	case 1:
		if err := helper.CheckSetting(pos[0]); err != nil {
			return check(err)
		}
	case 2:
		if err := helper.CheckSettingValue(pos[0], pos[1]); err != nil {
			return check(err)
		}
	}
	h, err := r.helper(false)
	if err != nil {
		return err
	}
	if len(pos) == 2 {
		return h.SetSetting(context.Background(), pos[0], pos[1])
	}
	ix, err := h.Store.Load()
	if err != nil {
		return err
	}
	keys := helper.SettingKeys()
	if len(pos) == 1 {
		keys = pos[:1]
	}
	for _, k := range keys {
		fmt.Fprintf(r.env.Stdout, "%s=%s\n", k, helper.Setting(ix, k))
	}
	return nil
}
