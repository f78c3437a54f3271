// Package dashboard serves the web page people use to manage their tokens: plain HTML, CSS and
// JavaScript modules embedded in the binary (no build step, nothing from a CDN), under a strict
// Content-Security-Policy, on the same origin as the API it calls. The local server mounts it
// next to the API (Register); on AWS one Lambda function serves it (functions/dashboard) on the
// HTTP API's RouteKeys.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

//go:embed static
var static embed.FS

// RouteKeys are the HTTP API routes of the dashboard's Lambda function, as template.yaml declares
// them (no authorizer: the page holds no data; it calls the API with the signed-in person's
// credential).
var RouteKeys = []string{"GET /", "GET /ui/{proxy+}"}

// Config is what the page needs to know about the deployment.
type Config struct {
	// OIDC enables "Sign in with single sign-on"; nil offers sign-in with a token only.
	OIDC *OIDC
	// AllowedPermissions offers these permissions as chips in the create form (ALLOWED_PERMISSIONS);
	// nil lets people type any.
	AllowedPermissions []string
	// MaxExpiryDays is the longest lifetime a token may have (MAX_EXPIRY_DAYS); 0 = no maximum,
	// and only then may a token never expire.
	MaxExpiryDays int
}

// OIDC is the identity provider the page signs people in with: authorization code with PKCE
// (S256), as a public client, redirecting back to the page's own origin + "/".
type OIDC struct {
	Issuer   string // the issuer URL, exactly as the id_token's iss claim has it
	ClientID string // the public client registered with the issuer
	Scopes   string // space-separated; DefaultScopes when empty
}

// DefaultScopes are the scopes the page asks for when OIDC.Scopes is empty.
const DefaultScopes = "openid profile email"

// configJSON is /ui/config.json.
type configJSON struct {
	OIDC               *oidcJSON `json:"oidc"`
	AllowedPermissions []string  `json:"allowedPermissions"`
	MaxExpiryDays      *int      `json:"maxExpiryDays"`
	NeverExpires       bool      `json:"neverExpires"` // "never" may be chosen as an expiry
}

type oidcJSON struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"clientId"`
	Scopes   string `json:"scopes"`
	// The issuer's endpoints, when the server could read its discovery document; otherwise the
	// page reads the document itself.
	AuthorizationEndpoint string `json:"authorizationEndpoint,omitempty"`
	TokenEndpoint         string `json:"tokenEndpoint,omitempty"`
}

// asset is one file as served: its content type, its bytes, their gzip, and an ETag.
type asset struct {
	contentType string
	raw, gz     []byte
	etag        string
}

// Handler serves the page: GET / (index.html), GET /ui/{file} and GET /ui/{version}/{file}
// (the embedded files; the versioned path, which index.html uses, may be cached for good), and
// GET /ui/config.json.
type Handler struct {
	assets  map[string]*asset // by name under /ui/, "index.html" for /
	version string            // of every embedded file together, in index.html's asset paths
	config  configJSON
	static  *asset // config.json when there is no identity provider to discover
	connect []string
	oidc    *discovery // nil without OIDC
}

// contentTypes are the types of the files the page is made of; a file of another kind is not
// embedded (New refuses it), so nothing is served with a guessed type.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
}

// New returns the dashboard's handler for cfg. Returns an error when cfg.OIDC is incomplete or
// its issuer is not an https URL (http only on a loopback address, for local tests).
func New(cfg Config) (*Handler, error) {
	c := configJSON{AllowedPermissions: cfg.AllowedPermissions, NeverExpires: cfg.MaxExpiryDays == 0}
	if cfg.MaxExpiryDays > 0 {
		c.MaxExpiryDays = &cfg.MaxExpiryDays
	}
	connect := []string{"'self'"}
	if o := cfg.OIDC; o != nil {
		origin, err := issuerOrigin(o.Issuer)
		if err != nil {
			return nil, err
		}
		if o.ClientID == "" {
			return nil, fmt.Errorf("dashboard: an OIDC issuer needs a client id")
		}
		scopes := o.Scopes
		if scopes == "" {
			scopes = DefaultScopes
		}
		c.OIDC = &oidcJSON{Issuer: o.Issuer, ClientID: o.ClientID, Scopes: scopes}
		connect = append(connect, origin)
	}
	h := &Handler{assets: map[string]*asset{}, config: c, connect: connect}
	if c.OIDC != nil {
		h.oidc = newDiscovery(c.OIDC.Issuer)
	}

	sum := sha256.New()
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("dashboard: %s has no content type", p)
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		fmt.Fprintf(sum, "%s %d\n", name, len(b))
		sum.Write(b)
		h.assets[name] = &asset{contentType: ct, raw: b}
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.version = base64.RawURLEncoding.EncodeToString(sum.Sum(nil))[:12]
	index, ok := h.assets["index.html"]
	if !ok {
		return nil, fmt.Errorf("dashboard: no index.html")
	}
	// index.html names its files under /ui/; it is served with their versioned paths, which
	// browsers may keep until the next version. The modules import each other relatively, so
	// they stay within the version they were loaded from.
	index.raw = bytes.ReplaceAll(index.raw, []byte(`"/ui/`), []byte(`"/ui/`+h.version+`/`))
	delete(h.assets, "config.json")
	for _, a := range h.assets {
		a.finish()
	}
	if h.oidc == nil {
		h.static = h.configAsset(nil)
	}
	return h, nil
}

// configAsset is /ui/config.json, with the identity provider's endpoints when they are known.
func (h *Handler) configAsset(ep *endpoints) *asset {
	c := h.config
	if c.OIDC != nil && ep != nil {
		o := *c.OIDC
		o.AuthorizationEndpoint, o.TokenEndpoint = ep.Authorization, ep.Token
		c.OIDC = &o
	}
	b, _ := json.Marshal(c) // plain strings, ints and bools: no error
	a := &asset{contentType: contentTypes[".json"], raw: b}
	a.finish()
	return a
}

// csp is the Content-Security-Policy of every answer. The page's scripts and styles come from
// this origin and from files only: no inline script or style, no eval; no one may frame it; it
// connects to the API (same origin) and, with OIDC, to the identity provider's issuer (discovery)
// and token endpoint origins only. Trusted Types with no policy: the page builds its DOM from
// elements and textContent, never from HTML strings, so any such sink is refused.
func (h *Handler) csp(ep *endpoints) string {
	connect := h.connect
	if ep != nil && !slices.Contains(connect, ep.tokenOrigin) {
		connect = append(slices.Clip(connect), ep.tokenOrigin)
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src " + strings.Join(connect, " ") + "; " +
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
		"require-trusted-types-for 'script'; trusted-types 'none'"
}

// finish computes the gzip and the ETag of a's bytes.
func (a *asset) finish() {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
	zw.Write(a.raw)
	zw.Close()
	a.gz = buf.Bytes()
	sum := sha256.Sum256(a.raw)
	a.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:])[:22] + `"`
}

