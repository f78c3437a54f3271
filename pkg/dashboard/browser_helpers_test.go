package dashboard_test

// The browser tests' harness: the server as `apitokens serve` assembles it (memory store, the
// management authorizer's code, the API and the dashboard on one origin), on 127.0.0.1; one
// headless Chromium for the whole package, and for each test a tab in a browser context of its
// own (its own storage, permissions and clipboard). Elements are found the way a screen reader
// finds them: by role and accessible name (Accessibility.queryAXTree).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitokens/apitokens/internal/syncbuf"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/dashboard"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
)

// installChromium is how to get the browser the tests need (scripts/prerequisites.sh runs it).
const installChromium = "apt-get update && apt-get install -y chromium"

// testTimeout bounds each browser test: a query waits for its element until then.
const testTimeout = 45 * time.Second

var shared struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cancel != nil {
		shared.cancel()
	}
	os.Exit(code)
}

// chromiumPath returns the path of Chromium (or Chrome), or "" when there is none.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// mustBrowser starts the package's browser on first use; it fails the test, naming the install
// command, when there is no Chromium: these tests never skip.
func mustBrowser(t testing.TB) context.Context {
	t.Helper()
	shared.once.Do(func() {
		path := chromiumPath()
		if path == "" {
			shared.err = errors.New("no Chromium found: install it with `" + installChromium + "` (make test's scripts/prerequisites.sh does)")
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
			chromedp.Flag("headless", "new"), chromedp.WindowSize(1280, 900))
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(allocCtx)
		if err := chromedp.Do(ctx); err != nil {
			cancel()
			cancelAlloc()
			shared.err = fmt.Errorf("start %s: %w", path, err)
			return
		}
		shared.ctx, shared.cancel = ctx, func() { cancel(); cancelAlloc() }
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.ctx
}

// site is one server: the API and the dashboard on one origin, over a memory store.
type site struct {
	URL     string
	svc     *token.Service
	store   *memstore.Store
	admin   string // plaintext of an admin token of owner "admin"
	adminID string
	logs    *lockedBuffer // the server's log

	mu       sync.Mutex
	requests []request // every request the server answered, in the order of its answers
}

// request is what a test may need to know of a request the server got, and its answer's status.
type request struct {
	method, path, authorization string
	status                      int
}

// got returns the requests the server answered so far.
func (s *site) got() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// lockedBuffer is the server's log, written by its handlers while a test reads it.
type lockedBuffer = syncbuf.Buffer

// newSite starts a server as `apitokens serve` assembles it, with the dashboard configured by
// cfg and the tokens by tokens; the API takes tokens only (no sign-in of people configured).
func newSite(t testing.TB, cfg dashboard.Config, tokens token.Config) *site {
	t.Helper()
	dash, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return startSite(t, dash, tokens, func(string) string { return "" })
}

// newSiteFromEnv starts a server configured by env exactly as `apitokens serve` reads its
// environment, with the same app functions: the token settings (app.ServiceConfig), the
// dashboard (app.Dashboard), and the management authorizer with people's sign-in (app.People,
// OIDC_ISSUER, ...) and CORS (app.CORSOriginsFromEnv).
func newSiteFromEnv(t testing.TB, env map[string]string) *site {
	t.Helper()
	getenv := func(name string) string { return env[name] }
	tokens, err := app.ServiceConfig(getenv)
	if err != nil {
		t.Fatal(err)
	}
	dash, err := app.Dashboard(getenv)
	if err != nil {
		t.Fatal(err)
	}
	return startSite(t, dash, tokens, getenv)
}

// startSite starts the server of dash and the API over a memory store, assembled as
// cmd/apitokens/serve.go does: the API is authenticated by the management authorizer configured
// from getenv (its role forced to management), people's sign-in included.
func startSite(t testing.TB, dash *dashboard.Handler, tokens token.Config, getenv func(string) string) *site {
	t.Helper()
	store := memstore.New(nil)
	svc, err := token.NewService(store, tokens)
	if err != nil {
		t.Fatal(err)
	}
	managementEnv := func(name string) string {
		if name == authorizer.EnvRole {
			return authorizer.RoleManagement
		}
		return getenv(name)
	}
	authCfg, err := authorizer.ConfigFromEnv(managementEnv)
	if err != nil {
		t.Fatal(err)
	}
	if authCfg.People, err = app.People(managementEnv); err != nil {
		t.Fatal(err)
	}
	corsOrigins, err := app.CORSOriginsFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	authCfg.Prefix = svc.Prefix()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	authCfg.Logger = logger
	api := &httpapi.API{Service: svc, Authenticate: authorizer.New(store, authCfg).AuthenticateRequest, Logger: logger}
	mux := http.NewServeMux()
	dash.Register(mux)
	mux.Handle("/", httpapi.CORS(corsOrigins, api.Handler()))
	s := &site{svc: svc, store: store, logs: logs}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(rec, r)
		s.mu.Lock()
		s.requests = append(s.requests, request{r.Method, r.URL.Path, r.Header.Get("Authorization"), rec.status})
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	adm, plaintext, err := svc.Create(context.Background(), admin(), token.CreateInput{
		Owner: "admin", Name: "admin (test)", Permissions: []string{token.PermAdmin, token.PermManage},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.admin, s.adminID = plaintext, adm.ID
	return s
}

// statusRecorder notes the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// admin is the CLI's principal: it may do anything.
func admin() token.Principal {
	return token.Principal{Owner: "cli", Permissions: []string{token.PermAdmin}}
}

// mint creates a token directly in the service, as the CLI does.
func (s *site) mint(t testing.TB, in token.CreateInput) (*token.Token, string) {
	t.Helper()
	tok, plaintext, err := s.svc.Create(context.Background(), admin(), in)
	if err != nil {
		t.Fatal(err)
	}
	return tok, plaintext
}

// get reads a token's current record from the service.
func (s *site) get(t testing.TB, id string) *token.Token {
	t.Helper()
	tok, err := s.svc.Get(context.Background(), admin(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// verify asks POST /verify about plaintext, as another API would.
func (s *site) verify(t testing.TB, plaintext string) httpapi.VerifyResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"token": plaintext})
	resp, err := http.Post(s.URL+"/verify", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v httpapi.VerifyResponse
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /verify: %d %v", resp.StatusCode, err)
	}
	return v
}

// tab is one browser tab on a site.
type tab struct {
	t    testing.TB
	ctx  context.Context
	site *site
}

// problemsScript records, before the page's own scripts run, what must never happen: a CSP
// violation, an uncaught error, an unhandled rejection.
const problemsScript = `
window.__problems = [];
addEventListener('securitypolicyviolation', (e) => __problems.push('CSP ' + e.violatedDirective + ' blocked ' + e.blockedURI));
addEventListener('error', (e) => __problems.push('error: ' + e.message));
addEventListener('unhandledrejection', (e) => __problems.push('unhandled rejection: ' + (e.reason && e.reason.message || e.reason)));
`

// open opens the dashboard in a new tab of a new browser context, with the clipboard allowed to
// the site's origin, and waits for the sign-in form. At the end of the test it fails the test
// if the page recorded a problem.
func (s *site) open(t testing.TB) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(mustBrowser(t), chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, testTimeout)
	t.Cleanup(cancelTimeout)
	p := &tab{t: t, ctx: ctx, site: s}
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: problemsScript})
		return err
	}))
	bctx := chromedp.FromContext(ctx).BrowserContextID
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
			Setting:    browser.PermissionSettingGranted, Origin: s.URL, BrowserContextID: bctx,
		}); err != nil {
			t.Fatalf("grant %s: %v", name, err)
		}
	}
	p.do(chromedp.Navigate(s.URL + "/"))
	// Waited for with the DOM, not the accessibility tree: a query of that tree turns Chromium's
	// accessibility on for the tab, which the benchmark must not pay for.
	p.waitFor(`!document.getElementById('sign-in').hidden`)
	t.Cleanup(p.checkProblems)
	return p
}

