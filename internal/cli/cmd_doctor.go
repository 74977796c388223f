package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"

	"github.com/bbtoken/git-credential-bbtoken/internal/doctor"
	"github.com/bbtoken/git-credential-bbtoken/internal/setup"
)

// doctorReport is what `doctor --json` prints.
type doctorReport struct {
	Findings    []doctor.Finding `json:"findings"`
	Fixed       []string         `json:"fixed"`
	NeedsAction bool             `json:"needs_action"`
}

func (r *runner) doctor(args []string) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fix := fs.Bool("fix", false, "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("%s", commandUsage["doctor"])
	}
	h, err := r.helper(r.interactive())
	if err != nil {
		return err
	}
	d := &doctor.Doctor{
		Store:      h.Store,
		Git:        r.env.Git,
		Dir:        r.env.Dir,
		Home:       r.home(),
		ConfigHome: r.env.Getenv("XDG_CONFIG_HOME"),
		Now:        r.env.Now,
		Executable: r.env.Executable,
		Getenv:     r.env.Getenv,
	}
	if v, err := setup.HelperValue(r.env.Executable); err == nil && r.env.Executable != "" {
		d.HelperValues = append(d.HelperValues, v)
	}
	ctx := context.Background()
	findings := d.Check(ctx)
	var fixed []string
	if *fix {
		fixed = d.Fix(ctx, findings)
		if len(fixed) > 0 {
			findings = d.Check(ctx) // report what is left
		}
	}
	out := r.env.Stdout
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if fixed == nil {
			fixed = []string{}
		}
		if err := enc.Encode(doctorReport{Findings: findings, Fixed: fixed, NeedsAction: doctor.NeedsAction(findings)}); err != nil {
			return err
		}
	} else {
		for _, line := range fixed {
			fmt.Fprintf(out, "fixed   %s\n", line)
		}
		if *fix && len(fixed) == 0 {
			fmt.Fprintln(out, "fixed   nothing: --fix re-runs setup for hosts set up wrongly, deletes orphaned secrets, drops checks of passwords and makes a readable index private; the rest needs you")
		}
		for _, f := range findings {
			fmt.Fprintln(out, f.String())
		}
		fmt.Fprintf(out, "%d ok, %d warning(s), %d needing action\n",
			doctor.Count(findings, doctor.OK), doctor.Count(findings, doctor.Warn), doctor.Count(findings, doctor.Action))
	}
	if n := doctor.Count(findings, doctor.Action); n > 0 {
		hint := ""
		if fixable := countFixable(findings); fixable > 0 && !*fix {
			hint = fmt.Sprintf("; doctor --fix repairs %d of them", fixable)
		}
		return fmt.Errorf("%d finding(s) need action (see above)%s", n, hint)
	}
	return nil
}

func countFixable(fs []doctor.Finding) int {
	n := 0
	for _, f := range fs {
		if f.Level == doctor.Action && f.Fixable() {
			n++
		}
	}
	return n
}

// home is the user's home directory from the environment ("" if unknown).
func (r *runner) home() string {
	if runtime.GOOS == "windows" {
		if h := r.env.Getenv("USERPROFILE"); h != "" {
			return h
		}
	}
	return r.env.Getenv("HOME")
}
