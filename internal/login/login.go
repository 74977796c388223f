// Package login gets an OAuth authorization code from the person at the
// keyboard: through a browser that comes back to a loopback listener, or,
// where no browser runs here (SSH, containers), by printing the URL and
// reading back the URL the browser was sent to.
package login

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bbapi"
)

// DefaultCallback is the callback URL a consumer is created with for
// `login` (Bitbucket needs it to match): a fixed loopback port.
const DefaultCallback = "http://127.0.0.1:53171/"

// DefaultWait bounds the wait for the browser.
const DefaultWait = 3 * time.Minute

// ErrTimeout: the browser did not come back in time.
var ErrTimeout = errors.New("no answer from the browser")

// Options say how to reach the person.
type Options struct {
	NoBrowser bool
	Callback  string        // the consumer's callback URL (loopback, for the browser way)
	Browser   string        // $BROWSER; "" = the platform's opener
	Wait      time.Duration // 0 = DefaultWait
	In        *bufio.Reader // where the pasted redirect is read (--no-browser)
	Out       io.Writer     // where instructions go (stderr)
}

// Code returns the authorization code for a login whose browser URL is
// authURL and whose redirects carry state.
func Code(ctx context.Context, o Options, authURL, state string) (string, error) {
	if o.NoBrowser {
		return pasted(o, authURL, state)
	}
	return browser(ctx, o, authURL, state)
}

func pasted(o Options, authURL, state string) (string, error) {
	fmt.Fprintf(o.Out, "Open this URL in a browser, log in and grant access:\n\n  %s\n\nThen paste here the URL the browser was sent to (it may show an error page: its address is what counts), or the code in it:\n", authURL)
	line, err := o.In.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the redirect URL: %w", err)
	}
	if strings.TrimSpace(line) == "" {
		return "", fmt.Errorf("%w: no redirect URL or code on the next line of stdin", bbapi.ErrDenied)
	}
	return bbapi.CodeFrom(line, state)
}

func browser(ctx context.Context, o Options, authURL, state string) (string, error) {
	cb, err := url.Parse(o.Callback)
	if err != nil || cb.Scheme != "http" || cb.Port() == "" || !loopback(cb.Hostname()) {
		return "", fmt.Errorf("--callback %q: the browser way needs a loopback URL with a port, like %s (the consumer's callback URL must be the same); or use --no-browser", o.Callback, DefaultCallback)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cb.Hostname(), cb.Port()))
	if err != nil {
		return "", fmt.Errorf("listening on %s for the browser: %w (another login running? or use --no-browser)", cb.Host, err)
	}
	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	path := cb.Path
	if path == "" {
		path = "/"
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.URL.Query().Get("state") != state {
			// Not this login's redirect (another local program, a stale
			// tab): refused, and the login keeps waiting for its own.
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintln(w, "git-credential-bbtoken: not the redirect this login waits for.")
			return
		}
		code, err := bbapi.CodeFromQuery(r.URL.Query(), state)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintln(w, "git-credential-bbtoken: the login did not succeed; see the terminal.")
		} else {
			fmt.Fprintln(w, "git-credential-bbtoken: logged in. You can close this window.")
		}
		select {
		case done <- result{code, err}:
		default:
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	wait := o.Wait
	if wait <= 0 {
		wait = DefaultWait
	}
	if err := open(o.Browser, authURL); err != nil {
		fmt.Fprintf(o.Out, "Could not start a browser (%v): open this URL yourself:\n\n  %s\n\n", err, authURL)
	} else {
		fmt.Fprintf(o.Out, "A browser opens to log in to Bitbucket; if none does, open:\n\n  %s\n\n", authURL)
	}
	fmt.Fprintf(o.Out, "Waiting for the browser to come back to %s (at most %s)...\n", o.Callback, wait.Round(time.Second))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.code, r.err
	case <-timer.C:
		return "", fmt.Errorf("%w within %s: log in again, or use --no-browser and paste the redirect", ErrTimeout, wait.Round(time.Second))
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// open starts the browser on u: $BROWSER (a program, given u as its
// argument), else the platform's opener. It does not wait for it.
func open(browser, u string) error {
	var cmd *exec.Cmd
	switch {
	case browser != "":
		cmd = exec.Command(browser, u)
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", u)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errors.New("no display here")
		}
		cmd = exec.Command("xdg-open", u)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
