//go:build linux

// Command bbbench measures git-credential-bbtoken against git's own
// credential helpers (git-credential-libsecret and git credential-store) on
// one machine, in one run, against the same unlocked gnome-keyring, and
// writes a markdown report. Run it through bench/run.sh, which starts the
// private D-Bus session and builds the binaries it measures.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type bench struct {
	smoke     bool
	runs      int
	warmup    int
	scales    []int
	work      string
	cache     string
	repo      string
	out       string
	bbtoken   string
	libsecret string
	git       string
	rss       string
	gohello   string
	rssRuns   int
	provider  string // measure get only, against this already running provider
	started   time.Time
	loadStart string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Since(b.started).Round(time.Second), fmt.Sprintf(format, args...))
}

func main() {
	b := &bench{started: time.Now()}
	var scales string
	flag.BoolVar(&b.smoke, "smoke", false, "short run (CI): few runs, scales 1 and 100, results not meant to be read")
	flag.IntVar(&b.runs, "runs", 0, "timed runs of each command (default 200, smoke 10)")
	flag.IntVar(&b.warmup, "warmup", 0, "unrecorded warm-up rounds (default 5, smoke 1)")
	flag.StringVar(&scales, "scales", "", "numbers of stored tokens to measure get with (default 1,100,1000,10000; smoke 1,100)")
	flag.StringVar(&b.work, "work", "", "scratch directory (required)")
	flag.StringVar(&b.cache, "cache", "", "directory that keeps seeded keyrings between runs (empty: no cache)")
	flag.StringVar(&b.repo, "repo", ".", "the source tree the binary was built from")
	flag.StringVar(&b.out, "out", "", "markdown report to write (required)")
	flag.StringVar(&b.bbtoken, "bbtoken", "", "git-credential-bbtoken binary (required)")
	flag.StringVar(&b.libsecret, "libsecret", "", "git-credential-libsecret binary (required)")
	flag.StringVar(&b.git, "git", "git", "git binary")
	flag.StringVar(&b.rss, "rss", "", "the rss wrapper built from bench/rss.c (required)")
	flag.StringVar(&b.gohello, "gohello", "", "a Go hello world built like the helper (bench/cmd/gohello): the Go start-up floor")
	flag.StringVar(&b.provider, "provider", "", "measure get alone against the Secret Service provider already on the bus (started by scripts/providers/NAME.sh) and append its table to -out")
	headless := flag.Bool("headless", false, "measure get of env and pass entries with no D-Bus session and append the table to -out")
	flag.Parse()
	if b.work == "" || b.out == "" || b.bbtoken == "" || b.libsecret == "" && !*headless || b.rss == "" {
		fmt.Fprintln(os.Stderr, "bbbench: -work, -out, -bbtoken, -libsecret and -rss are required (use bench/run.sh)")
		os.Exit(2)
	}
	if b.runs == 0 {
		b.runs = map[bool]int{false: 200, true: 10}[b.smoke]
	}
	if b.warmup == 0 {
		b.warmup = map[bool]int{false: 5, true: 1}[b.smoke]
	}
	b.rssRuns = map[bool]int{false: 20, true: 2}[b.smoke]
	if scales == "" {
		scales = map[bool]string{false: "1,100,1000,10000", true: "1,100"}[b.smoke]
	}
	for _, s := range strings.Split(scales, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bbbench: bad -scales %q\n", scales)
			os.Exit(2)
		}
		b.scales = append(b.scales, n)
	}
	for _, p := range []*string{&b.bbtoken, &b.libsecret, &b.rss, &b.work, &b.out, &b.gohello} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bbbench:", err)
			os.Exit(2)
		}
		*p = abs
	}
	daemonLog = filepath.Join(b.work, "gnome-keyring.log")
	run := b.main
	switch {
	case b.provider != "":
		run = b.providerGet
	case *headless:
		run = b.headlessGet
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bbbench: FAILED:", err)
		if log, _ := os.ReadFile(daemonLog); len(log) > 0 {
			fmt.Fprintf(os.Stderr, "bbbench: gnome-keyring-daemon logged:\n%s", log)
		}
		os.Exit(1)
	}
}

// report is everything measured.
type report struct {
	main      []*result // world 1: every helper
	mainW     *world
	scaling   []scaleRow
	getRSS    int64
	breakdown *breakdown
}

type scaleRow struct {
	n                  int
	get, get1, lsecret *result
	seeded             string
	bus                *busProfile // bbtoken get's D-Bus calls
}

