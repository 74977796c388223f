package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bbtoken/git-credential-bbtoken/internal/importer"
)

func (r *runner) importCredentials(args []string) error {
	fset := flag.NewFlagSet("import", flag.ContinueOnError)
	from := fset.String("from", "", "")
	dryRun := fset.Bool("dry-run", false, "")
	removePlaintext := fset.Bool("remove-plaintext", false, "")
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("%s", commandUsage["import"])
	}
	out := r.env.Stdout
	file := *from
	if file == "" {
		home := r.home()
		if home == "" {
			return usagef("cannot tell your home directory: pass --from FILE")
		}
		file = filepath.Join(home, ".git-credentials")
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(out, "no %s: nothing to import\n", file)
			xdg := r.env.Getenv("XDG_CONFIG_HOME")
			if xdg == "" {
				xdg = filepath.Join(home, ".config")
			}
			if other := filepath.Join(xdg, "git", "credentials"); fileExists(other) {
				fmt.Fprintf(out, "git's store helper also reads %s: import --from %s\n", other, other)
			}
			return nil
		}
	}
	h, err := r.helper(r.interactive())
	if err != nil {
		return err
	}
	rep, err := importer.Run(context.Background(), h, importer.Options{File: file, DryRun: *dryRun, RemovePlaintext: *removePlaintext})
	if rep == nil {
		return err
	}
	failed := 0
	for _, res := range rep.Results {
		where := fmt.Sprintf("%s:%d: %s", file, res.Line.N, res.Entry.Display())
		var msg string
		switch {
		case res.Err != nil:
			failed++
			msg = "not imported: " + oneLine(res.Err.Error())
		case res.Already:
			msg = fmt.Sprintf("already stored as %s (%s token for %s)", res.ID, res.Kind, res.Scope)
		case res.Imported:
			msg = fmt.Sprintf("imported as %s (%s token for %s)", res.ID, res.Kind, res.Scope)
		case res.Verdict == importer.Import:
			msg = fmt.Sprintf("would import as a %s token for %s", res.Kind, res.Scope)
		default:
			msg = res.Note
		}
		if res.Err == nil && res.Verdict == importer.Import && res.Note != "" {
			msg += "; " + res.Note
		}
		if res.Fix != "" && !res.Imported {
			msg += "; fix: " + res.Fix
		}
		fmt.Fprintf(out, "%s: %s\n", where, oneLine(msg))
	}
	imported := rep.Count(func(res importer.Result) bool { return res.Imported })
	dead := rep.Count(func(res importer.Result) bool { return res.Verdict == importer.Dead })
	skipped := rep.Count(func(res importer.Result) bool { return res.Verdict == importer.Skip })
	verb := "imported"
	if *dryRun {
		verb = "to import"
		imported = rep.Count(func(res importer.Result) bool { return res.Verdict == importer.Import && res.Err == nil })
	}
	fmt.Fprintf(out, "%s: %d Bitbucket line(s): %d %s, %d dead app password(s), %d skipped, %d failed; %d other line(s) left alone\n",
		file, len(rep.Results), imported, verb, dead, skipped, failed, rep.Lines-len(rep.Results))
	switch {
	case rep.Removed > 0:
		fmt.Fprintf(out, "removed the %d imported line(s) from %s; every other line is unchanged\n", rep.Removed, file)
	case imported > 0 && !*dryRun && !*removePlaintext:
		fmt.Fprintf(out, "the imported tokens are still in plaintext in %s: import --remove-plaintext removes those lines (tokens already stored are not added twice)\n", file)
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d line(s) could not be imported (see above); they stay in %s", failed, file)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
