package cli

import (
	"fmt"
	"io"
	"strings"
)

// helpText is what `help` prints: usage, or with --man the manual page, so
// that packagers and `go install` users get git-credential-bbtoken(1) from
// the binary itself.
func helpText(args []string) string {
	if len(args) == 1 && args[0] == "--man" {
		return ManPage()
	}
	return usage
}

// ManPage renders git-credential-bbtoken(1) in roff from usage, the text
// `help` prints, so the two cannot drift: every line of usage is in the
// page, rearranged into man's sections. Only the DESCRIPTION and SEE ALSO
// paragraphs are its own. It carries the version and no date, so that a
// release build renders the same bytes every time.
func ManPage() string {
	lines := strings.Split(strings.TrimRight(usage, "\n"), "\n")
	name, summary, _ := strings.Cut(lines[0], ": ")
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s 1 \"\" \"%s %s\" \"Git Manual\"\n", roff(strings.ToUpper(name)), roff(name), roff(strings.ReplaceAll(version(), `"`, "")))
	// Left-aligned and unhyphenated: the page is mostly command lines and
	// flags that people copy.
	b.WriteString(".ad l\n.nh\n")
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roff(name), roff(summary))

	sections := splitSections(lines[1:])
	for _, s := range sections {
		if s.title == "Usage" {
			writeSynopsis(&b, name, s.lines)
		}
	}
	b.WriteString(".SH DESCRIPTION\n" +
		"A git credential helper for Bitbucket: it keeps scoped Bitbucket tokens in the OS keyring\n" +
		"(or in the password store) and hands git the most specific one for each repository.\n" +
		"Installing it changes no git configuration: run \\fB" + roff(name) + " setup\\fR once\n" +
		"to make git use it for https://bitbucket.org, and \\fBsetup \\-\\-host\\fR for other hosts.\n")
	for _, s := range sections {
		switch s.title {
		case "Usage":
			b.WriteString(".SH COMMANDS\n")
			writeCommands(&b, name, s.lines)
		default:
			fmt.Fprintf(&b, ".SH %s\n", roff(strings.ToUpper(s.title)))
			if s.text != "" {
				fmt.Fprintln(&b, roffLine(s.text))
			}
			writeItems(&b, s.lines)
		}
	}
	b.WriteString(".SH SEE ALSO\n" +
		"\\fBgitcredentials\\fR(7), \\fBgit\\-credential\\fR(1), and the README\n" +
		"(/usr/share/doc/" + roff(name) + "/README.md from the Debian package,\n" +
		"or https://github.com/bbtoken/git\\-credential\\-bbtoken).\n")
	return b.String()
}

type section struct {
	title string
	text  string   // after "Title:" on the heading's line
	lines []string // the indented lines under the heading
}

// splitSections cuts usage at its unindented lines ("Usage:", "Exit
// status: 0 success, ...").
func splitSections(lines []string) []section {
	var out []section
	for _, l := range lines {
		if l == "" {
			continue
		}
		if l[0] != ' ' {
			title, text, _ := strings.Cut(l, ":")
			out = append(out, section{title: title, text: strings.TrimSpace(text)})
			continue
		}
		if len(out) == 0 {
			out = append(out, section{title: "Description"})
		}
		out[len(out)-1].lines = append(out[len(out)-1].lines, l)
	}
	return out
}

// command is one entry of the Usage section: its command line (with the
// lines continuing it) and the lines describing it.
type command struct {
	synopsis []string
	body     []string
}

func parseCommands(name string, lines []string) []command {
	var out []command
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, name+" "):
			out = append(out, command{synopsis: []string{t}})
		case len(out) > 0 && len(out[len(out)-1].body) == 0 && strings.HasPrefix(t, "["):
			c := &out[len(out)-1]
			c.synopsis = append(c.synopsis, t)
		case len(out) > 0:
			c := &out[len(out)-1]
			c.body = append(c.body, t)
		}
	}
	return out
}

// synopsisLine sets the program and command words in bold, the
// arguments in roman, and keeps each bracketed group on one line.
func synopsisLine(name string, c command) string {
	rest := strings.TrimPrefix(strings.Join(c.synopsis, " "), name+" ")
	words := strings.Fields(rest)
	n := 0
	for n < len(words) && (words[n] == "|" || isLowerWord(words[n])) {
		n++
	}
	var b strings.Builder
	b.WriteString(`\fB` + roff(name) + `\fR`)
	depth := 0
	for i, w := range words {
		sep := " "
		if depth > 0 {
			sep = `\ ` // an unbreakable space
		}
		depth += strings.Count(w, "[") - strings.Count(w, "]")
		if i < n && w != "|" {
			b.WriteString(sep + `\fB` + roff(w) + `\fR`)
		} else {
			b.WriteString(sep + roff(w))
		}
	}
	return b.String()
}

func isLowerWord(w string) bool {
	for _, r := range w {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return w != ""
}

func writeSynopsis(w io.Writer, name string, lines []string) {
	// A hanging indent: a long command line wraps under its arguments.
	fmt.Fprint(w, ".SH SYNOPSIS\n.in +4n\n")
	for _, c := range parseCommands(name, lines) {
		fmt.Fprintf(w, ".ti -4n\n%s\n", synopsisLine(name, c))
	}
	fmt.Fprint(w, ".in\n")
}

func writeCommands(w io.Writer, name string, lines []string) {
	for _, c := range parseCommands(name, lines) {
		fmt.Fprintf(w, ".TP\n%s\n", synopsisLine(name, c))
		for i, l := range c.body {
			// A flag's explanation starts a line of its own, as in help.
			if i > 0 && strings.HasPrefix(l, "-") {
				fmt.Fprint(w, ".br\n")
			}
			fmt.Fprintln(w, roffLine(l))
		}
	}
}

// writeItems renders "NAME text" lines (environment variables) as a
// tagged list.
func writeItems(w io.Writer, lines []string) {
	for _, l := range lines {
		tag, text, _ := strings.Cut(strings.TrimSpace(l), " ")
		fmt.Fprintf(w, ".TP\n\\fB%s\\fR\n%s\n", roff(tag), roffLine(strings.TrimSpace(text)))
	}
}

// roff escapes text for roff: backslashes, and hyphens as \- so that
// flags copied from the page are plain ASCII.
func roff(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}

// roffLine escapes a line of running text, which must not start with a
// control character.
func roffLine(s string) string {
	s = roff(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
