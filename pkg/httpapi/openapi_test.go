package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/apitokens/apitokens"
	"github.com/apitokens/apitokens/pkg/httpapi"
)

// exchange is one request a test made through the API's handler, with its answer.
type exchange struct {
	test           string
	method, target string
	header         http.Header
	body           string
	status         int
	respHeader     http.Header
	respBody       []byte
}

func (x exchange) String() string {
	body := x.body
	if len(body) > 200 {
		body = body[:200] + "..."
	}
	resp := bytes.TrimSpace(x.respBody)
	if len(resp) > 300 {
		resp = append(resp[:300:300], "..."...)
	}
	return fmt.Sprintf("%s: %s %s %q -> %d %s", x.test, x.method, x.target, body, x.status, resp)
}

// recorded holds every exchange of the test run, which TestMain checks against openapi.yaml.
var recorded struct {
	mu        sync.Mutex
	exchanges []exchange
}

// record keeps the exchange of r, whose body was body, answered in w.
func record(t testing.TB, r *http.Request, body string, w *httptest.ResponseRecorder) {
	recorded.mu.Lock()
	defer recorded.mu.Unlock()
	recorded.exchanges = append(recorded.exchanges, exchange{
		test: t.Name(), method: r.Method, target: r.URL.RequestURI(), header: r.Header.Clone(), body: body,
		status: w.Code, respHeader: w.Header().Clone(), respBody: bytes.Clone(w.Body.Bytes()),
	})
}

// TestMain runs the tests, then checks every exchange they recorded against openapi.yaml
// (checkExchanges): each answer validates against the document, and each request the document
// refuses was refused by the server.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	recorded.mu.Lock()
	exchanges := recorded.exchanges
	recorded.mu.Unlock()
	if len(exchanges) > 0 {
		c, err := newContract([]byte(apitokens.OpenAPI))
		if err != nil {
			fmt.Fprintln(os.Stderr, "openapi.yaml:", err)
			os.Exit(1)
		}
		report := c.checkExchanges(exchanges)
		fmt.Println(report.summary())
		if flag.Lookup("test.run").Value.String() == "" {
			report.requireCoverage(c)
			report.failures = append(report.failures, c.checkExamples(exchanges)...)
		}
		if len(report.failures) > 0 {
			for _, f := range report.failures {
				fmt.Fprintln(os.Stderr, "openapi:", f)
			}
			code = 1
		}
	}
	os.Exit(code)
}

// contract is openapi.yaml loaded for validating requests and answers: by kin-openapi's
// openapi3filter (routes, parameters, security, statuses, headers, bodies), and the bodies once
// more by the JSON Schema 2020-12 engine kin-openapi itself uses for OpenAPI 3.1
// (santhosh-tekuri/jsonschema), on the schemas where the document has them. openapi3filter
// v0.152.0 hands a 3.1 schema to that engine only when the schema, $refs followed, holds a
// keyword of JSON Schema 2020-12 that OpenAPI 3.0 lacks (const, unevaluatedProperties,
// propertyNames, dependentRequired, ...) or no $ref at all; any other schema with a $ref, and
// any schema the engine fails to compile, it validates with its OpenAPI 3.0 validator instead,
// silently. The second check holds every body to 3.1's rules.
type contract struct {
	doc     *openapi3.T
	router  routers.Router
	tree    any // the document as JSON values
	schemas *jsonschema.Compiler
}

// contractURL names the document for the JSON Schema engine.
const contractURL = "urn:apitokens:openapi"

func newContract(document []byte, opts ...openapi3.ValidationOption) (*contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(loader.Context, opts...); err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	var generic any
	if err := yaml.Unmarshal(document, &generic); err != nil { // JSON is YAML too
		return nil, err
	}
	b, err := json.Marshal(generic)
	if err != nil {
		return nil, err
	}
	tree, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	schemas := jsonschema.NewCompiler()
	schemas.DefaultDraft(jsonschema.Draft2020)
	schemas.AssertFormat()
	if err := schemas.AddResource(contractURL, tree); err != nil {
		return nil, err
	}
	return &contract{doc: doc, router: router, tree: tree, schemas: schemas}, nil
}

