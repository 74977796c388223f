package setup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
)

// DetectTimeout bounds the whole detection (both requests).
const DetectTimeout = 5 * time.Second

// Detection is what Detect learnt about a base URL.
type Detection struct {
	BaseURL    string
	DataCenter bool   // a Bitbucket Data Center marker was seen
	Evidence   string // which marker, e.g. "X-AREQUESTID header on HEAD (HTTP 302)"
	Status     int    // the last HTTP status seen
}

// Detect asks baseURL whether it is a Bitbucket Data Center instance: a HEAD,
// then (when the HEAD shows nothing) a GET, both within DetectTimeout. Data
// Center answers every request with an X-AREQUESTID header, and a 401 with
// WWW-Authenticate realm="Atlassian Bitbucket". Redirects are followed only
// on the same host, so a single sign-on page elsewhere cannot answer for it.
// An error means no answer at all; an answer without markers is a Detection
// with DataCenter false.
func Detect(ctx context.Context, client *http.Client, baseURL string) (Detection, error) {
	det := Detection{BaseURL: baseURL}
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return det, fmt.Errorf("%s is not an https URL", baseURL)
	}
	ctx, cancel := context.WithTimeout(ctx, DetectTimeout)
	defer cancel()
	c := http.Client{}
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != u.Host || req.URL.Scheme != "https" || len(via) >= 5 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	var lastErr error
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		req, err := http.NewRequestWithContext(ctx, method, baseURL, nil)
		if err != nil {
			return det, err
		}
		req.Header.Set("User-Agent", "git-credential-bbtoken")
		resp, err := c.Do(req)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10))
		resp.Body.Close()
		det.Status = resp.StatusCode
		if ev := marker(resp.Header); ev != "" {
			det.DataCenter = true
			det.Evidence = fmt.Sprintf("%s on %s (HTTP %d)", ev, method, resp.StatusCode)
			return det, nil
		}
		lastErr = nil
	}
	if det.Status == 0 {
		if errors.Is(lastErr, context.DeadlineExceeded) || ctx.Err() != nil {
			return det, fmt.Errorf("no answer from %s within %s", baseURL, DetectTimeout)
		}
		return det, fmt.Errorf("no answer from %s: %w", baseURL, lastErr)
	}
	return det, nil
}

// marker names the Bitbucket Data Center marker in a response's headers.
func marker(h http.Header) string {
	if h.Get("X-AREQUESTID") != "" {
		return "X-AREQUESTID header"
	}
	for _, v := range h.Values("WWW-Authenticate") {
		if realmIs(v, "Atlassian Bitbucket") {
			return `WWW-Authenticate realm="Atlassian Bitbucket"`
		}
	}
	return ""
}

// realmIs reports whether a WWW-Authenticate value carries realm="want"
// (the realm parameter's name is case-insensitive, its value is not).
func realmIs(v, want string) bool {
	lower := bitbucket.LowerASCII(v)
	for i := 0; ; {
		j := strings.Index(lower[i:], "realm=")
		if j < 0 {
			return false
		}
		rest := v[i+j+len("realm="):]
		if val, ok := strings.CutPrefix(rest, `"`); ok {
			if end := strings.IndexByte(val, '"'); end >= 0 && val[:end] == want {
				return true
			}
		}
		i += j + len("realm=")
	}
}
