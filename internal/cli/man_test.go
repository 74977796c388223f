package cli

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unroff turns the page back into running text: requests dropped, fonts
// and escapes undone, whitespace collapsed.
func unroff(page string) string {
	var text []string
	for _, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, ".") {
			continue
		}
		text = append(text, l)
	}
	s := strings.NewReplacer(`\fB`, "", `\fR`, "", `\fI`, "", `\-`, "-", `\ `, " ", `\&`, "", `\e`, `\`).Replace(strings.Join(text, " "))
	return strings.Join(strings.Fields(s), " ")
}

// The page and help cannot drift: every line help prints is in the page,
// in the same order (headings become sections).
func TestManPageHasEveryLineOfHelp(t *testing.T) {
	t.Parallel()
	page := ManPage()
	text := unroff(page)
	lines := strings.Split(strings.TrimRight(usage, "\n"), "\n")
	name, summary, ok := strings.Cut(lines[0], ": ")
	require.True(t, ok, "usage's first line is NAME: SUMMARY")
	assert.Contains(t, text, name+" - "+summary)
	heading := regexp.MustCompile(`^([A-Z][a-z ]*):(.*)$`)
	at := 0
	for _, l := range lines[1:] {
		want := strings.Join(strings.Fields(l), " ")
		if m := heading.FindStringSubmatch(l); m != nil {
			title := strings.ToUpper(m[1])
			if title == "USAGE" {
				title = "COMMANDS"
			}
			assert.Contains(t, page, "\n.SH "+title+"\n", "help's %q is a section", m[1])
			want = strings.TrimSpace(m[2])
		}
		if want == "" {
			continue
		}
		i := strings.Index(text[at:], want)
		if !assert.GreaterOrEqual(t, i, 0, "help's line %q is not in the man page (after what came before it)", l) {
			continue
		}
		at += i + len(want)
	}
}

func TestHelpMan(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help", "--man"}, {"help"}} {
		var stdout, stderr bytes.Buffer
		code := Main(Env{Args: args, Stdout: &stdout, Stderr: &stderr})
		assert.Equal(t, ExitOK, code)
		assert.Empty(t, stderr.String())
		if len(args) == 2 {
			assert.Equal(t, ManPage(), stdout.String())
		} else {
			assert.Equal(t, usage, stdout.String())
		}
	}
	page := ManPage()
	assert.True(t, strings.HasPrefix(page, `.TH GIT\-CREDENTIAL\-BBTOKEN 1 "" "git\-credential\-bbtoken `+strings.ReplaceAll(Version, "-", `\-`)+`" "Git Manual"`+"\n"), "%.120s", page)
	for _, l := range strings.Split(page, "\n") {
		assert.False(t, strings.HasPrefix(l, "'"), "a text line starting with ' is a roff request: %q", l)
		if strings.HasPrefix(l, ".") {
			assert.Regexp(t, `^\.([A-Z]{2}|ad|nh|br|in|ti)( |$)`, l, "only the requests and macros meant")
		}
	}
}

// groff, when installed (man-db needs it), renders the page without a
// warning.
func TestManPageRenders(t *testing.T) {
	t.Parallel()
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed")
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(ManPage())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Empty(t, string(out))
}
