//go:build linux

package main

import (
	"fmt"
	"strings"
)

// providerVersion asks for a provider's version (kwalletd5 answers
// --version only with a display and a bus: ask Debian's package database).
var providerVersion = map[string][]string{
	"keepassxc": {"keepassxc-cli", "--version"},
	"kwallet":   {"dpkg-query", "-W", "-f=${Version}", "libkf5wallet-bin"},
}

// providerGet measures get, this helper against libsecret's, with one
// token in a Secret Service provider other than gnome-keyring, already
// running (bench/run.sh starts it through scripts/providers/NAME.sh), and
// appends the table to b.out.
func (b *bench) providerGet() error {
	w, err := newWorld(b, 1)
	if err != nil {
		return err
	}
	want := "password=" + targetToken
	cmds := []*command{
		getCmd(b, w, w.cfg, "bbtoken get"),
		{Name: "libsecret get", Argv: []string{b.libsecret, "get"}, Env: w.env, Stdin: w.files["get"], Want: want, Tolerate: true},
	}
	b.logf("%s: %d interleaved rounds of get (+%d warm-up)", b.provider, b.runs, b.warmup)
	res, err := interleave(cmds, b.warmup, b.runs, 7, nil)
	if err != nil {
		return err
	}
	if err := measureRSS(b.rss, res, b.rssRuns); err != nil {
		return err
	}
	version := b.provider
	if argv, ok := providerVersion[b.provider]; ok {
		if v := cmdOut(argv...); v != "?" && v != "" {
			version += " " + v
		}
	}
	var s strings.Builder
	fmt.Fprintf(&s, "\n## get on %s\n\n", version)
	fmt.Fprintf(&s, "The same get, one token stored, against %s's Secret Service (started headless by scripts/providers/%s.sh), in the same run: %d timed runs each, interleaved.\n\n", b.provider, b.provider, b.runs)
	s.WriteString("| command | median | p90 | min | CPU (median) | peak RSS | bbtoken / libsecret |\n|---|---|---|---|---|---|---|\n")
	for i, r := range res {
		cmp := ""
		if i == 0 {
			cmp = fmt.Sprintf("**%.2f×**", ratio(r.Median(), res[1].Median()))
		}
		fmt.Fprintf(&s, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Cmd.Name, ms(r.Median()), ms(r.P90()), ms(r.Min()), ms(r.CPUMedian()), mib(r.PeakRSS()), cmp)
	}
	if r := res[1]; r.Failed > 0 {
		fmt.Fprintf(&s, "\nlibsecret get failed %d of %d runs here (not timed), the first with: %s\n", r.Failed, r.Failed+len(r.Samples), r.FirstFailure)
	}
	fmt.Printf("%s: bbtoken get median %s, libsecret get median %s\n", version, ms(res[0].Median()), ms(res[1].Median()))
	return b.appendReport(s.String())
}
