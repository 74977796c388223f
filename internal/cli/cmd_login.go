package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/bbapi"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/login"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

func (r *runner) login(args []string) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	consumer := fs.String("consumer", "", "")
	callback := fs.String("callback", login.DefaultCallback, "")
	noBrowser := fs.Bool("no-browser", false, "")
	scopes := fs.String("scopes", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("%s", commandUsage["login"])
	}
	if *consumer == "" {
		return usagef("login needs --consumer KEY: the key of an OAuth consumer (Bitbucket: Workspace settings > OAuth consumers; see the README, Log in with OAuth)")
	}
	if err := refuseToken(*consumer); err != nil {
		return err
	}
	hostURL := "https://bitbucket.org"
	if len(pos) == 1 {
		if err := refuseToken(pos[0]); err != nil {
			return err
		}
		hostURL = pos[0]
	}
	h, err := r.helper(r.interactive())
	if err != nil {
		return err
	}
	in := bufio.NewReader(r.env.Stdin)
	secret, err := r.readSecret(in, "Secret of OAuth consumer "+*consumer, "consumer secret")
	if err != nil {
		return err
	}
	if secret == "" {
		return fmt.Errorf("%w: no consumer secret on stdin (pipe it in, or run on a terminal to be prompted)", helper.ErrBadToken)
	}
	flow, err := h.OAuthStart(hostURL, *consumer, secret, *callback, strings.Fields(strings.ReplaceAll(*scopes, ",", " ")))
	if err != nil {
		return err
	}
	ctx := context.Background()
	code, err := login.Code(ctx, login.Options{NoBrowser: *noBrowser, Callback: *callback, Browser: r.env.Getenv("BROWSER"), In: in, Out: r.env.Stderr}, flow.AuthURL, flow.State)
	if err != nil {
		return err
	}
	e, err := h.OAuthFinish(ctx, flow, code, "")
	if err != nil {
		return err
	}
	fmt.Fprintln(r.env.Stdout, e.ID)
	fmt.Fprintf(r.env.Stderr, "logged in to %s with consumer %s (%s); the access token is renewed when git needs it\n", e.URL, *consumer, e.StoreName())
	if ix, err := h.Store.Load(); err == nil {
		for _, o := range ix.Entries {
			if o.URL == e.URL && o.Kind != store.KindOAuth && o.Kind != store.KindStored {
				fmt.Fprintf(r.env.Stderr, "note: the %s token %s for %s is used before the login (tokens added by hand win); `git-credential-bbtoken remove %s` to use the login\n", o.Kind, o.ID, o.URL, o.ID)
			}
		}
	}
	return nil
}

func (r *runner) logout(args []string) error {
	fs := flag.NewFlagSet("logout", flag.ContinueOnError)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("%s", commandUsage["logout"])
	}
	hostURL := "https://bitbucket.org"
	if len(pos) == 1 {
		hostURL = pos[0]
	}
	h, err := r.helper(r.interactive())
	if err != nil {
		return err
	}
	removed, err := h.Logout(context.Background(), hostURL)
	for _, e := range removed {
		fmt.Fprintf(r.env.Stdout, "logged out of %s (%s)\n", e.URL, e.ID)
	}
	return err
}

// oauthHTTP is the HTTPS client of logins: the system's roots and
// SSL_CERT_FILE, like verify's.
func (r *runner) oauthHTTP() *bbapi.Client {
	return bbapi.New(bbapi.Options{UserAgent: "git-credential-bbtoken/" + version(), Trace: r.trace, Redactor: r.red})
}