// validateJSON validates a JSON body against the schema at a JSON pointer of the document.
func (c *contract) validateJSON(pointer string, body []byte) error {
	schema, err := c.schemas.Compile(contractURL + "#" + pointer)
	if err != nil {
		return fmt.Errorf("schema at %s: %w", pointer, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return schema.Validate(v)
}

// bodySchema returns the pointer of the JSON schema of an operation's request body (code "")
// or of its answer with status code, following a response's $ref; "" when there is none.
func (c *contract) bodySchema(method, path, code string) string {
	op := "/paths/" + escapePointer(path) + "/" + strings.ToLower(method)
	at := op + "/requestBody"
	if code != "" {
		at = op + "/responses/" + code
		if ref, ok := c.at(at + "/$ref").(string); ok {
			at = strings.TrimPrefix(ref, "#")
		}
	}
	at += "/content/application~1json/schema"
	if c.at(at) == nil {
		return ""
	}
	return at
}

// at returns the value at a JSON pointer of the document, nil when there is none.
func (c *contract) at(pointer string) any {
	v := c.tree
	for _, token := range strings.Split(pointer, "/")[1:] {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[strings.ReplaceAll(strings.ReplaceAll(token, "~1", "/"), "~0", "~")]
	}
	return v
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// bearerPresent is the document's bearerToken scheme as a client sees it: an Authorization
// header with a bearer token. Whether the token is good is the server's to say.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "bearerToken" {
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	scheme, tok, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// verdict is what checking one exchange found.
type verdict struct {
	operation  string // "POST /tokens", or "" when no route of the document serves the request
	refusedBy  error  // why the document refuses the request; nil when it accepts it
	answerErr  error  // why the answer does not fit the document; nil when it does
	refusalErr error  // why the server's answer to a refused request breaks the rule; nil when it keeps it
}

// check validates x's request and answer against the document.
func (c *contract) check(x exchange) verdict {
	ctx := context.Background()
	req := httptest.NewRequest(x.method, x.target, strings.NewReader(x.body))
	req.Header = x.header.Clone()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return verdict{answerErr: c.checkUnrouted(x)}
	}
	var v verdict
	v.operation = x.method + " " + route.Path
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerPresent},
	}
	v.refusedBy = openapi3filter.ValidateRequest(ctx, in)
	if schema := c.bodySchema(x.method, route.Path, ""); v.refusedBy == nil && schema != "" && x.body != "" {
		v.refusedBy = c.validateJSON(schema, []byte(x.body))
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: x.status, Header: x.respHeader,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(x.respBody)
	v.answerErr = openapi3filter.ValidateResponse(ctx, out)
	if schema := c.bodySchema(x.method, route.Path, fmt.Sprint(x.status)); v.answerErr == nil && schema != "" {
		v.answerErr = c.validateJSON(schema, x.respBody)
	}
	if cc := x.respHeader.Get("Cache-Control"); v.answerErr == nil && route.Path != "/openapi.json" && cc != "no-store" {
		v.answerErr = fmt.Errorf("Cache-Control %q, not no-store as the document says of every JSON answer", cc)
	}
	if v.answerErr == nil && x.status >= 400 {
		// The document also admits API Gateway's own error bodies; this server answers Error only.
		v.answerErr = c.validateSchema("Error", x.respBody)
	}
	if v.refusedBy != nil {
		v.refusalErr = refusalRule(v.refusedBy, x.status)
	}
	return v
}

// refusalRule: a request the document refuses is answered 400 by the server, but for the two
// refusals that come before the server reads a request's content: 401 (credentials are checked
// first; the document's security requirement is one of these) and 413 (a body over 64 KiB is not
// read). Any other answer means the server accepted what the document refuses, or looked the
// request up before it checked it.
func refusalRule(refusedBy error, status int) error {
	var security *openapi3filter.SecurityRequirementsError
	switch {
	case errors.As(refusedBy, &security):
		if status != http.StatusUnauthorized {
			return fmt.Errorf("the document requires credentials, the server answered %d, not 401", status)
		}
	case !slices.Contains([]int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge}, status):
		return fmt.Errorf("the document refuses the request, the server answered %d, not 400", status)
	}
	return nil
}

// checkUnrouted: a request no route of the document serves is answered 404, or 405 with Allow
// when its path is served with another method, as an Error.
func (c *contract) checkUnrouted(x exchange) error {
	switch {
	case x.status == http.StatusNotFound:
	case x.status == http.StatusMethodNotAllowed && x.respHeader.Get("Allow") != "":
	default:
		return fmt.Errorf("no route of the document serves the request, yet the server answered %d", x.status)
	}
	return c.validateSchema("Error", x.respBody)
}

func (c *contract) validateSchema(name string, body []byte) error {
	if err := c.validateJSON("/components/schemas/"+name, body); err != nil {
		return fmt.Errorf("not a %s: %w", name, err)
	}
	return nil
}