func (p *tab) checkProblems() {
	if p.t.Failed() {
		return
	}
	problems, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](`window.__problems || []`))
	if err != nil {
		p.t.Errorf("read the page's problems: %v", err)
	}
	for _, pr := range problems {
		p.t.Errorf("the page recorded: %s", pr)
	}
}

func (p *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page (awaiting a promise) and decodes its value.
func eval[T any](p *tab, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is truthy, through navigations (an evaluation
// that meets a page being replaced is tried again).
func (p *tab) waitFor(expr string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		if ok, err = chromedp.Run(p.ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`)); err == nil && ok {
			return
		}
		if p.ctx.Err() != nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	p.t.Fatalf("waiting for %s: not true within 20 s (last error: %v)\nalert: %s", expr, err, p.alertText())
}

// locator is a query: a role and an accessible name, optionally within an element.
type locator struct {
	role, name string
	within     *chromedp.Node
}

func (p *tab) named(role, name string) locator { return locator{role: role, name: name} }

func (l locator) in(n *chromedp.Node) locator { l.within = n; return l }

func (l locator) String() string { return fmt.Sprintf("%s %q", l.role, l.name) }

// options are the query options of l: a lookup by accessible name and role, among the elements
// that are not ignored for accessibility (hidden ones are, and so is everything outside an open
// modal dialog).
func (l locator) options(extra ...chromedp.QueryOption) []chromedp.QueryOption {
	opts := []chromedp.QueryOption{chromedp.ByFunc(func(ctx context.Context, tg *chromedp.Target, n *chromedp.Node) ([]cdp.NodeID, error) {
		roles := strings.Split(l.role, "|")
		query := accessibility.QueryAXTreeParams{NodeID: n.NodeID, AccessibleName: l.name}
		if len(roles) == 1 {
			query.Role = l.role
		}
		res, err := cdp.Call(ctx, tg, accessibility.QueryAXTree, query)
		if err != nil {
			return nil, err
		}
		var ids []cdp.BackendNodeID
		for _, ax := range res.Nodes {
			if !ax.Ignored && ax.BackendDOMNodeID != 0 && (len(roles) == 1 || slices.Contains(roles, roleOf(ax))) {
				ids = append(ids, ax.BackendDOMNodeID)
			}
		}
		if len(ids) == 0 {
			return nil, nil
		}
		pushed, err := cdp.Call(ctx, tg, dom.PushNodesByBackendIDsToFrontend, dom.PushNodesByBackendIDsToFrontendParams{BackendNodeIDs: ids})
		return pushed.NodeIDs, err
	})}
	if l.within != nil {
		opts = append(opts, chromedp.FromNode(l.within))
	}
	return append(opts, extra...)
}

// roleOf is the computed role of an accessibility node.
func roleOf(ax *accessibility.Node) string {
	var role string
	if ax.Role != nil {
		_ = json.Unmarshal(ax.Role.Value, &role)
	}
	return role
}

func (p *tab) click(l locator) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Click(l.String(), l.options(chromedp.NodeVisible)...)); err != nil {
		p.t.Fatalf("click %s: %v\nalert: %s", l, err, p.alertText())
	}
}

func (p *tab) waitVisible(l locator) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Query(l.String(), l.options(chromedp.NodeVisible)...)); err != nil {
		p.t.Fatalf("wait for %s: %v", l, err)
	}
}

// fill types value into the text or number field named label, after clearing it.
func (p *tab) fill(label, value string) {
	p.t.Helper()
	l := p.named("textbox|spinbutton", label)
	p.callOn(l, `function() { this.value = ''; }`)
	if err := chromedp.Do(p.ctx, chromedp.SendKeys(l.String(), value, l.options(chromedp.NodeVisible)...)); err != nil {
		p.t.Fatalf("fill %s: %v", l, err)
	}
}

// choose selects the option labelled option of the select named label, as a person does.
func (p *tab) choose(label, option string) {
	p.t.Helper()
	p.callOn(p.named("combobox", label), fmt.Sprintf(`function() {
		const o = [...this.options].find((o) => o.textContent.trim() === %q);
		if (!o) throw new Error('no such option');
		this.value = o.value;
		this.dispatchEvent(new Event('change', { bubbles: true }));
	}`, option))
}

// callOn calls a JavaScript function with the element l finds as this.
func (p *tab) callOn(l locator, fn string) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.QueryAfter(l.String(), func(ctx context.Context, tg *chromedp.Target, nodes []*chromedp.Node) (chromedp.Void, error) {
		r, err := cdp.Call(ctx, tg, dom.ResolveNode, dom.ResolveNodeParams{NodeID: nodes[0].NodeID})
		if err != nil {
			return chromedp.Void{}, err
		}
		res, err := cdp.Call(ctx, tg, runtime.CallFunctionOn, runtime.CallFunctionOnParams{FunctionDeclaration: fn, ObjectID: r.Object.ObjectID})
		if err == nil && res.ExceptionDetails != nil {
			err = fmt.Errorf("%s", res.ExceptionDetails.Text)
		}
		return chromedp.Void{}, err
	}, l.options(chromedp.NodeVisible)...))
	if err != nil {
		p.t.Fatalf("%s: %v", l, err)
	}
}

// alertText is the page's alert, or "".
func (p *tab) alertText() string {
	s, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`(() => { const a = document.getElementById('alert'); return a && !a.hidden ? document.getElementById('alert-text').textContent : '' })()`))
	return s
}

// signIn signs in with a token, as a person pastes one.
func (p *tab) signIn(plaintext string) {
	p.t.Helper()
	p.fill("Token", plaintext)
	p.click(p.named("button", "Sign in"))
	p.waitVisible(p.named("button", "Sign out"))
}

// row returns the list's row of the token named name, once it is shown.
func (p *tab) row(name string) *chromedp.Node {
	p.t.Helper()
	p.waitFor(fmt.Sprintf(`%s !== undefined`, rowJS(name)))
	id := eval[string](p, rowJS(name)+`.dataset.id`)
	nodes, err := chromedp.Run(p.ctx, chromedp.Nodes(chromedp.CSS(fmt.Sprintf(`#token-rows tr[data-id=%q]`, id))))
	if err != nil || len(nodes) == 0 {
		p.t.Fatalf("no row %q: %v", name, err)
	}
	return nodes[0]
}

// rowJS is a JavaScript expression for the row of the token named name (undefined when none).
func rowJS(name string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#token-rows tr.token-row')].find((r) => r.querySelector('.details-toggle').textContent === %q)`, name)
}

// rowText is the text of the cell of the token named name that matches the CSS selector cell.
func (p *tab) rowText(name, cell string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`%s?.querySelector(%q)?.textContent ?? ''`, rowJS(name), cell))
}

// waitBadge waits until the status badge of the token named name says status.
func (p *tab) waitBadge(name, status string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf(`%s?.querySelector('.badge')?.textContent === %q`, rowJS(name), status))
}

// dialog returns the open dialog named name.
func (p *tab) dialog(name string) *chromedp.Node {
	p.t.Helper()
	l := p.named("dialog", name)
	nodes, err := chromedp.Run(p.ctx, chromedp.Nodes(l.String(), l.options(chromedp.NodeVisible)...))
	if err != nil || len(nodes) == 0 {
		p.t.Fatalf("no dialog %q: %v", name, err)
	}
	return nodes[0]
}

// secretClosed is true once the new-token dialog is closed and its close handler has run: the
// close event comes a task after close() (Done, Escape), and only then is the dialog emptied.
const secretClosed = `!document.getElementById('secret-dialog').open && document.getElementById('secret-value').textContent === ''`

// everything is the page's whole DOM and both storages, where a secret must not be.
func (p *tab) everything() string {
	p.t.Helper()
	return eval[string](p, `document.documentElement.outerHTML + '\n' + JSON.stringify({...sessionStorage}) + '\n' + JSON.stringify({...localStorage})
		+ '\n' + [...document.querySelectorAll('input, textarea')].map((e) => e.value).join('\n')`)
}