func (b *bench) main() error {
	b.loadStart = loadavg()
	rep := &report{}
	w1, err := newWorld(b, 1)
	if err != nil {
		return err
	}
	defer w1.close()
	rep.mainW = w1
	cmds := append(mainCommands(b, w1), breakdownCommands(b, w1)...)
	b.logf("world 1: %d interleaved rounds of %d commands (+%d warm-up)", b.runs, len(cmds), b.warmup)
	all, err := interleave(cmds, b.warmup, b.runs, 1, func(s string) { b.logf("world 1: %s", s) })
	if err != nil {
		return err
	}
	if err := measureRSS(b.rss, all, b.rssRuns); err != nil {
		return err
	}
	rep.main = all[:8]
	bd := &breakdown{floor: all[8], version: all[9], nomatch: all[10], get: all[0]}
	if b.gohello != "" {
		bd.hello = all[11]
	}
	bd.noMatchIsBusFree = noMatchIsBusFree(b, w1)
	bd.dynamic = isDynamic(b.bbtoken)
	k := map[bool]int{false: 30, true: 5}[b.smoke]
	b.logf("world 1: D-Bus conversations (%d runs each) and init trace", k)
	if bd.bus, err = monitorCalls([]*command{cmds[0], cmds[6], cmds[1], cmds[7]}, k); err != nil {
		return err
	}
	if bd.inits, bd.initTotal, err = initTrace(cmds[0], k); err != nil {
		return err
	}
	bd.initPkgs = len(bd.inits)
	rep.breakdown = bd
	w1.close()
	rep.scaling = append(rep.scaling, scaleRow{n: 1, get: rep.main[0], lsecret: rep.main[1], seeded: "-", bus: bd.bus[0]})
	for _, n := range b.scales {
		if n == 1 {
			continue
		}
		w, err := newWorld(b, n)
		if err != nil {
			return err
		}
		b.logf("world %d (%s): %d interleaved rounds of 3 commands", n, w.seeded, b.runs)
		cmds := []*command{
			getCmd(b, w, w.cfg, fmt.Sprintf("bbtoken get (%d tokens)", n)),
			getCmd(b, w, w.cfg1, "bbtoken get (1-token index, same keyring)"),
			{Name: "libsecret get", Argv: []string{b.libsecret, "get"}, Env: w.env, Stdin: w.files["get"], Want: "password=" + targetToken},
		}
		res, err := interleave(cmds, b.warmup, b.runs, uint64(n), nil)
		if err == nil {
			err = measureRSS(b.rss, res, b.rssRuns)
		}
		var bus []*busProfile
		if err == nil {
			bus, err = monitorCalls(cmds[:1], map[bool]int{false: 10, true: 3}[b.smoke])
		}
		w.close()
		if err != nil {
			return err
		}
		rep.scaling = append(rep.scaling, scaleRow{n: n, get: res[0], get1: res[1], lsecret: res[2], seeded: w.seeded, bus: bus[0]})
	}
	for _, row := range rep.scaling {
		rep.getRSS = max(rep.getRSS, row.get.PeakRSS())
		if row.get1 != nil {
			rep.getRSS = max(rep.getRSS, row.get1.PeakRSS())
		}
	}
	md := b.markdown(rep)
	if err := os.WriteFile(b.out, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(b.summary(rep))
	b.logf("wrote %s", b.out)
	return nil
}

func getCmd(b *bench, w *world, cfg, name string) *command {
	return &command{Name: name, Argv: []string{b.bbtoken, "get"}, Env: w.envWith(cfg), Stdin: w.files["get"], Want: "password=" + targetToken}
}

// mainCommands are the eight commands of world 1, in report order. The
// first two must stay bbtoken get and libsecret get.
func mainCommands(b *bench, w *world) []*command {
	want := "password=" + targetToken
	fill := func(name, cfg string) *command {
		return &command{Name: name, Argv: []string{b.git, "credential", "fill"}, Env: w.envWith(w.cfg, "GIT_CONFIG_GLOBAL="+cfg), Stdin: w.files["fill"], Want: want}
	}
	index := w.cfg // the whole XDG_CONFIG_HOME: the index and anything beside it
	return []*command{
		getCmd(b, w, w.cfg, "bbtoken get"),
		{Name: "libsecret get", Argv: []string{b.libsecret, "get"}, Env: w.env, Stdin: w.files["get"], Want: want},
		{Name: "git credential-store get", Argv: []string{b.git, "credential-store", "--file=" + w.files["credstore"], "get"}, Env: w.env, Stdin: w.files["get"], Want: want},
		fill("git credential fill → bbtoken", w.gitcfg["bbtoken"]),
		fill("git credential fill → libsecret", w.gitcfg["libsecret"]),
		fill("git credential fill → credential-store", w.gitcfg["store"]),
		{Name: "bbtoken store (unchanged)", Argv: []string{b.bbtoken, "store"}, Env: w.envWith(w.cfg), Stdin: w.files["store"], Around: w.d.watch(index)},
		{Name: "libsecret store (unchanged)", Argv: []string{b.libsecret, "store"}, Env: w.env, Stdin: w.files["store"], Around: w.d.watch(index)},
	}
}
