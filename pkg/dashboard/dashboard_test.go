package dashboard_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/dashboard"
)

func mustHandler(t *testing.T, cfg dashboard.Config) *dashboard.Handler {
	t.Helper()
	h, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// get answers one request to h; header holds request headers as name, value pairs.
func get(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// directives parses a Content-Security-Policy into its directives.
func directives(csp string) map[string][]string {
	out := map[string][]string{}
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			out[f[0]] = f[1:]
		}
	}
	return out
}

// assetRefs are the /ui/ paths index.html names (stylesheet, icon, modules).
var assetRefs = regexp.MustCompile(`(?:href|src)="(/ui/[^"]+)"`)

// TestServesThePage: GET / is index.html under a strict CSP, naming its files by versioned
// paths that are served with their content types and cached for good; the same files under
// their plain paths are revalidated; anything else is 404, another method 405.
func TestServesThePage(t *testing.T) {
	h := mustHandler(t, dashboard.Config{})
	w := get(h, "GET", "/")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	csp := directives(w.Header().Get("Content-Security-Policy"))
	for name, want := range map[string][]string{
		"default-src": {"'self'"}, "script-src": {"'self'"}, "style-src": {"'self'"}, "connect-src": {"'self'"},
		"frame-ancestors": {"'none'"}, "object-src": {"'none'"}, "base-uri": {"'none'"},
		"require-trusted-types-for": {"'script'"},
	} {
		if !slices.Equal(csp[name], want) {
			t.Errorf("CSP %s = %q, want %q", name, csp[name], want)
		}
	}
	for name, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
		"Cache-Control": "no-cache",
	} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}

	refs := assetRefs.FindAllStringSubmatch(w.Body.String(), -1)
	if len(refs) < 3 {
		t.Fatalf("index.html names %d files", len(refs))
	}
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
	for _, m := range refs {
		ref := m[1]
		if !strings.HasPrefix(ref, "/ui/"+h.Version()+"/") {
			t.Errorf("index.html names %s, not a path of version %s", ref, h.Version())
			continue
		}
		a := get(h, "GET", ref)
		if a.Code != 200 || a.Header().Get("Content-Type") != types[filepath.Ext(ref)] {
			t.Errorf("GET %s: %d %q", ref, a.Code, a.Header().Get("Content-Type"))
		}
		if cc := a.Header().Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control %q", ref, cc)
		}
		plain := "/ui/" + strings.TrimPrefix(ref, "/ui/"+h.Version()+"/")
		if p := get(h, "GET", plain); p.Code != 200 || p.Header().Get("Cache-Control") != "no-cache" || !bytes.Equal(p.Body.Bytes(), a.Body.Bytes()) {
			t.Errorf("GET %s: %d %q", plain, p.Code, p.Header().Get("Cache-Control"))
		}
	}

	for _, path := range []string{"/ui/nothing.js", "/ui/index.html", "/ui/old-version/app.js", "/ui/", "/ui/../dashboard.go", "/ui/static/app.js", "/index.html"} {
		if w := get(h, "GET", path); w.Code != 404 {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}
	if w := get(h, "POST", "/"); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d Allow %q", w.Code, w.Header().Get("Allow"))
	}
	if w := get(h, "HEAD", "/"); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD /: %d, %d bytes", w.Code, w.Body.Len())
	}
}

// TestGzipAndETags: gzip when the request accepts it (not with q=0), the same bytes either way;
// a matching If-None-Match answers 304 without a body.
func TestGzipAndETags(t *testing.T) {
	h := mustHandler(t, dashboard.Config{})
	plain := get(h, "GET", "/ui/app.js")
	for _, accept := range []string{"gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8", "*"} {
		w := get(h, "GET", "/ui/app.js", "Accept-Encoding", accept)
		if w.Header().Get("Content-Encoding") != "gzip" {
			t.Errorf("Accept-Encoding %q: not gzipped", accept)
			continue
		}
		if !bytes.Equal(gunzip(t, w.Body.Bytes()), plain.Body.Bytes()) {
			t.Errorf("Accept-Encoding %q: the gzip is not the file", accept)
		}
		if w.Body.Len() >= plain.Body.Len() {
			t.Errorf("gzip %d bytes, plain %d", w.Body.Len(), plain.Body.Len())
		}
	}
	for _, accept := range []string{"", "br", "gzip;q=0", "identity"} {
		if w := get(h, "GET", "/ui/app.js", "Accept-Encoding", accept); w.Header().Get("Content-Encoding") != "" {
			t.Errorf("Accept-Encoding %q: gzipped anyway", accept)
		}
	}
	if plain.Header().Get("Vary") != "Accept-Encoding" {
		t.Errorf("Vary %q: a cache could serve gzip to a client that cannot read it", plain.Header().Get("Vary"))
	}
	etag := plain.Header().Get("ETag")
	if w := get(h, "GET", "/ui/app.js", "If-None-Match", etag); w.Code != 304 || w.Body.Len() != 0 {
		t.Errorf("If-None-Match the ETag: %d, %d bytes", w.Code, w.Body.Len())
	}
	if w := get(h, "GET", "/ui/app.js", "If-None-Match", `"stale"`); w.Code != 200 {
		t.Errorf("If-None-Match another ETag: %d", w.Code)
	}
	if get(h, "GET", "/ui/app.css").Header().Get("ETag") == etag {
		t.Error("two files share an ETag")
	}
}