// contractReport sums up the check of a test run's exchanges.
type contractReport struct {
	exchanges int
	unrouted  int
	answered  map[string]map[int]int // operation -> status -> answers that fit the document
	refused   map[int]int            // status -> requests the document refuses
	stricter  int                    // requests the document accepts and the server answered 400
	failures  []string
}

func (c *contract) checkExchanges(exchanges []exchange) *contractReport {
	r := &contractReport{exchanges: len(exchanges), answered: map[string]map[int]int{}, refused: map[int]int{}}
	for _, x := range exchanges {
		v := c.check(x)
		if v.operation == "" {
			r.unrouted++
		} else if v.answerErr == nil {
			if r.answered[v.operation] == nil {
				r.answered[v.operation] = map[int]int{}
			}
			r.answered[v.operation][x.status]++
		}
		if v.answerErr != nil {
			r.failures = append(r.failures, fmt.Sprintf("%s\n\tthe answer does not fit the document: %v", x, v.answerErr))
		}
		if v.refusedBy != nil {
			r.refused[x.status]++
		} else if x.status == http.StatusBadRequest {
			r.stricter++
		}
		if v.refusalErr != nil {
			r.failures = append(r.failures, fmt.Sprintf("%s\n\t%v: %v", x, v.refusalErr, v.refusedBy))
		}
	}
	return r
}

func (r *contractReport) summary() string {
	valid := 0
	for _, byStatus := range r.answered {
		for _, n := range byStatus {
			valid += n
		}
	}
	return fmt.Sprintf("openapi.yaml: %d exchanges of the HTTP tests checked: %d answers of %d operations fit the document, %d unrouted answers are Errors; "+
		"%d requests the document refuses were refused (by status %v); %d requests it accepts were answered 400 (rules JSON Schema cannot state); %d failures",
		r.exchanges, valid, len(r.answered), r.unrouted, sum(r.refused), r.refused, r.stricter, len(r.failures))
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// requireCoverage: when the whole suite ran, every operation of the document had a successful
// answer checked, so that no route escapes the check.
func (r *contractReport) requireCoverage(c *contract) {
	for _, op := range documentOperations(c.doc) {
		ok := false
		for status := range r.answered[op] {
			ok = ok || status < 400
		}
		if !ok {
			r.failures = append(r.failures, fmt.Sprintf("%s: no successful answer was checked: the HTTP tests must call it", op))
		}
	}
}

// documentOperations lists the document's operations as route patterns: "GET /tokens/{id}".
func documentOperations(doc *openapi3.T) []string {
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	sort.Strings(ops)
	return ops
}

// TestOpenAPIPathsAreTheRouteTable: the document's operations are exactly httpapi.Routes, and
// its security says which take a token exactly as each route's Auth does.
func TestOpenAPIPathsAreTheRouteTable(t *testing.T) {
	c := mustContract(t, []byte(apitokens.OpenAPI))
	routes := map[string]bool{}
	for _, rt := range httpapi.Routes {
		routes[rt.Pattern] = rt.Auth
	}
	documented := documentOperations(c.doc)
	if got, want := documented, slices.Sorted(maps.Keys(routes)); !slices.Equal(got, want) {
		t.Fatalf("document operations %q\nroute table          %q", got, want)
	}
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		o := c.doc.Paths.Find(path).GetOperation(method)
		security := c.doc.Security
		if o.Security != nil {
			security = *o.Security
		}
		if got := len(security) > 0; got != routes[op] {
			t.Errorf("%s: the document requires a token: %v; the route table: %v", op, got, routes[op])
		}
		// Every route can fail (500) and be throttled by API Gateway (429); the authenticator
		// refuses credentials (401), a caller's address (403) and its rate limit (429); decodeBody
		// refuses a body (400) and a large one (413).
		want := []int{429, 500}
		if routes[op] {
			want = append(want, 401, 403)
		}
		if o.RequestBody != nil {
			want = append(want, 400, 413)
		}
		for _, status := range want {
			if o.Responses.Status(status) == nil {
				t.Errorf("%s lists no %d answer", op, status)
			}
		}
	}
}