// hostPort is a host (name, IPv4 or bracketed IPv6) with an optional port, as a CSP source.
var hostPort = regexp.MustCompile(`^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// issuerOrigin returns the origin of an OIDC issuer URL for connect-src, or an error when it is
// not https (or http on a loopback host), has a query or fragment, or a host a CSP cannot name.
func issuerOrigin(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || !hostPort.MatchString(u.Host) {
		return "", fmt.Errorf("dashboard: OIDC issuer %q is not an https URL", issuer)
	}
	loopback := u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1"
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
		return "", fmt.Errorf("dashboard: OIDC issuer %q is not an https URL", issuer)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Register mounts h on mux for the local server: GET / exactly, and everything under /ui/.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("GET /{$}", h)
	mux.Handle("GET /ui/", h)
}

// Version is the version of the embedded files, part of the asset paths index.html names.
func (h *Handler) Version() string { return h.version }

// ServeHTTP answers GET (and HEAD) of /, /ui/config.json, /ui/{file} and /ui/{version}/{file};
// anything else is 404 (405 for another method).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ep *endpoints
	if h.oidc != nil && (r.URL.Path == "/" || r.URL.Path == "/ui/config.json") {
		ep = h.oidc.get(r.Context())
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp(ep))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	// The sign-in callback URL carries an authorization code: never send it on as a referrer.
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	var a *asset
	cache := "no-cache" // revalidate with the ETag
	switch p := r.URL.Path; {
	case p == "/":
		a = h.assets["index.html"]
	case p == "/ui/config.json":
		a, cache = h.static, "no-store"
		if a == nil {
			a = h.configAsset(ep)
		}
	case strings.HasPrefix(p, "/ui/"+h.version+"/"):
		a = h.assets[strings.TrimPrefix(p, "/ui/"+h.version+"/")]
		cache = "public, max-age=31536000, immutable"
	case strings.HasPrefix(p, "/ui/"):
		a = h.assets[strings.TrimPrefix(p, "/ui/")]
	}
	if a == nil || r.URL.Path == "/ui/index.html" {
		http.Error(w, "Not found.", http.StatusNotFound)
		return
	}
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", cache)
	hd.Set("Vary", "Accept-Encoding")
	if cache != "no-store" {
		hd.Set("ETag", a.etag)
		if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, a.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	body := a.raw
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body = a.gz
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

// etagMatches reports whether an If-None-Match header names etag (or is *).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip (not with q=0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.TrimSpace(coding) != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