// TestFirstLoadSize: everything the page loads on its first visit, gzipped as the server sends
// it (index.html, every embedded file, config.json), is at most 100 KiB.
func TestFirstLoadSize(t *testing.T) {
	h := mustHandler(t, dashboard.Config{})
	total := get(h, "GET", "/", "Accept-Encoding", "gzip").Body.Len()
	total += get(h, "GET", "/ui/config.json", "Accept-Encoding", "gzip").Body.Len()
	files := 0
	err := fs.WalkDir(os.DirFS("static"), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == "index.html" {
			return err
		}
		w := get(h, "GET", "/ui/"+h.Version()+"/"+path, "Accept-Encoding", "gzip")
		if w.Code != 200 {
			t.Errorf("GET /ui/%s: %d", path, w.Code)
		}
		total += w.Body.Len()
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first load: index.html, config.json and %d files, %d bytes gzipped (%.1f KiB)", files, total, float64(total)/1024)
	if total > 100<<10 {
		t.Errorf("first load is %d bytes gzipped, more than 100 KiB", total)
	}
}

// TestNoInlineCodeNoHTMLSinksNoLocalStorage reads the page's sources: no inline script, style
// or event handler (the CSP would refuse them), no HTML built from strings (innerHTML and its
// kin: Trusted Types would refuse them, and a token name must never become markup), no eval,
// and never localStorage.
func TestNoInlineCodeNoHTMLSinksNoLocalStorage(t *testing.T) {
	index, err := os.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`<script(?:\s+type="module")?\s*>`, `\sstyle=`, `\son[a-z]+=`, `<style`, `javascript:`} {
		if m := regexp.MustCompile(re).Find(index); m != nil {
			t.Errorf("index.html has %q", m)
		}
	}
	sinks := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(\s*['"](?:style|on)|\blocalStorage\s*[.[]|\.style\s*=`)
	scripts, err := filepath.Glob("static/*.js")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, path := range scripts {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sinks.FindAll(b, -1) {
			t.Errorf("%s uses %s", path, m)
		}
	}
}

// TestConfigJSON: /ui/config.json tells the page the deployment's rules, is never cached, and
// says oidc null without an identity provider.
func TestConfigJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  dashboard.Config
		want string
	}{
		{"defaults", dashboard.Config{}, `{"oidc":null,"allowedPermissions":null,"maxExpiryDays":null,"neverExpires":true}`},
		{"rules", dashboard.Config{AllowedPermissions: []string{"read", "upload"}, MaxExpiryDays: 90},
			`{"oidc":null,"allowedPermissions":["read","upload"],"maxExpiryDays":90,"neverExpires":false}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(mustHandler(t, tc.cfg), "GET", "/ui/config.json")
			if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("GET /ui/config.json: %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"))
			}
			if got := w.Body.String(); got != tc.want {
				t.Errorf("config %s, want %s", got, tc.want)
			}
		})
	}
}

// TestIssuerChecked: an issuer a CSP cannot name safely, or not served over https (but on
// loopback), is refused at start, and so is an issuer without a client id: a hostile value
// cannot widen the policy.
func TestIssuerChecked(t *testing.T) {
	for _, issuer := range []string{
		"http://idp.example.com", "ftp://idp.example.com", "https://idp.example.com/?x=1", "https://idp.example.com/#f",
		"https://idp.example.com; script-src *", "https://idp.example.com 'unsafe-inline'", "https://user@idp.example.com",
		"idp.example.com", "", "https://*.example.com",
	} {
		if _, err := dashboard.New(dashboard.Config{OIDC: &dashboard.OIDC{Issuer: issuer, ClientID: "c"}}); err == nil {
			t.Errorf("issuer %q accepted", issuer)
		}
	}
	if _, err := dashboard.New(dashboard.Config{OIDC: &dashboard.OIDC{Issuer: "https://idp.example.com"}}); err == nil {
		t.Error("an issuer without a client id accepted")
	}
	for _, issuer := range []string{"https://idp.example.com", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC", "http://127.0.0.1:5556/dex", "http://localhost:8080"} {
		if _, err := dashboard.New(dashboard.Config{OIDC: &dashboard.OIDC{Issuer: issuer, ClientID: "c"}}); err != nil {
			t.Errorf("issuer %q refused: %v", issuer, err)
		}
	}
}

// TestOIDCDiscovery: with an identity provider, config.json names it and, once its discovery
// document is read, its endpoints; the CSP lets the page connect to the issuer and to the token
// endpoint's origin, which may be another (Amazon Cognito's hosted domain). A document that
// names another issuer, or a provider that is down, adds nothing (discovery_internal_test.go:
// and the document is read again later).
func TestOIDCDiscovery(t *testing.T) {
	tokenHost := httptest.NewServer(http.NotFoundHandler())
	defer tokenHost.Close()
	var issuerURL string
	docIssuer := func() string { return issuerURL }
	up := true
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up || r.URL.Path != "/pool/.well-known/openid-configuration" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{
			"issuer": docIssuer(), "authorization_endpoint": issuerURL + "/authorize", "token_endpoint": tokenHost.URL + "/oauth2/token",
		})
	}))
	defer idp.Close()
	issuerURL = idp.URL + "/pool"

	t.Run("found", func(t *testing.T) {
		h := mustHandler(t, dashboard.Config{OIDC: &dashboard.OIDC{Issuer: issuerURL, ClientID: "spa"}})
		var cfg struct {
			OIDC map[string]string `json:"oidc"`
		}
		w := get(h, "GET", "/ui/config.json")
		if err := json.Unmarshal(w.Body.Bytes(), &cfg); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"issuer": issuerURL, "clientId": "spa", "scopes": "openid profile email",
			"authorizationEndpoint": issuerURL + "/authorize", "tokenEndpoint": tokenHost.URL + "/oauth2/token"}
		if !maps.Equal(cfg.OIDC, want) {
			t.Errorf("config oidc %v, want %v", cfg.OIDC, want)
		}
		csp := directives(get(h, "GET", "/").Header().Get("Content-Security-Policy"))
		if got, want := csp["connect-src"], []string{"'self'", idp.URL, tokenHost.URL}; !slices.Equal(got, want) {
			t.Errorf("connect-src %q, want %q", got, want)
		}
	})
	t.Run("another issuer", func(t *testing.T) {
		issuerURL = idp.URL + "/pool"
		h := mustHandler(t, dashboard.Config{OIDC: &dashboard.OIDC{Issuer: issuerURL, ClientID: "spa"}})
		real := issuerURL
		docIssuer = func() string { return "https://evil.example.com" }
		defer func() { docIssuer = func() string { return real } }()
		if body := get(h, "GET", "/ui/config.json").Body.String(); strings.Contains(body, "Endpoint") || strings.Contains(body, "evil") {
			t.Errorf("a document of another issuer was used: %s", body)
		}
		if got := directives(get(h, "GET", "/").Header().Get("Content-Security-Policy"))["connect-src"]; !slices.Equal(got, []string{"'self'", idp.URL}) {
			t.Errorf("connect-src %q", got)
		}
	})
	t.Run("down", func(t *testing.T) {
		up = false
		defer func() { up = true }()
		h := mustHandler(t, dashboard.Config{OIDC: &dashboard.OIDC{Issuer: issuerURL, ClientID: "spa", Scopes: "openid"}})
		if body := get(h, "GET", "/ui/config.json").Body.String(); strings.Contains(body, "Endpoint") || !strings.Contains(body, `"scopes":"openid"`) {
			t.Errorf("config while the provider is down: %s", body)
		}
		if got := directives(get(h, "GET", "/").Header().Get("Content-Security-Policy"))["connect-src"]; !slices.Equal(got, []string{"'self'", idp.URL}) {
			t.Errorf("connect-src while the provider is down %q", got)
		}
	})
}