// TestOpenAPIExamplesValidate: every example of a request or an answer validates against its
// schema as JSON Schema 2020-12 has it (openapi3's own check of examples, in newContract, falls
// back to OpenAPI 3.0 rules for some schemas; see contract).
func TestOpenAPIExamplesValidate(t *testing.T) {
	c := mustContract(t, []byte(apitokens.OpenAPI))
	n := 0
	for _, op := range documentOperations(c.doc) {
		method, path, _ := strings.Cut(op, " ")
		o := c.doc.Paths.Find(path).GetOperation(method)
		examples := map[string]openapi3.Examples{}
		if o.RequestBody != nil {
			examples[""] = o.RequestBody.Value.Content.Get("application/json").Examples
		}
		for code, ref := range o.Responses.Map() {
			if media := ref.Value.Content.Get("application/json"); media != nil {
				examples[code] = media.Examples
			}
		}
		for code, byName := range examples {
			for name, ex := range byName {
				b, err := json.Marshal(ex.Value.Value)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.validateJSON(c.bodySchema(method, path, code), b); err != nil {
					t.Errorf("%s %s example %q: %v", op, code, name, err)
				}
				n++
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d examples checked", n)
	}
}

func mustContract(t *testing.T, document []byte) *contract {
	t.Helper()
	c, err := newContract(document)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOpenAPIServed: GET /openapi.json answers openapi.yaml as JSON, key order kept, cacheable,
// and 304 to a client that holds it; the document it serves validates as OpenAPI 3.1.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.must(200, "GET", "/openapi.json", "", "")
	var served, source any
	if err := json.Unmarshal([]byte(resp.raw), &served); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(apitokens.OpenAPI), &source); err != nil {
		t.Fatal(err)
	}
	if canonical(t, served) != canonical(t, source) {
		t.Fatal("GET /openapi.json is not openapi.yaml")
	}
	if !strings.HasPrefix(resp.raw, `{"openapi":"3.1.0","info":{"title":"apitokens"`) {
		t.Errorf("GET /openapi.json does not keep openapi.yaml's order: %.60s", resp.raw)
	}
	mustContract(t, []byte(resp.raw))
	etag := resp.header.Get("ETag")
	if got := resp.header.Get("Cache-Control"); got != "public, max-age=300" || etag == "" {
		t.Fatalf("Cache-Control %q, ETag %q", got, etag)
	}

	for _, tc := range []struct {
		ifNoneMatch string
		want        int
	}{
		{etag, http.StatusNotModified},
		{`"other", W/` + etag, http.StatusNotModified},
		{"*", http.StatusNotModified},
		{`"other"`, http.StatusOK},
	} {
		r := httptest.NewRequest("GET", "/openapi.json", nil)
		r.Header.Set("If-None-Match", tc.ifNoneMatch)
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, r)
		record(t, r, "", w)
		if w.Code != tc.want || w.Header().Get("ETag") != etag {
			t.Errorf("If-None-Match %s: %d ETag %q; want %d and the same ETag", tc.ifNoneMatch, w.Code, w.Header().Get("ETag"), tc.want)
		}
		if tc.want == http.StatusNotModified && w.Body.Len() != 0 {
			t.Errorf("If-None-Match %s: 304 with a body", tc.ifNoneMatch)
		}
	}
}

