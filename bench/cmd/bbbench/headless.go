//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// headlessGet measures get where no desktop runs (no D-Bus at all): an env
// entry against git credential-store get, and a pass entry against `pass
// show` of the same entry (gpg decrypting with a key whose agent needs no
// passphrase), and appends the tables to b.out.
func (b *bench) headlessGet() error {
	dir := filepath.Join(b.work, "headless")
	home := filepath.Join(dir, "home")
	run := filepath.Join(dir, "run")
	for _, d := range []string{home, run} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	// gpg-agent's socket lives in GNUPGHOME here: keep its path short.
	gnupg, err := os.MkdirTemp("", "bbgh")
	if err != nil {
		return err
	}
	defer os.RemoveAll(gnupg)
	store := filepath.Join(home, ".password-store")
	w := &world{dir: dir, files: map[string]string{}}
	w.env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_RUNTIME_DIR=" + run, "GNUPGHOME=" + gnupg, "PASSWORD_STORE_DIR=" + store,
		"LANG=C.UTF-8", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
	}
	defer func() { _, _ = w.run(w.env, "", "gpgconf", "--kill", "gpg-agent") }()
	if _, err := w.run(w.env, "", "gpg", "--batch", "--passphrase", "", "--quick-gen-key", "Bench <bench@example.invalid>", "future-default", "default", "never"); err != nil {
		return err
	}
	fpr, err := w.run(w.env, "", "sh", "-c", "gpg --batch --with-colons --list-secret-keys | awk -F: '/^fpr/ {print $10; exit}'")
	if err != nil {
		return err
	}
	if _, err := w.run(w.env, "", "pass", "init", strings.TrimSpace(fpr)); err != nil {
		return err
	}
	if _, err := w.run(w.env, "", b.bbtoken, "setup"); err != nil {
		return err
	}
	const envURL, passURL = "https://bitbucket.org/ws0/envrepo", "https://bitbucket.org/ws0/passrepo"
	if _, err := w.run(w.env, "", b.bbtoken, "add", envURL, "--kind", "repository", "--from-env", "BB_BENCH_TOKEN"); err != nil {
		return err
	}
	if _, err := w.run(w.env, targetToken+"\n", b.bbtoken, "add", passURL, "--store", "pass"); err != nil {
		return err
	}
	w.files["env"] = w.write("get-env.in", "protocol=https\nhost=bitbucket.org\npath=ws0/envrepo.git\n")
	w.files["pass"] = w.write("get-pass.in", "protocol=https\nhost=bitbucket.org\npath=ws0/passrepo.git\n")
	w.files["credstore"] = w.write("git-credentials", "https://x-token-auth:"+targetToken+"@bitbucket.org/ws0/envrepo.git\n")
	want := "password=" + targetToken
	envEnv := append(append([]string(nil), w.env...), "BB_BENCH_TOKEN="+targetToken)
	cmds := []*command{
		{Name: "bbtoken get (env entry)", Argv: []string{b.bbtoken, "get"}, Env: envEnv, Stdin: w.files["env"], Want: want},
		{Name: "git credential-store get", Argv: []string{b.git, "credential-store", "--file=" + w.files["credstore"], "get"}, Env: w.env, Stdin: w.files["env"], Want: want},
		{Name: "bbtoken get (pass entry)", Argv: []string{b.bbtoken, "get"}, Env: w.env, Stdin: w.files["pass"], Want: want},
		{Name: "pass show (the same entry)", Argv: []string{"pass", "show", "git-credential-bbtoken/bitbucket.org/ws0/passrepo"}, Env: w.env, Stdin: w.files["pass"], Want: targetToken},
	}
	b.logf("headless: %d interleaved rounds of get (+%d warm-up)", b.runs, b.warmup)
	res, err := interleave(cmds, b.warmup, b.runs, 11, nil)
	if err != nil {
		return err
	}
	if err := measureRSS(b.rss, res, b.rssRuns); err != nil {
		return err
	}
	envRatio, passRatio := ratio(res[0].Median(), res[1].Median()), ratio(res[2].Median(), res[3].Median())
	var s strings.Builder
	fmt.Fprintf(&s, "\n## get without a desktop: env and pass entries\n\n")
	fmt.Fprintf(&s, "No D-Bus session at all. An env entry (the token in the environment of get) and a pass entry (gpg %s, the key's agent holding no passphrase to ask for), in the same run: %d timed runs each, interleaved.\n\n", cmdOut("sh", "-c", "gpg --version | head -1 | cut -d' ' -f3"), b.runs)
	s.WriteString("| target | measured | limit | verdict |\n|---|---|---|---|\n")
	fmt.Fprintf(&s, "| get of an env entry vs git credential-store get | %.2f× (%s / %s) | ≤ 1.50× | %s |\n", envRatio, ms(res[0].Median()), ms(res[1].Median()), verdict(envRatio <= 1.5))
	fmt.Fprintf(&s, "| get of a pass entry vs `pass show` of it | %.2f× (%s / %s) | ≤ 1.20× | %s |\n\n", passRatio, ms(res[2].Median()), ms(res[3].Median()), verdict(passRatio <= 1.2))
	s.WriteString("| command | median | p90 | min | CPU (median) | peak RSS |\n|---|---|---|---|---|---|\n")
	for _, r := range res {
		fmt.Fprintf(&s, "| %s | %s | %s | %s | %s | %s |\n", r.Cmd.Name, ms(r.Median()), ms(r.P90()), ms(r.Min()), ms(r.CPUMedian()), mib(r.PeakRSS()))
	}
	fmt.Printf("headless: env get %s vs credential-store %s (%.2f×); pass get %s vs pass show %s (%.2f×); %s\n",
		ms(res[0].Median()), ms(res[1].Median()), envRatio, ms(res[2].Median()), ms(res[3].Median()), passRatio, time.Since(b.started).Round(time.Second))
	return b.appendReport(s.String())
}

// appendReport adds a section to the report a main run wrote.
func (b *bench) appendReport(section string) error {
	f, err := os.OpenFile(b.out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(section); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
