package cli

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/setup"
)

// detectClient is the HTTP client of `setup --detect` (nil: Go's default
// transport, which honours HTTPS_PROXY and SSL_CERT_FILE); tests replace it.
var detectClient *http.Client

// detection is what `setup --detect` found for one host.
type detection struct {
	flavor bitbucket.Flavor
	base   string // base URL, with the context path
}

// detectHost probes the instance behind one --host and records its flavour
// and base URL in found, or fails (before anything is changed) when it does
// not answer or shows no Bitbucket Data Center marker.
func (r *runner) detectHost(found map[string]detection, sc bitbucket.Scope) error {
	if sc.Host == bitbucket.CloudHost {
		fmt.Fprintf(r.env.Stdout, "https://%s: Bitbucket Cloud (nothing to detect)\n", sc.Host)
		found[sc.Host] = detection{flavor: bitbucket.Cloud, base: "https://" + sc.Host}
		return nil
	}
	base := baseURLOf(sc)
	d, err := setup.Detect(context.Background(), detectClient, base)
	if err != nil {
		return fmt.Errorf("--detect: %w; nothing changed (to set it up anyway: setup --host %s --flavor datacenter)", err, base)
	}
	if !d.DataCenter {
		return fmt.Errorf("--detect: %s answered HTTP %d without a Bitbucket Data Center marker (an X-AREQUESTID header or WWW-Authenticate realm=\"Atlassian Bitbucket\"); nothing changed (if it is Bitbucket Data Center: setup --host %s --flavor datacenter)", base, d.Status, base)
	}
	fmt.Fprintf(r.env.Stdout, "%s: detected Bitbucket Data Center (%s)\n", base, d.Evidence)
	found[sc.Host] = detection{flavor: bitbucket.DataCenter, base: base}
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
