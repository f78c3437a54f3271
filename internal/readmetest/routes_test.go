package readmetest

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/httpapi"
)

// namedRoute is a route a README code block names: a curl command on $API (the README's name
// for apitokens' URL), or "METHOD /path" in the text.
type namedRoute struct {
	line   int
	method string
	path   string // as written, without its query
	text   string // the command or line that names it
}

// attachSnippetMarker precedes the README's attach snippets: templates of other teams' APIs,
// whose route maps name those APIs' routes, not apitokens'.
const attachSnippetMarker = "<!-- attach-snippet:"

// methodPath is a route written out as "METHOD /path".
var methodPath = regexp.MustCompile("\\b(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY) (/[^\\s\"'`,;)\\]]*)")

// readmeRoutes returns the routes the README's code blocks name, except in attach snippets.
func readmeRoutes(blocks []block) ([]namedRoute, error) {
	var routes []namedRoute
	for _, b := range blocks {
		if strings.HasPrefix(b.marker, attachSnippetMarker) {
			continue
		}
		for i, line := range strings.Split(b.text, "\n") {
			for _, m := range methodPath.FindAllStringSubmatch(line, -1) {
				routes = append(routes, namedRoute{line: b.line + i, method: m[1], path: stripQuery(m[2]), text: strings.TrimSpace(line)})
			}
		}
		if !b.shell() {
			continue
		}
		items, err := splitShell(b.text, b.line)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if curlCall.MatchString(it.code) {
				routes = append(routes, curlRoutes(it)...)
			}
		}
	}
	return routes, nil
}

// curlRoutes returns the routes the curl of a command calls on $API, with the method curl uses:
// -X, or POST when it sends data, or HEAD for -I, or GET.
func curlRoutes(it shellItem) []namedRoute {
	words := shellWords(it.code)
	start := -1
	for i, w := range words {
		if w == "curl" || strings.HasSuffix(w, "(curl") {
			start = i + 1
			break
		}
	}
	if start < 0 {
		return nil
	}
	var method, data, head string
	var paths []string
	for i := start; i < len(words) && words[i] != "|"; i++ {
		w := words[i]
		switch {
		case (w == "-X" || w == "--request") && i+1 < len(words):
			method = words[i+1]
			i++
		case strings.HasPrefix(w, "-X") && len(w) > 2:
			method = w[2:]
		case w == "-d" || strings.HasPrefix(w, "--data") || w == "--json" || w == "-F" || w == "--form":
			data = "POST"
		case w == "-I" || w == "--head":
			head = "HEAD"
		case w == "-G" || w == "--get":
			head = "GET"
		default:
			for _, api := range []string{"$API", "${API}"} {
				if rest, ok := strings.CutPrefix(w, api); ok {
					paths = append(paths, stripQuery(strings.TrimRight(rest, ")")))
				}
			}
		}
	}
	method = firstNonEmpty(method, head, data, "GET")
	var routes []namedRoute
	for _, p := range paths {
		routes = append(routes, namedRoute{line: it.line, method: method, path: p, text: it.code})
	}
	return routes
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func stripQuery(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return p
}

// shellWords splits a command into words as a shell would, quotes removed; it does not expand
// anything, so "$API/tokens/$ID" stays as written.
func shellWords(s string) []string {
	var (
		words          []string
		w              strings.Builder
		inWord         bool
		single, double bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case single && c == '\'':
			single = false
		case single:
			w.WriteByte(c)
		case double && c == '\\' && i+1 < len(s):
			w.WriteByte(s[i+1])
			i++
		case double && c == '"':
			double = false
		case double:
			w.WriteByte(c)
		case c == '\'':
			single, inWord = true, true
		case c == '"':
			double, inWord = true, true
		case c == '\\' && i+1 < len(s):
			w.WriteByte(s[i+1])
			inWord = true
			i++
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// inRouteTable reports whether a route of httpapi.Routes serves method on path, where a README
// segment ($ID, ${ID}, {id} or a literal id) matches a {parameter} of the table.
func inRouteTable(routes []httpapi.Route, method, path string) bool {
	for _, rt := range routes {
		m, p, _ := strings.Cut(rt.Pattern, " ")
		if m == method && segmentsMatch(p, path) {
			return true
		}
	}
	return false
}

func segmentsMatch(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i, p := range ps {
		if p != xs[i] && !(strings.HasPrefix(p, "{") && xs[i] != "") {
			return false
		}
	}
	return true
}

// TestREADMERoutesAreInTheRouteTable fails when a README code block names a route that
// httpapi.Routes does not serve: a curl on $API, or "METHOD /path" written out.
func TestREADMERoutesAreInTheRouteTable(t *testing.T) {
	routes, err := readmeRoutes(mustREADME(t))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if len(routes) == 0 {
		t.Fatal("README.md names no route in its code blocks: the check found nothing to check")
	}
	for _, r := range routes {
		if !inRouteTable(httpapi.Routes, r.method, r.path) {
			t.Errorf("README.md:%d: %s %s is not in httpapi.Routes: %s", r.line, r.method, r.path, r.text)
		}
	}
}

// TestRouteCheckFindsStrayRoutes shows the check above on a README of its own: every route it
// names is found, with its method, and the ones the table lacks are told apart.
func TestRouteCheckFindsStrayRoutes(t *testing.T) {
	src := "```sh\n" +
		`curl -s "$API/tokens?limit=20" -H "Authorization: Bearer $TOKEN"
ID=$(curl -s -X POST "$API/tokens" -d '{"name":"a"}' | field id)
curl -s -X PATCH "$API/tokens/$ID" -d '{}'
curl -s -XPUT "${API}/tokens/$ID" -d '{}'
curl -s "$API/tokens/$ID/rotate" -d '{}'
curl -s -I $API/tokens/$ID/secrets
# GET /audit, DELETE /tokens/{id} and POST /tokens/{id}/revoke
` + "```\n" + "<!-- attach-snippet: x -->\n```yaml\nRoutePermissions: '{\"POST /upload\":[\"upload\"]}'\n```\n"
	blocks, err := readmeBlocks(src)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := readmeRoutes(blocks)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range routes {
		got = append(got, fmt.Sprintf("%s %s %v", r.method, r.path, inRouteTable(httpapi.Routes, r.method, r.path)))
	}
	want := []string{
		"GET /audit true", "DELETE /tokens/{id} true", "POST /tokens/{id}/revoke false",
		"GET /tokens true",
		"POST /tokens true",
		"PATCH /tokens/$ID true",
		"PUT /tokens/$ID false",
		"POST /tokens/$ID/rotate true",
		"HEAD /tokens/$ID/secrets false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("routes found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
