//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Where bbtoken get's time goes: process start, Go runtime and package
// init, index, D-Bus. Measured three ways: extra commands interleaved with
// the main ones (differences of medians), dbus-monitor timestamps of each
// call of K runs, and GODEBUG=inittrace=1.

// breakdownCommands are timed in world 1 with the main commands.
func breakdownCommands(b *bench, w *world) []*command {
	w.files["nomatch"] = w.write("nomatch.in", "protocol=https\nhost=bitbucket.org\npath=otherws/otherrepo.git\n")
	cmds := []*command{
		{Name: "/bin/true (spawn floor)", Argv: []string{"/bin/true"}, Env: w.env, Stdin: w.files["get"]},
		{Name: "bbtoken version", Argv: []string{b.bbtoken, "version"}, Env: w.envWith(w.cfg), Stdin: w.files["get"]},
		{Name: "bbtoken get, no token covers it", Argv: []string{b.bbtoken, "get"}, Env: w.envWith(w.cfg), Stdin: w.files["nomatch"]},
	}
	if b.gohello != "" {
		cmds = append(cmds, &command{Name: "Go hello world", Argv: []string{b.gohello}, Env: w.env, Stdin: w.files["get"]})
	}
	return cmds
}

// noMatchIsBusFree checks that the no-match get never talks to D-Bus (so
// its time is start + stdin + index only): with a dead bus address it must
// still succeed.
func noMatchIsBusFree(b *bench, w *world) bool {
	env := slices.DeleteFunc(w.envWith(w.cfg), func(s string) bool { return strings.HasPrefix(s, "DBUS_SESSION_BUS_ADDRESS=") })
	env = append(env, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bbbench", "GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT=1s")
	_, err := w.run(env, mustRead(w.files["nomatch"]), b.bbtoken, "get")
	return err == nil
}

// busCall is one method call seen on the bus and its latency.
type busCall struct {
	Member string
	Lat    time.Duration
}

// busRun is one process's D-Bus conversation.
type busRun struct {
	toHello   time.Duration // spawn → Hello (start, init, stdin, index, connect, auth)
	calls     []busCall
	afterLast time.Duration // last reply → process reaped (answer, exit)
	total     time.Duration
}

type busProfile struct {
	name string
	runs []busRun
}

// callSummary is the median latency of each call position (runs that made
// the same sequence of calls).
func (p *busProfile) callSummary() (members []string, lat []time.Duration, toHello, afterLast, total time.Duration) {
	if len(p.runs) == 0 {
		return
	}
	for _, c := range p.runs[0].calls {
		members = append(members, c.Member)
	}
	var th, al, tt []time.Duration
	lats := make([][]time.Duration, len(members))
	for _, r := range p.runs {
		if len(r.calls) != len(members) {
			continue
		}
		th, al, tt = append(th, r.toHello), append(al, r.afterLast), append(tt, r.total)
		for i, c := range r.calls {
			lats[i] = append(lats[i], c.Lat)
		}
	}
	for _, l := range lats {
		lat = append(lat, quantile(l, 0.5))
	}
	return members, lat, quantile(th, 0.5), quantile(al, 0.5), quantile(tt, 0.5)
}

// calls renders the median call sequence, e.g. "Hello 0.01, SearchItems 0.40 ms".
func (p *busProfile) calls() string {
	members, lat, _, _, _ := p.callSummary()
	var out []string
	for i, m := range members {
		out = append(out, fmt.Sprintf("%s %.2f", m, float64(lat[i])/1e6))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ") + " ms"
}

// monitorCalls runs each command k times, one at a time, under
// dbus-monitor --profile, and splits the bus traffic by process.
func monitorCalls(cmds []*command, k int) ([]*busProfile, error) {
	mon := exec.Command("dbus-monitor", "--session", "--profile")
	var out bytes.Buffer
	mon.Stdout = &out
	if err := mon.Start(); err != nil {
		return nil, fmt.Errorf("dbus-monitor: %w", err)
	}
	time.Sleep(300 * time.Millisecond) // it prints nothing until it is a monitor
	type window struct {
		prof       int
		start, end time.Time
	}
	var windows []window
	profs := make([]*busProfile, len(cmds))
	for i, c := range cmds {
		profs[i] = &busProfile{name: c.Name}
		for range k {
			start := time.Now()
			if _, err := runOnce(c); err != nil {
				_ = mon.Process.Signal(syscall.SIGTERM)
				_ = mon.Wait()
				return nil, err
			}
			windows = append(windows, window{i, start, time.Now()})
			time.Sleep(15 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
	_ = mon.Process.Signal(syscall.SIGTERM)
	_ = mon.Wait()

	type conv struct {
		hello   time.Time
		calls   []busCall
		pending map[string]struct {
			member string
			at     time.Time
		}
		lastReply time.Time
	}
	convs := map[string]*conv{} // by unique name
	var order []string
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 5 || strings.HasPrefix(f[0], "#") {
			continue
		}
		sec, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		switch f[0] {
		case "mc":
			if len(f) < 8 {
				continue
			}
			sender, serial, member := f[3], f[2], f[7]
			if member == "Hello" {
				convs[sender] = &conv{hello: at, pending: map[string]struct {
					member string
					at     time.Time
				}{}}
				order = append(order, sender)
			}
			if cv, ok := convs[sender]; ok {
				cv.pending[serial] = struct {
					member string
					at     time.Time
				}{member, at}
			}
		case "mr", "err":
			dest, reply := f[4], f[5]
			if cv, ok := convs[dest]; ok {
				if pc, ok := cv.pending[reply]; ok {
					delete(cv.pending, reply)
					m := pc.member
					if f[0] == "err" {
						m += " (error)"
					}
					cv.calls = append(cv.calls, busCall{m, at.Sub(pc.at)})
					cv.lastReply = at
				}
			}
		}
	}
	for _, name := range order {
		cv := convs[name]
		for _, w := range windows {
			if cv.hello.Before(w.start) || cv.hello.After(w.end) {
				continue
			}
			r := busRun{toHello: cv.hello.Sub(w.start), calls: cv.calls, total: w.end.Sub(w.start)}
			if !cv.lastReply.IsZero() {
				r.afterLast = w.end.Sub(cv.lastReply)
			}
			profs[w.prof].runs = append(profs[w.prof].runs, r)
			break
		}
	}
	return profs, nil
}

// initTrace runs get k times with GODEBUG=inittrace=1 and returns the median
// init clock time per package (ms) and of all packages together.
func initTrace(c *command, k int) (top []pkgInit, total float64, err error) {
	per := map[string][]float64{}
	var totals []float64
	for range k {
		cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
		cmd.Env = append(slices.Clone(c.Env), "GODEBUG=inittrace=1")
		in, err := os.Open(c.Stdin)
		if err != nil {
			return nil, 0, err
		}
		cmd.Stdin = in
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		in.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("inittrace: %v", err)
		}
		sum := 0.0
		for _, l := range strings.Split(stderr.String(), "\n") {
			// init PKG @0.012 ms, 0.003 ms clock, 0 bytes, 0 allocs
			f := strings.Fields(l)
			if len(f) < 6 || f[0] != "init" {
				continue
			}
			v, err := strconv.ParseFloat(f[4], 64)
			if err != nil {
				continue
			}
			per[f[1]] = append(per[f[1]], v)
			sum += v
		}
		totals = append(totals, sum)
	}
	for pkg, vs := range per {
		slices.Sort(vs)
		top = append(top, pkgInit{pkg, vs[len(vs)/2]})
	}
	slices.SortFunc(top, func(a, b pkgInit) int {
		if a.ms != b.ms {
			if a.ms > b.ms {
				return -1
			}
			return 1
		}
		return strings.Compare(a.pkg, b.pkg)
	})
	slices.Sort(totals)
	return top, totals[len(totals)/2], nil
}

type pkgInit struct {
	pkg string
	ms  float64
}

// breakdown is the profile section's data.
type breakdown struct {
	floor, version, nomatch, get *result
	hello                        *result // nil without --gohello
	noMatchIsBusFree             bool
	bus                          []*busProfile
	inits                        []pkgInit
	initTotal                    float64
	initPkgs                     int
	dynamic                      bool
}

func isDynamic(path string) bool {
	out, err := exec.Command("ldd", path).CombinedOutput()
	return err == nil && !bytes.Contains(out, []byte("not a dynamic executable")) && bytes.Contains(out, []byte("libc"))
}

func (b *bench) breakdownMarkdown(bd *breakdown) string {
	var s strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&s, format, args...) }
	p("## Where bbtoken get's time goes (1 token)\n\n")
	p("Differences of medians of commands interleaved with the ones above:\n\n")
	p("| part | how | median |\n|---|---|---|\n")
	p("| spawn + reap of a process | `/bin/true` | %s |\n", ms(bd.floor.Median()))
	link := "statically linked"
	if bd.dynamic {
		link = "dynamically linked (cgo: ld.so loads libc)"
	}
	if bd.hello != nil {
		p("| Go's own start-up floor (runtime init and exit of a hello world built the same way) | Go hello world − `/bin/true` | %s |\n", ms(bd.hello.Median()-bd.floor.Median()))
		p("| this binary's start beyond that (%s: package init, a larger binary) | `version` − Go hello world | %s |\n", link, ms(bd.version.Median()-bd.hello.Median()))
	} else {
		p("| Go binary start (%s, runtime and package init) and exit | `version` − `/bin/true` | %s |\n", link, ms(bd.version.Median()-bd.floor.Median()))
	}
	how := "`get` for a repository no token covers − `version`"
	if !bd.noMatchIsBusFree {
		how += " (**it touched D-Bus**: includes some keyring cost)"
	}
	p("| read stdin, load and parse the index, match | %s | %s |\n", how, ms(bd.nomatch.Median()-bd.version.Median()))
	p("| D-Bus: connect, authenticate, keyring calls, answer | `get` − no-match `get` | %s |\n", ms(bd.get.Median()-bd.nomatch.Median()))
	p("| total | `get` | %s |\n\n", ms(bd.get.Median()))
	p("D-Bus conversation per process (dbus-monitor --profile timestamps, median of %d runs each; latency is call to reply as the monitor saw them):\n\n", len(bd.bus[0].runs))
	p("| process | spawn → Hello | calls (latency) | last reply → reaped | total |\n|---|---|---|---|---|\n")
	for _, bp := range bd.bus {
		members, _, th, al, tt := bp.callSummary()
		p("| %s | %s | %d: %s | %s | %s |\n", bp.name, ms(th), len(members), bp.calls(), ms(al), ms(tt))
	}
	p("\nPackage init (GODEBUG=inittrace=1, median of runs): %d packages, %.2f ms in all; the largest:\n\n", bd.initPkgs, bd.initTotal)
	p("| package | init clock |\n|---|---|\n")
	for _, pi := range bd.inits[:min(10, len(bd.inits))] {
		p("| %s | %.3f ms |\n", pi.pkg, pi.ms)
	}
	p("\n")
	return s.String()
}