// canonical renders a decoded document as JSON with sorted keys, so that YAML and JSON
// decodings compare.
func canonical(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOpenAPIContractCatchesDrift: the checks TestMain runs fail when the document and the server
// disagree: a schema that no longer fits the answers, a request rule the server does not keep,
// an undocumented status; and pass on the true document. Without this, a validator that accepts
// everything would pass TestMain.
func TestOpenAPIContractCatchesDrift(t *testing.T) {
	e := newEnv(t, nil)
	mark := len(snapshotExchanges())
	id := e.must(201, "POST", "/tokens", e.admin, `{"name":"drift","permissions":["read"]}`).str("id")
	e.must(200, "GET", "/tokens/"+id, e.admin, "")
	e.must(200, "GET", "/tokens?limit=5", e.admin, "")
	e.must(400, "GET", "/tokens?limit=500", e.admin, "")
	e.must(401, "GET", "/tokens/"+id, "", "")
	e.must(200, "POST", "/verify", "", `{"token":"`+e.admin+`"}`)
	exchanges := snapshotExchanges()[mark:]

	if r := mustContract(t, []byte(apitokens.OpenAPI)).checkExchanges(exchanges); len(r.failures) > 0 {
		t.Fatalf("the true document fails: %q", r.failures)
	}
	for _, tc := range []struct{ name, old, new, failure string }{
		{"a name shorter than the server's",
			"      minLength: 1\n      maxLength: 100\n", "      minLength: 1\n      maxLength: 3\n", "does not fit"},
		{"a token field the server does not send",
			"      required: [id, name, hint,", "      required: [colour, id, name, hint,", "does not fit"},
		{"a limit the server accepts refused",
			"        minimum: 1\n        maximum: 100\n        default: 20\n", "        minimum: 1\n        maximum: 4\n        default: 2\n", "the server answered 200"},
		{"credentials asked of a public route",
			"      security: []\n      requestBody:", "      requestBody:", "the document requires credentials, the server answered 200"},
		{"an undocumented status",
			"        '401':\n          $ref: '#/components/responses/Unauthorized'\n        '403':\n          $ref: '#/components/responses/Forbidden'\n        '404':\n          $ref: '#/components/responses/NotFound'\n        '429':\n          $ref: '#/components/responses/RateLimited'\n        '500':\n          $ref: '#/components/responses/InternalError'\n    patch:",
			"        '403':\n          $ref: '#/components/responses/Forbidden'\n        '404':\n          $ref: '#/components/responses/NotFound'\n        '429':\n          $ref: '#/components/responses/RateLimited'\n        '500':\n          $ref: '#/components/responses/InternalError'\n    patch:",
			"does not fit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Count(apitokens.OpenAPI, tc.old) != 1 {
				t.Fatalf("openapi.yaml no longer holds %q exactly once: update this test", tc.old)
			}
			// Its examples no longer fit it either; the check of the exchanges is what is tested.
			wrong, err := newContract([]byte(strings.Replace(apitokens.OpenAPI, tc.old, tc.new, 1)), openapi3.DisableExamplesValidation())
			if err != nil {
				t.Fatal(err)
			}
			r := wrong.checkExchanges(exchanges)
			if !slices.ContainsFunc(r.failures, func(f string) bool { return strings.Contains(f, tc.failure) }) {
				t.Fatalf("a document with %s passed: failures %q", tc.name, r.failures)
			}
		})
	}
}

func snapshotExchanges() []exchange {
	recorded.mu.Lock()
	defer recorded.mu.Unlock()
	return slices.Clone(recorded.exchanges)
}

// checkExamples: every example answer of the document is one the server gives. An error
// example's exact body was answered with its status, by its operation or, for a shared response,
// by any; a success example has the fields of an answer its operation gave with its status, each
// of the same JSON type where both are not null. API Gateway's own bodies (GatewayError) are AWS's
// to give, not this server's, and are left out. TestOpenAPIExamplesValidate checks them against
// their schemas.
func (c *contract) checkExamples(exchanges []exchange) []string {
	var failures []string
	for _, op := range documentOperations(c.doc) {
		method, path, _ := strings.Cut(op, " ")
		for code, ref := range c.doc.Paths.Find(path).GetOperation(method).Responses.Map() {
			media := ref.Value.Content.Get("application/json")
			if media == nil {
				continue
			}
			for name, ex := range media.Examples {
				value := ex.Value.Value
				if b, _ := json.Marshal(value); c.validateSchema("GatewayError", b) == nil {
					continue
				}
				if !slices.ContainsFunc(exchanges, func(x exchange) bool {
					if fmt.Sprint(x.status) != code || (ref.Ref == "" || x.status < 400) && c.operationOf(x) != op {
						return false
					}
					var got any
					if json.Unmarshal(x.respBody, &got) != nil {
						return false
					}
					if x.status >= 400 {
						return reflect.DeepEqual(got, value)
					}
					return sameShape(value, got)
				}) {
					failures = append(failures, fmt.Sprintf("%s %s example %q: no answer of the tests is like it: %v", op, code, name, value))
				}
			}
		}
	}
	return failures
}

func (c *contract) operationOf(x exchange) string {
	route, _, err := c.router.FindRoute(httptest.NewRequest(x.method, x.target, nil))
	if err != nil {
		return ""
	}
	return x.method + " " + route.Path
}

// sameShape reports whether two JSON values have the same fields at every depth, each of the
// same JSON type where neither is null; arrays compare by their first elements, and meta, the
// caller's own object, only as an object.
func sameShape(a, b any) bool {
	if a == nil || b == nil {
		return true
	}
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || !slices.Equal(slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(bm))) {
			return false
		}
		for k, v := range a {
			if k != "meta" && !sameShape(v, bm[k]) {
				return false
			}
		}
		return true
	case []any:
		bs, ok := b.([]any)
		return ok && (len(a) == 0 || len(bs) == 0 || sameShape(a[0], bs[0]))
	}
	return reflect.TypeOf(a) == reflect.TypeOf(b)
}
