package setup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Options are what `setup` was asked to do.
type Options struct {
	Hosts  []string         // URLs whose hosts to set up (default https://bitbucket.org)
	Flavor bitbucket.Flavor // "" keeps what was recorded, else the host's default
	// APIURLSet says whether --api-url was given; APIURL is its value
	// ("" back to the default).
	APIURLSet bool
	APIURL    string
	Detect    bool // ask each host whether it is Data Center
	DryRun    bool
	Remove    bool
	// Executable is this helper's path: what git is told to run.
	Executable string
	// Git runs git (Out gets what a dry run would change).
	Git *Git
	// Store keeps what setup recorded for each host (so --remove undoes
	// exactly that).
	Store *store.Store
	// Client is the HTTP client of --detect (nil: Go's default transport,
	// which honours HTTPS_PROXY and SSL_CERT_FILE).
	Client *http.Client
}

// ErrUsage marks options that do not go together.
var ErrUsage = errors.New("usage")

// Check refuses options that do not go together (an ErrUsage), before
// anything is opened.
func (o Options) Check() error {
	switch {
	case o.Detect && (o.Remove || o.Flavor != ""):
		return fmt.Errorf("%w: --detect decides the flavour: it goes with neither --flavor nor --remove", ErrUsage)
	case o.APIURLSet && o.Remove:
		return fmt.Errorf("%w: --api-url does not go with --remove (which forgets the host's settings)", ErrUsage)
	case o.APIURLSet && len(o.Hosts) > 1:
		return fmt.Errorf("%w: --api-url applies to one --host at a time", ErrUsage)
	}
	return nil
}

// Run sets up (or, with Remove, undoes) each host, writing one line per
// host to out.
func Run(ctx context.Context, o Options, out io.Writer) error {
	if err := o.Check(); err != nil {
		return err
	}
	hosts := o.Hosts
	if len(hosts) == 0 {
		hosts = []string{"https://" + bitbucket.CloudHost}
	}
	// Every host is read (and detected) before anything changes.
	var targets []target
	for _, raw := range hosts {
		sc, _, err := bitbucket.ParseUserURL(raw, bitbucket.DefaultFlavor)
		if err != nil {
			return fmt.Errorf("--host %s: %w", bitbucket.RedactURL(raw), err)
		}
		t := target{host: sc.Host, url: "https://" + sc.Host}
		if o.Detect {
			if err := t.detect(ctx, o.Client, sc, out); err != nil {
				return err
			}
		}
		targets = append(targets, t)
	}
	value, err := HelperValue(o.Executable)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if err := o.one(ctx, t, value, out); err != nil {
			return err
		}
	}
	return nil
}

// target is one host to set up.
type target struct {
	host, url string
	flavor    bitbucket.Flavor // what --detect found, if it ran
	base      string           // where --detect found the instance
}

// one sets up, or undoes, one host.
func (o Options) one(ctx context.Context, t target, value string, out io.Writer) error {
	ix, err := o.Store.Load()
	if err != nil {
		return err
	}
	hc := ix.Hosts[t.host]
	if o.Remove {
		if err := o.Git.Uninstall(ctx, t.url, cmp.Or(hc.HelperValue, value), hc.AddedUseHTTP, hc.PrevUseHTTP); err != nil {
			return err
		}
		if o.DryRun {
			fmt.Fprintf(out, "%s: would stop using git-credential-bbtoken\n", t.url)
			return nil
		}
		if err := o.Store.Update(ctx, func(tx *store.Tx) error {
			delete(tx.Index.Hosts, t.host)
			tx.Changed()
			return nil
		}); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: git no longer uses git-credential-bbtoken here\n", t.url)
		return nil
	}
	f := cmp.Or(t.flavor, o.Flavor, bitbucket.Flavor(hc.Flavor), bitbucket.DefaultFlavor(t.host))
	res, err := o.Git.Install(ctx, t.url, value)
	if err != nil {
		return err
	}
	if o.DryRun {
		fmt.Fprintf(out, "%s: would use git-credential-bbtoken (%s)\n", t.url, f)
		o.printAPIURL(out, t.url, "verify would use")
		return nil
	}
	if err := o.Store.Update(ctx, func(tx *store.Tx) error {
		if tx.Index.Hosts == nil {
			tx.Index.Hosts = map[string]store.HostConfig{}
		}
		cur := tx.Index.Hosts[t.host]
		cur.Flavor = string(f)
		cur.HelperValue = value
		if o.APIURLSet {
			cur.APIURL = o.APIURL
		}
		if t.base != "" {
			cur.BaseURL = t.base
		}
		if res.AddedUseHTTP && !cur.AddedUseHTTP {
			cur.AddedUseHTTP, cur.PrevUseHTTP = true, res.PrevUseHTTP
		}
		tx.Index.Hosts[t.host] = cur
		tx.Changed()
		return nil
	}); err != nil {
		return err
	}
	state := "already set up"
	if res.AddedHelper || res.AddedUseHTTP {
		state = "set up"
	}
	fmt.Fprintf(out, "%s: %s: git uses only git-credential-bbtoken (%s) with useHttpPath=true\n", t.url, state, f)
	o.printAPIURL(out, t.url, "verify uses")
	return nil
}

func (o Options) printAPIURL(out io.Writer, host, verb string) {
	if !o.APIURLSet {
		return
	}
	what := "the default REST API"
	if o.APIURL != "" {
		what = "the REST API at " + o.APIURL
	}
	fmt.Fprintf(out, "%s: %s %s\n", host, verb, what)
}

// detect probes the instance behind one --host and records its flavour
// and base URL, or fails (before anything is changed) when it does not
// answer or shows no Bitbucket Data Center marker.
func (t *target) detect(ctx context.Context, client *http.Client, sc bitbucket.Scope, out io.Writer) error {
	if sc.Host == bitbucket.CloudHost {
		fmt.Fprintf(out, "https://%s: Bitbucket Cloud (nothing to detect)\n", sc.Host)
		t.flavor, t.base = bitbucket.Cloud, "https://"+sc.Host
		return nil
	}
	base := baseURLOf(sc)
	d, err := Detect(ctx, client, base)
	if err != nil {
		return fmt.Errorf("--detect: %w; nothing changed (to set it up anyway: setup --host %s --flavor datacenter)", err, base)
	}
	if !d.DataCenter {
		return fmt.Errorf("--detect: %s answered HTTP %d without a Bitbucket Data Center marker (an X-AREQUESTID header or WWW-Authenticate realm=\"Atlassian Bitbucket\"); nothing changed (if it is Bitbucket Data Center: setup --host %s --flavor datacenter)", base, d.Status, base)
	}
	fmt.Fprintf(out, "%s: detected Bitbucket Data Center (%s)\n", base, d.Evidence)
	t.flavor, t.base = bitbucket.DataCenter, base
	return nil
}

// baseURLOf is the instance's base URL: the host and the context path that
// precedes /scm/ (or all of the path when there is no /scm/).
func baseURLOf(sc bitbucket.Scope) string {
	segs := sc.Segments()
	if i := slices.Index(segs, "scm"); i >= 0 {
		segs = segs[:i]
	}
	if len(segs) == 0 {
		return "https://" + sc.Host
	}
	return "https://" + sc.Host + "/" + strings.Join(segs, "/")
}
