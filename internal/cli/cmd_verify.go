package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/bbapi"
	"github.com/bbtoken/git-credential-bbtoken/internal/verify"
)

// EnvVerifyMaxWait bounds the total time verify waits on rate limiting.
const EnvVerifyMaxWait = "GIT_CREDENTIAL_BBTOKEN_VERIFY_MAX_WAIT"

func (r *runner) verify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("%s", commandUsage["verify"])
	}
	maxWait, err := r.verifyMaxWait()
	if err != nil {
		return err
	}
	arg := ""
	if len(pos) == 1 {
		arg = pos[0]
		if err := refuseToken(arg); err != nil {
			return err
		}
	}
	h, err := r.helper(r.interactive())
	if err != nil {
		return err
	}
	// What a password store holds now (a teammate's pull).
	if err := h.RefreshPass(context.Background()); err != nil {
		return err
	}
	now := time.Now()
	if r.env.Now != nil {
		now = r.env.Now()
	}
	client := bbapi.New(bbapi.Options{MaxWait: maxWait, UserAgent: "git-credential-bbtoken/" + version(), Trace: r.trace, Redactor: r.red})
	defer client.Close()
	v := &verify.Verifier{Helper: h, Client: client, Now: now, Trace: r.trace}
	rep, err := v.Run(context.Background(), arg)
	if err != nil {
		return err
	}

	if *asJSON {
		enc := json.NewEncoder(r.env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep.Rows); err != nil {
			return err
		}
	} else if err := r.printVerify(rep.Rows); err != nil {
		return err
	}
	if rep.RecordErr != nil {
		return rep.RecordErr
	}
	if bad := rep.NotValid(); bad > 0 {
		where := "see above"
		if *asJSON {
			where = "see the JSON on stdout"
		}
		return fmt.Errorf("%d of %d token(s) not verified valid (%s)", bad, len(rep.Rows), where)
	}
	return nil
}

func (r *runner) verifyMaxWait() (time.Duration, error) {
	v := r.env.Getenv(EnvVerifyMaxWait)
	if v == "" {
		return bbapi.DefaultMaxWait, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, usagef("%s=%q is not a duration like 10s", EnvVerifyMaxWait, v)
	}
	return d, nil
}

func (r *runner) printVerify(rows []verify.Row) error {
	out := r.env.Stdout
	if len(rows) == 0 {
		fmt.Fprintln(out, "no tokens stored; add one with: git-credential-bbtoken add https://bitbucket.org/WORKSPACE/REPO")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATUS\tHTTP\tCLONE\tPUSH\tEXPIRES\tTYPE\tSCOPES\tURL")
	for _, row := range rows {
		code := "-"
		if row.HTTPStatus != nil {
			code = fmt.Sprint(*row.HTTPStatus)
		}
		scopes := "-"
		if row.Scopes != nil {
			scopes = strings.Join(row.Scopes, ",")
			if scopes == "" {
				scopes = "(none)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.ID, row.Kind, row.Status, code,
			yesNo(row.CanClone), yesNo(row.CanPush), dash(row.Expires), dash(row.CredentialType), scopes, row.URL)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	counts := map[string]int{}
	var order []string
	for _, row := range rows {
		if row.Detail != "" {
			fmt.Fprintf(out, "%s: %s\n", row.ID, row.Detail)
		}
		if counts[row.Status] == 0 {
			order = append(order, row.Status)
		}
		counts[row.Status]++
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[s], s)
	}
	fmt.Fprintf(out, "%d checked: %s\n", len(rows), strings.Join(parts, ", "))
	return nil
}

func yesNo(b *bool) string {
	switch {
	case b == nil:
		return "unknown"
	case *b:
		return "yes"
	}
	return "no"
}
