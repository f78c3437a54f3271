package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// endpoints are the identity provider's, from its discovery document.
type endpoints struct {
	Authorization, Token string
	tokenOrigin          string // for connect-src: the page posts the code there
}

// discovery reads the issuer's discovery document once, for the page's config and CSP: the token
// endpoint may live on another origin than the issuer (Amazon Cognito's hosted domain), and the
// page must be allowed to connect to it. A failure is retried at most every retryAfter; until a
// success the page reads the document itself and the CSP names the issuer's origin only.
type discovery struct {
	issuer     string
	client     *http.Client
	retryAfter time.Duration
	now        func() time.Time

	mu      sync.Mutex
	found   *endpoints
	retryAt time.Time
}

func newDiscovery(issuer string) *discovery {
	return &discovery{issuer: issuer, client: &http.Client{Timeout: 5 * time.Second}, retryAfter: 30 * time.Second, now: time.Now}
}

// get returns the endpoints, reading the document when they are not known yet and the last
// failure is older than retryAfter; nil when they are unknown.
func (d *discovery) get(ctx context.Context) *endpoints {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.found != nil || d.now().Before(d.retryAt) {
		return d.found
	}
	ep, err := d.fetch(ctx)
	if err != nil {
		d.retryAt = d.now().Add(d.retryAfter)
		return nil
	}
	d.found = ep
	return ep
}

// fetch reads and checks the discovery document: its issuer must be the configured one exactly
// (a document that names another issuer is not this provider's), and both endpoints URLs a CSP
// can name, https (http on loopback only).
func (d *discovery) fetch(ctx context.Context) (*endpoints, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(d.issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery: %s", resp.Status)
	}
	var doc struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return nil, err
	}
	if doc.Issuer != d.issuer {
		return nil, fmt.Errorf("discovery: issuer %q, want %q", doc.Issuer, d.issuer)
	}
	if _, err := originOf(doc.AuthorizationEndpoint); err != nil {
		return nil, fmt.Errorf("discovery: authorization_endpoint: %w", err)
	}
	tokenOrigin, err := originOf(doc.TokenEndpoint)
	if err != nil {
		return nil, fmt.Errorf("discovery: token_endpoint: %w", err)
	}
	return &endpoints{Authorization: doc.AuthorizationEndpoint, Token: doc.TokenEndpoint, tokenOrigin: tokenOrigin}, nil
}

// originOf is the origin of an endpoint URL, held to the rules of an issuer's (a query is fine
// for an endpoint, a fragment is not).
func originOf(endpoint string) (string, error) {
	base, _, _ := strings.Cut(endpoint, "?")
	return issuerOrigin(base)
}
