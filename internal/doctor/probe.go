package doctor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/gitcmd"
	"github.com/bbtoken/git-credential-bbtoken/internal/regfile"
)

// ProbeEnv tells this helper's get, when git runs it for doctor's probe,
// to record what git sent it in the file the variable names, and to answer
// nothing (so that git goes on to the helpers after it).
const ProbeEnv = "GIT_CREDENTIAL_BBTOKEN_DOCTOR_PROBE"

// probeRecord is what get records for the probe: who it is (to find it
// among the processes git started) and whether git sent it the path.
type probeRecord struct {
	PID, PPID int
	Path      bool
}

// probeDirPrefix and probeFile name what probe creates: TMP/bbtoken-doctor-*/probe.
const (
	probeDirPrefix = "bbtoken-doctor-"
	probeFile      = "probe"
)

// IsProbe reports whether file (ProbeEnv's value) is a record file doctor
// creates; get ignores ProbeEnv otherwise, so that a variable left set by
// accident does not silence it.
func IsProbe(file string) bool {
	return filepath.IsAbs(file) && filepath.Base(file) == probeFile &&
		strings.HasPrefix(filepath.Base(filepath.Dir(file)), probeDirPrefix)
}

// Record is get's side of the probe: it appends one record to file, which
// doctor created (a file that is not there is not written).
func Record(file string, pathSent bool) error {
	f, err := regfile.AppendExisting(file)
	if err != nil {
		return fmt.Errorf("%s is set, but its record cannot be written (is doctor running?): %w", ProbeEnv, err)
	}
	line, _ := json.Marshal(probeRecord{PID: os.Getpid(), PPID: os.Getppid(), Path: pathSent})
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// probeResult is what the real git did for a credential request.
type probeResult struct {
	Commands []string // helper commands git ran, in order, without " get"
	Ours     int      // this helper's place in Commands; -1 when git did not run it
	PathSent bool     // git sent this helper the request's path (useHttpPath)
	Answered bool     // a helper supplied a credential (git stopped there)
	Err      error    // git could not be run or did not finish in time
}

// DefaultProbeTimeout bounds `git credential fill`: long enough for this
// helper's own keyring timeout, short enough never to hang doctor.
const DefaultProbeTimeout = 20 * time.Second

// probe asks the real git for a credential for t, as git would for a
// fetch there, and lets git say what it does: which helpers it runs and in
// what order (its trace2 event log of the processes it starts), which of
// them is this helper, and what this helper was sent (ProbeEnv). Prompts
// are off (GIT_TERMINAL_PROMPT=0, no askpass), so with no helper answering
// git runs every helper in its list and then fails; a credential a helper
// may print is dropped, never shown.
func (d *Doctor) probe(ctx context.Context, dir string, t target, gitOptions ...string) probeResult {
	res := probeResult{Ours: -1}
	tmp, err := os.MkdirTemp("", probeDirPrefix+"*")
	if err != nil {
		res.Err = err
		return res
	}
	defer os.RemoveAll(tmp)
	events, record := filepath.Join(tmp, "trace2.json"), filepath.Join(tmp, probeFile)
	if err := os.WriteFile(record, nil, 0o600); err != nil {
		res.Err = err
		return res
	}
	timeout := d.ProbeTimeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	stdin := "protocol=" + t.scheme + "\nhost=" + t.hostPort() + "\n"
	if t.path != "" {
		stdin += "path=" + t.path + "\n"
	}
	cmd := gitcmd.Cmd{Path: d.Git, Dir: dir, Env: probeEnv(d.Env, events, record), Timeout: timeout, Stdin: stdin + "\n"}
	out, err := cmd.Run(ctx, append(gitOptions, "credential", "fill")...)
	res.Answered = bytes.Contains(out.Stdout, []byte("\npassword=")) || bytes.HasPrefix(out.Stdout, []byte("password=")) ||
		bytes.Contains(out.Stdout, []byte("credential="))
	clear(out.Stdout) // may hold a secret: never kept
	var exit *gitcmd.Error
	switch {
	case errors.Is(err, gitcmd.ErrTimeout):
		res.Err = fmt.Errorf("git credential fill did not finish within %s (a helper may be waiting for input)", timeout)
		return res
	case err != nil && !errors.As(err, &exit):
		res.Err = fmt.Errorf("running git credential fill: %w", err)
		return res
	}
	// Otherwise git found a credential, or failed at its disabled prompt:
	// the expected ends.
	children := readChildren(events)
	for _, c := range children {
		res.Commands = append(res.Commands, c.cmd)
	}
	for _, r := range readRecords(record) {
		for i, c := range children {
			if c.pid != 0 && (c.pid == r.PID || c.pid == r.PPID) && (res.Ours < 0 || i < res.Ours) {
				res.Ours, res.PathSent = i, r.Path
			}
		}
	}
	if len(res.Commands) == 0 && len(children) == 0 && !fileHasEvents(events) {
		res.Err = errors.New("git wrote no trace2 events (git older than 2.22?): the helpers it runs are unknown")
	}
	return res
}

// child is one helper git started.
type child struct {
	cmd string
	pid int
}

// readChildren reads git's trace2 event log: the helper commands it
// started (one shell command each, "CMD get"), in order, with their
// process ids. Processes those helpers start (which inherit the trace
// variable) log under other session ids and are left out.
func readChildren(file string) []child {
	data, _ := os.ReadFile(file)
	var out []child
	byID := map[int]int{}
	sid := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var ev struct {
			Event    string   `json:"event"`
			SID      string   `json:"sid"`
			ChildID  int      `json:"child_id"`
			UseShell bool     `json:"use_shell"`
			Argv     []string `json:"argv"`
			PID      int      `json:"pid"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		if sid == "" && ev.Event == "version" {
			sid = ev.SID // the first process to log is git credential fill
		}
		if ev.SID != sid {
			continue
		}
		switch ev.Event {
		case "child_start":
			if ev.UseShell && len(ev.Argv) == 1 {
				if cmd, ok := strings.CutSuffix(ev.Argv[0], " get"); ok && cmd != "" {
					byID[ev.ChildID] = len(out)
					out = append(out, child{cmd: cmd})
				}
			}
		case "child_exit":
			if i, ok := byID[ev.ChildID]; ok {
				out[i].pid = ev.PID
			}
		}
	}
	return out
}

func fileHasEvents(file string) bool {
	st, err := os.Stat(file)
	return err == nil && st.Size() > 0
}

func readRecords(file string) []probeRecord {
	data, _ := os.ReadFile(file)
	var out []probeRecord
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		var r probeRecord
		if json.Unmarshal(line, &r) == nil && r.PID != 0 {
			out = append(out, r)
		}
	}
	return out
}

// probeEnv is env (nil: this process's) with the trace2 event log and the
// probe record on, and every way of prompting off.
func probeEnv(env []string, events, record string) []string {
	drop := map[string]bool{
		"GIT_TRACE": true, "GIT_TRACE2": true, "GIT_TRACE2_EVENT": true, "GIT_TRACE2_PERF": true,
		"GIT_TERMINAL_PROMPT": true, "GIT_ASKPASS": true, "SSH_ASKPASS": true, "GCM_INTERACTIVE": true,
		ProbeEnv: true,
	}
	return gitcmd.Replace(env, func(k string) bool { return drop[k] }, "GIT_TRACE2_EVENT="+events, ProbeEnv+"="+record,
		"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "GCM_INTERACTIVE=never")
}

// matchMarker is the helper command applies configures: a shell no-op
// that git's trace shows when it runs it.
const matchMarker = ": bbtoken-doctor-match"

// applies asks git whether e's section applies to requests for t: given
// that section alone (on its command line, with no configuration file
// read), does git run a helper from it? git's own URL matching decides
// (wildcards, host-only sections, ports, paths), not a copy of it.
func (d *Doctor) applies(ctx context.Context, e configEntry, t target) bool {
	sub, ok := e.section()
	if !ok {
		return false
	}
	if sub == "" {
		return true // credential.<name> applies to every URL
	}
	tmp, err := os.MkdirTemp("", "bbtoken-doctor-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(tmp)
	isolated := gitcmd.Replace(d.Env, func(k string) bool {
		return k == "HOME" || k == "XDG_CONFIG_HOME" || strings.HasPrefix(k, "GIT_")
	}, "HOME="+tmp, "XDG_CONFIG_HOME="+tmp, "GIT_CONFIG_NOSYSTEM=1", "GIT_CEILING_DIRECTORIES="+filepath.Dir(tmp))
	alone := &Doctor{Git: d.Git, Env: isolated, ProbeTimeout: d.ProbeTimeout}
	// -c, which every git takes (GIT_CONFIG_COUNT needs git 2.31).
	return slices.Contains(alone.probe(ctx, tmp, t, "-c", "credential."+sub+".helper=!"+matchMarker).Commands, matchMarker)
}
