package readmetest

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// root is the repository, from this package's directory.
const root = "../.."

// block is one fenced code block of the README.
type block struct {
	lang   string // the fence's info string: "sh", "yaml", ""
	line   int    // README line of its first content line
	text   string // its content, ending in a newline unless empty
	marker string // the HTML comment on the last non-blank line before the fence, if any
}

// walkthroughMarker precedes each shell block of the walkthrough; the blocks run in README order
// as one script.
const walkthroughMarker = "<!-- walkthrough -->"

func (b block) shell() bool {
	switch b.lang {
	case "sh", "bash", "shell":
		return true
	}
	return false
}

func mustREADME(t *testing.T) []block {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := readmeBlocks(string(src))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	return blocks
}

// readmeBlocks returns the fenced code blocks of a Markdown document, with their language and
// marker. It fails on a fence left open.
func readmeBlocks(src string) ([]block, error) {
	var (
		blocks   []block
		cur      *block
		body     strings.Builder
		lastText string // the last non-blank line outside blocks
	)
	for i, line := range strings.Split(src, "\n") {
		fence := strings.HasPrefix(strings.TrimLeft(line, " "), "```")
		switch {
		case cur == nil && fence:
			cur = &block{lang: strings.TrimSpace(strings.TrimLeft(line, " `")), line: i + 2}
			if strings.HasPrefix(lastText, "<!--") && strings.HasSuffix(lastText, "-->") {
				cur.marker = lastText
			}
			body.Reset()
		case cur != nil && fence:
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur, lastText = nil, ""
		case cur != nil:
			body.WriteString(line)
			body.WriteString("\n")
		case strings.TrimSpace(line) != "":
			lastText = strings.TrimSpace(line)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: code block never closed", cur.line-1)
	}
	return blocks, nil
}

// shellItem is one line of a shell block as the shell reads it: a command (its continuation
// lines and quoted newlines included), a comment line, or a blank line.
type shellItem struct {
	line    int    // README line where it starts
	code    string // the command without its comment, continuations joined; "" for a comment or blank line
	comment string // the comment ("# ..."), whole line or trailing; ""
}

func (it shellItem) blank() bool { return it.code == "" && it.comment == "" }

// splitShell splits a shell block, whose first line is README line first, into the items a
// shell reads: a newline ends a command unless it is quoted or escaped, and # starts a comment
// at the start of a word outside quotes. It fails on a quote left open.
func splitShell(text string, first int) ([]shellItem, error) {
	var (
		items           []shellItem
		code, comment   strings.Builder
		single, double  bool
		line, startLine = first, first
	)
	emit := func() {
		items = append(items, shellItem{line: startLine, code: strings.TrimSpace(code.String()), comment: strings.TrimSpace(comment.String())})
		code.Reset()
		comment.Reset()
		startLine = line
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case single:
			single = c != '\''
			code.WriteByte(c)
		case double && c == '\\' && i+1 < len(text):
			code.WriteByte(c)
			code.WriteByte(text[i+1])
			i++
		case double:
			double = c != '"'
			code.WriteByte(c)
		case c == '\\' && i+1 < len(text) && text[i+1] == '\n':
			code.WriteByte(' ')
			i++
			line++
		case c == '\\' && i+1 < len(text):
			code.WriteByte(c)
			code.WriteByte(text[i+1])
			i++
		case c == '\'':
			single = true
			code.WriteByte(c)
		case c == '"':
			double = true
			code.WriteByte(c)
		case c == '#' && (code.Len() == 0 || strings.ContainsRune(" \t", rune(code.String()[code.Len()-1]))):
			end := strings.IndexByte(text[i:], '\n')
			if end < 0 {
				end = len(text) - i
			}
			comment.WriteString(text[i : i+end])
			i += end - 1
		case c == '\n':
			line++
			emit()
			continue
		default:
			code.WriteByte(c)
		}
		if c == '\n' {
			line++
		}
	}
	if single || double {
		return nil, fmt.Errorf("line %d: quote never closed", startLine)
	}
	if code.Len() > 0 || comment.Len() > 0 {
		emit()
	}
	return items, nil
}

func TestSplitShell(t *testing.T) {
	text := `# a comment
make run    # serves it

X=$(curl -s "$API/a#b" \
  -d '{"a":
  "#"}')   # trailing
echo "say \"hi\"" # done
`
	got, err := splitShell(text, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []shellItem{
		{line: 10, comment: "# a comment"},
		{line: 11, code: "make run", comment: "# serves it"},
		{line: 12},
		{line: 13, code: `X=$(curl -s "$API/a#b"    -d '{"a":` + "\n" + `  "#"}')`, comment: "# trailing"},
		{line: 16, code: `echo "say \"hi\""`, comment: "# done"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitShell:\n got %#v\nwant %#v", got, want)
	}
	if _, err := splitShell("echo 'open\n", 1); err == nil {
		t.Error("splitShell of an open quote: no error")
	}
}

func TestReadmeBlocks(t *testing.T) {
	src := "text\n<!-- walkthrough -->\n\n```sh\necho hi\n```\nmore\n```\nplain\n```\n"
	got, err := readmeBlocks(src)
	if err != nil {
		t.Fatal(err)
	}
	want := []block{
		{lang: "sh", line: 5, text: "echo hi\n", marker: walkthroughMarker},
		{lang: "", line: 9, text: "plain\n"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readmeBlocks:\n got %#v\nwant %#v", got, want)
	}
	if _, err := readmeBlocks("```sh\necho\n"); err == nil {
		t.Error("readmeBlocks of an open fence: no error")
	}
}
