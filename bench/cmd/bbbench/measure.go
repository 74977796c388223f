//go:build linux

package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// command is one process the benchmark times: argv with stdin from a file,
// and a check of what it printed.
type command struct {
	Name  string
	Argv  []string
	Env   []string
	Stdin string // path of the file piped to stdin
	// Want, when set, must appear in stdout (e.g. "password=TOKEN").
	Want string
	// Around, when set, runs before and after each timed run (outside the
	// timing) and reports whether anything was written in between.
	Around func() (after func() (wrote bool, what string), err error)
	// Tolerate, when set, counts a failed run (Failed, FirstFailure)
	// instead of ending the benchmark: for another program against a
	// provider it does not always work with.
	Tolerate bool
}

// sample is one timed run.
type sample struct {
	Wall time.Duration
	CPU  time.Duration // user + system of the process and its waited children
}

// result is every sample of one command plus what Around saw.
type result struct {
	Cmd     *command
	Samples []sample
	RSS     int64 // KiB, see measureRSS
	Writes  int   // runs during which Around saw a write
	Checked int   // runs Around checked
	WhatSaw string
	// Failed counts the runs of a Tolerate command that failed.
	Failed       int
	FirstFailure string
}

func (r *result) walls() []time.Duration {
	out := make([]time.Duration, len(r.Samples))
	for i, s := range r.Samples {
		out[i] = s.Wall
	}
	return out
}

func (r *result) cpus() []time.Duration {
	out := make([]time.Duration, len(r.Samples))
	for i, s := range r.Samples {
		out[i] = s.CPU
	}
	return out
}

// Median and P90 of the wall times.
func (r *result) Median() time.Duration { return quantile(r.walls(), 0.5) }
func (r *result) P90() time.Duration    { return quantile(r.walls(), 0.9) }
func (r *result) Min() time.Duration    { return quantile(r.walls(), 0) }
func (r *result) CPUMedian() time.Duration {
	return quantile(r.cpus(), 0.5)
}

// PeakRSS is the largest peak resident set over the runs under the rss
// wrapper (see measureRSS), in KiB.
func (r *result) PeakRSS() int64 { return r.RSS }

// quantile by linear interpolation between closest ranks.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	frac := pos - float64(lo)
	return s[lo] + time.Duration(frac*float64(s[lo+1]-s[lo]))
}

// runOnce runs c as a process and times it from fork to reaping.
func runOnce(c *command) (sample, error) {
	in, err := os.Open(c.Stdin)
	if err != nil {
		return sample{}, err
	}
	defer in.Close()
	out, err := os.CreateTemp("", "bbbench-out-*")
	if err != nil {
		return sample{}, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	errf, err := os.CreateTemp("", "bbbench-err-*")
	if err != nil {
		return sample{}, err
	}
	defer os.Remove(errf.Name())
	defer errf.Close()

	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Env = c.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, errf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, fmt.Errorf("%s: %w", c.Name, err)
	}
	werr := cmd.Wait()
	wall := time.Since(t0)
	stdout, _ := os.ReadFile(out.Name())
	stderr, _ := os.ReadFile(errf.Name())
	if werr != nil {
		return sample{}, fmt.Errorf("%s: %v; stderr: %s", c.Name, werr, strings.TrimSpace(string(stderr)))
	}
	if c.Want != "" && !bytes.Contains(stdout, []byte(c.Want)) {
		return sample{}, fmt.Errorf("%s: output lacks the expected credential; stdout %q, stderr %q", c.Name, redact(string(stdout)), strings.TrimSpace(string(stderr)))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return sample{Wall: wall, CPU: cpu}, nil
}

func redact(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if k, _, ok := strings.Cut(l, "="); ok && (k == "password" || k == "credential") {
			l = k + "=****"
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

// interleave runs every command once per round, in a fresh random order each
// round, after warmup unrecorded rounds.
func interleave(cmds []*command, warmup, runs int, seed uint64, progress func(string)) ([]*result, error) {
	res := make([]*result, len(cmds))
	for i, c := range cmds {
		res[i] = &result{Cmd: c}
	}
	rng := rand.New(rand.NewPCG(seed, 0x62627463))
	order := make([]int, len(cmds))
	for i := range order {
		order[i] = i
	}
	start := time.Now()
	for round := -warmup; round < runs; round++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			c := cmds[i]
			var after func() (bool, string)
			if c.Around != nil && round >= 0 {
				var err error
				if after, err = c.Around(); err != nil {
					return nil, fmt.Errorf("%s: before the run: %w", c.Name, err)
				}
			}
			s, err := runOnce(c)
			if err != nil && c.Tolerate {
				if res[i].Failed++; res[i].FirstFailure == "" {
					res[i].FirstFailure = err.Error()
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			if round < 0 {
				continue
			}
			res[i].Samples = append(res[i].Samples, s)
			if after != nil {
				wrote, what := after()
				res[i].Checked++
				if wrote {
					res[i].Writes++
					if res[i].WhatSaw == "" {
						res[i].WhatSaw = what
					}
				}
			}
		}
		if progress != nil && round >= 0 && (round+1)%50 == 0 {
			progress(fmt.Sprintf("%d/%d rounds (%s)", round+1, runs, time.Since(start).Round(time.Second)))
		}
	}
	return res, nil
}

// measureRSS runs each command k more times under the rss wrapper (a small
// C program that forks, so the driver's own memory is not charged to the
// child as it is with Go's vfork-based exec) and records the largest peak
// resident set of the command or any child it waited for.
func measureRSS(wrapper string, results []*result, k int) error {
	out, err := os.CreateTemp("", "bbbench-rss-*")
	if err != nil {
		return err
	}
	out.Close()
	defer os.Remove(out.Name())
	for _, r := range results {
		c := *r.Cmd
		c.Argv = append([]string{wrapper, out.Name()}, c.Argv...)
		for range k {
			if _, err := runOnce(&c); err != nil && !c.Tolerate {
				return err
			}
			b, err := os.ReadFile(out.Name())
			if err != nil {
				return err
			}
			var kib int64
			if _, err := fmt.Sscan(string(b), &kib); err != nil {
				return fmt.Errorf("rss wrapper wrote %q", b)
			}
			r.RSS = max(r.RSS, kib)
		}
	}
	return nil
}
