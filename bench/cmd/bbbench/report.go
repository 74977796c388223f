//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "MemTotal:")), "%d", &kb)
			return fmt.Sprintf("%.1f GiB", float64(kb)/1024/1024)
		}
	}
	return "?"
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

func cmdOut(argv ...string) string {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func (b *bench) revision() string {
	rev := cmdOut("git", "-C", b.repo, "rev-parse", "--short", "HEAD")
	if st := cmdOut("git", "-C", b.repo, "status", "--porcelain", "--", "cmd", "internal", "go.mod", "go.sum"); st != "" && st != "?" {
		rev += " with uncommitted changes"
	}
	return rev
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
func mib(kib int64) string      { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

type target struct {
	name, measured, limit string
	met                   bool
}

func (b *bench) targets(rep *report) []target {
	r := rep.main
	get, lsGet, csGet := r[0], r[1], r[2]
	fillBB, fillLS := r[3], r[4]
	storeBB := r[6]
	var ts []target
	add := func(name string, v, limit float64, detail string) {
		ts = append(ts, target{name, fmt.Sprintf("%.2f× (%s)", v, detail), fmt.Sprintf("≤ %.2f×", limit), v <= limit})
	}
	add("get vs libsecret get", ratio(get.Median(), lsGet.Median()), 0.40, ms(get.Median())+" / "+ms(lsGet.Median()))
	add("get vs git credential-store get", ratio(get.Median(), csGet.Median()), 2.5, ms(get.Median())+" / "+ms(csGet.Median()))
	add("git credential fill, bbtoken vs libsecret", ratio(fillBB.Median(), fillLS.Median()), 0.60, ms(fillBB.Median())+" / "+ms(fillLS.Median()))
	ts = append(ts, target{"unchanged store: no keyring or index write",
		fmt.Sprintf("%d of %d runs wrote", storeBB.Writes, storeBB.Checked), "0", storeBB.Writes == 0 && storeBB.Checked > 0})
	add("unchanged store vs our get", ratio(storeBB.Median(), get.Median()), 1.0, ms(storeBB.Median())+" / "+ms(get.Median()))
	last := rep.scaling[len(rep.scaling)-1]
	name := fmt.Sprintf("get with %d tokens vs 1 token", last.n)
	if last.n != 10000 {
		name += " (10,000 not measured in this run)"
	}
	add(name, ratio(last.get.Median(), get.Median()), 1.3, ms(last.get.Median())+" / "+ms(get.Median()))
	ts = append(ts, target{"peak RSS of get", mib(rep.getRSS), "≤ 20 MiB", rep.getRSS <= 20*1024})
	return ts
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func (b *bench) markdown(rep *report) string {
	var s strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&s, format, args...) }
	p("# Benchmark results\n\n")
	if b.smoke {
		p("**Smoke run** (%d runs per command): checks that the benchmark works, not how fast anything is.\n\n", b.runs)
	}
	p("Written by `bench/run.sh%s` on %s. Every figure below comes from this one run on this machine, ",
		map[bool]string{false: "", true: " --smoke"}[b.smoke], time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	p("against a gnome-keyring-daemon unlocked in a private D-Bus session. See [the README](../README.md#benchmark) for what is measured and how.\n\n")

	p("## Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %s, %d cores (nproc) |\n", cpuModel(), runtime.NumCPU())
	p("| memory | %s |\n", memTotal())
	p("| OS, kernel | %s, Linux %s |\n", osName(), cmdOut("uname", "-r"))
	p("| load average (1, 5, 15 min) | %s at start, %s at end |\n", b.loadStart, loadavg())
	p("| Go | %s |\n", strings.TrimPrefix(cmdOut("go", "version"), "go version "))
	p("| git | %s |\n", strings.TrimPrefix(cmdOut(b.git, "--version"), "git version "))
	p("| gnome-keyring | %s |\n", strings.TrimPrefix(cmdOut("gnome-keyring-daemon", "--version"), "gnome-keyring-daemon: "))
	p("| libsecret | %s (git-credential-libsecret built from git's contrib source) |\n", cmdOut("pkg-config", "--modversion", "libsecret-1"))
	p("| git-credential-bbtoken | built from %s like install.sh (`CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\"`), %s |\n", b.revision(), fileSize(b.bbtoken))
	p("| runs | %d timed runs of every command, interleaved in a shuffled order each round, after %d warm-up rounds |\n\n", b.runs, b.warmup)

	p("## Targets\n\n")
	p("| target | measured | limit | verdict |\n|---|---|---|---|\n")
	for _, t := range b.targets(rep) {
		p("| %s | %s | %s | %s |\n", t.name, t.measured, t.limit, verdict(t.met))
	}
	p("\n")

	p("## One token stored: the three helpers side by side\n\n")
	p("Wall time from fork to exit of each process (stdin piped from a file); CPU is user+system of the process and its children; peak RSS is the largest resident set over %d further runs under a small forking wrapper (bench/rss.c; for `git credential fill`, of git or its helper, whichever is larger).\n\n", b.rssRuns)
	p("| command | median | p90 | min | CPU (median) | peak RSS | bbtoken / libsecret |\n|---|---|---|---|---|---|---|\n")
	pairs := map[int]int{0: 1, 3: 4, 6: 7}
	for i, r := range rep.main {
		rat := ""
		if j, ok := pairs[i]; ok {
			rat = fmt.Sprintf("**%.2f×**", ratio(r.Median(), rep.main[j].Median()))
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", r.Cmd.Name, ms(r.Median()), ms(r.P90()), ms(r.Min()), ms(r.CPUMedian()), mib(r.PeakRSS()), rat)
	}
	p("\nbbtoken get / git credential-store get: **%.2f×**.", ratio(rep.main[0].Median(), rep.main[2].Median()))
	if bd := rep.breakdown; bd != nil && bd.hello != nil {
		p(" For scale, a Go hello world built the same way takes %s here, %.2f× git credential-store get: the floor of any helper written in Go on this machine.", ms(bd.hello.Median()), ratio(bd.hello.Median(), rep.main[2].Median()))
	}
	p("\n\n")

	p("## Unchanged store (git runs it after every success)\n\n")
	p("Before and after each timed run the benchmark compares every keyring item's `Modified` property, the keyring file (`login.keyring`: size, mtime, inode) and every file under the helper's config directory (the token index and anything beside it).\n\n")
	for _, r := range rep.main[6:8] {
		p("- %s: %d of %d runs changed something", r.Cmd.Name, r.Writes, r.Checked)
		if r.Writes > 0 {
			p(" (first seen: %s)", strings.ReplaceAll(r.WhatSaw, b.work, "$WORK"))
		}
		p(".\n")
	}
	p("\n")

	p("%s", b.breakdownMarkdown(rep.breakdown))

	p("## Scaling: get with many tokens stored\n\n")
	p("Each row is a fresh keyring holding that many of our tokens (spread over workspaces and their repositories, with a host-wide API token and a workspace token that also cover the request; the answer is the repository token, the last index entry) plus libsecret's item, measured in its own interleaved rounds. The 1-token index column runs the same binary with an index naming only the target, against the same (full) keyring: the difference to the first column is the index's cost, the difference to the 1-token row the keyring's. \"seeded\" means this run wrote the decoys' secrets through the product's keyring code (gnome-keyring rewrites its whole file for every new item, so 10,000 take most of an hour); \"from cache\" means it started gnome-keyring on the keyring file such a seeding saved earlier (`$BBBENCH_CACHE`), after checking through the product's keyring code that it holds the decoys' secrets. The index is written anew in every run.\n\n")
	p("| tokens stored | bbtoken get median | p90 | × 1 token | 1-token index, same keyring | libsecret get, same keyring | peak RSS | bbtoken get's D-Bus calls (median latency, dbus-monitor) | keyring |\n|---|---|---|---|---|---|---|---|---|\n")
	base := rep.scaling[0].get.Median()
	for _, row := range rep.scaling {
		g1 := "-"
		if row.get1 != nil {
			g1 = ms(row.get1.Median())
		}
		p("| %d | %s | %s | %.2f× | %s | %s | %s | %s | %s |\n", row.n, ms(row.get.Median()), ms(row.get.P90()), ratio(row.get.Median(), base), g1, ms(row.lsecret.Median()), mib(row.get.PeakRSS()), row.bus.calls(), row.seeded)
	}
	p("\n")
	return s.String()
}

func fileSize(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB binary", float64(st.Size())/1024/1024)
}

// summary is what the run prints: the targets and the main table.
func (b *bench) summary(rep *report) string {
	var s strings.Builder
	fmt.Fprintf(&s, "load average: %s at start, %s at end\n", b.loadStart, loadavg())
	for _, r := range rep.main {
		fmt.Fprintf(&s, "%-40s median %s  p90 %s  peak RSS %s\n", r.Cmd.Name, ms(r.Median()), ms(r.P90()), mib(r.PeakRSS()))
	}
	for _, row := range rep.scaling[1:] {
		fmt.Fprintf(&s, "%-40s median %s  p90 %s  peak RSS %s\n", row.get.Cmd.Name, ms(row.get.Median()), ms(row.get.P90()), mib(row.get.PeakRSS()))
	}
	for _, t := range b.targets(rep) {
		fmt.Fprintf(&s, "target %-55s %-40s %-10s %s\n", t.name, t.measured, t.limit, map[bool]string{true: "met", false: "MISSED"}[t.met])
	}
	return s.String()
}
