// Package oidc signs people in to the management API with OpenID Connect: a person presents an
// ID token (a JWT) of the configured issuer as "Authorization: Bearer <jwt>", and Verify returns
// them as a token.Principal: manage for the owner a claim names, admin too when an admin claim
// holds a configured value. The local server and the management authorizer on Lambda both call
// it (pkg/authorizer), so a person is judged by one piece of code everywhere.
//
// JOSE is go-jose (github.com/go-jose/go-jose/v4, the library go-oidc and zitadel/oidc build
// on) for parsing the JWS, the JWK set and the signature; the rules are here, in Verify, each
// named. go-oidc's own verifier is not used because it allows 5 minutes of clock skew on nbf,
// does not check iat, refetches the key set on every unknown key id without a limit, and does
// its discovery when it is built (a Lambda init would fail while the issuer is down).
//
// Keys come only from the issuer's JWK set (its discovery document's jwks_uri), never from the
// token (jwk, jku, x5u and x5c headers are ignored). The set is cached for KeysTTL and fetched
// again when a token names a key id it does not hold, at most once per RefetchInterval, so that
// made-up key ids cannot make an instance hammer the issuer. When the keys cannot be had (the
// issuer is down, or answers nonsense) Verify returns an error other than EUNAUTHORIZED, which
// every caller answers as a failure: never an allow.
package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/apitokens/apitokens/pkg/token"
)

// Algorithms a sign-in token may be signed with: asymmetric ones only. "none" and the HMAC
// family (HS256, ...) are refused before any key is looked up, so an HS256 token "signed" with
// the bytes of a public key from the JWK set (algorithm confusion) never verifies.
var Algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// Defaults of Config.
const (
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway                 = 60 * time.Second
	DefaultOwnerClaim      = "sub"
	DefaultKeysTTL         = 15 * time.Minute
	DefaultRefetchInterval = 10 * time.Second
	DefaultFetchTimeout    = 3 * time.Second
)

// maxDocumentBytes bounds the discovery document and the JWK set read from the issuer.
const maxDocumentBytes = 1 << 20

// ErrUnavailable is wrapped by the errors Verify returns when the issuer's keys cannot be had:
// its discovery document or JWK set could not be fetched, or made no sense.
var ErrUnavailable = errors.New("sign-in keys unavailable")

// Config says whom to trust.
type Config struct {
	Issuer   string // the "iss" of the tokens, exactly; its discovery document is Issuer + "/.well-known/openid-configuration"
	Audience string // an "aud" the tokens must hold: the dashboard's client id
	// OwnerClaim names the claim whose value is the person's owner (DefaultOwnerClaim). Its
	// value must be a string that token.ValidOwner accepts.
	OwnerClaim string
	// AdminClaim and AdminValue make a person an admin when the claim is that string, or an
	// array of strings holding it (e.g. cognito:groups and apitokens-admin). Both or neither.
	AdminClaim, AdminValue string

	HTTPClient      *http.Client     // nil: a client with DefaultFetchTimeout
	KeysTTL         time.Duration    // how long a fetched key set is trusted (DefaultKeysTTL)
	RefetchInterval time.Duration    // least time between two fetches (DefaultRefetchInterval)
	Now             func() time.Time // nil: time.Now
}

// Verifier checks sign-in tokens of one issuer. It is safe for concurrent use; keep one per
// process (a Lambda instance), so that its key set is cached across requests.
type Verifier struct {
	cfg Config

	fetching sync.Mutex // held during a fetch: concurrent requests wait for one fetch

	mu        sync.Mutex
	jwksURI   string // from the discovery document; "" until fetched (or after a failed fetch)
	keys      []jose.JSONWebKey
	fetchedAt time.Time // the last successful fetch; zero: never
	triedAt   time.Time // the last fetch, successful or not; zero: never
	fetchErr  error     // the last fetch's error
	fetches   int       // fetches made, for tests
}

// New returns a Verifier for cfg, with defaults for what cfg leaves zero. It fetches nothing:
// the issuer's keys are fetched on the first Verify, so that a process starts while the issuer
// is down. Returns an error when the issuer is not an https URL (http only on a loopback host),
// or the audience, or only one of AdminClaim and AdminValue, is missing.
func New(cfg Config) (*Verifier, error) {
	if err := CheckIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.Audience == "" {
		return nil, errors.New("oidc: an audience is required")
	}
	if (cfg.AdminClaim == "") != (cfg.AdminValue == "") {
		return nil, errors.New("oidc: give both the admin claim and its value, or neither")
	}
	if cfg.OwnerClaim == "" {
		cfg.OwnerClaim = DefaultOwnerClaim
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultFetchTimeout}
	}
	if cfg.KeysTTL <= 0 {
		cfg.KeysTTL = DefaultKeysTTL
	}
	if cfg.RefetchInterval <= 0 {
		cfg.RefetchInterval = DefaultRefetchInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg}, nil
}

// CheckIssuer returns an error unless issuer is an absolute https URL without query or fragment,
// or an http one on a loopback host (a provider on the same machine, as in tests).
func CheckIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || !secureOrLoopback(u) {
		return fmt.Errorf("issuer %q: want an https URL such as https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123 (http only on 127.0.0.1, ::1 or localhost)", issuer)
	}
	return nil
}

func secureOrLoopback(u *url.URL) bool {
	if u.Scheme == "https" {
		return true
	}
	if u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// Issuer returns the issuer the verifier trusts.
func (v *Verifier) Issuer() string { return v.cfg.Issuer }

// Fetches returns how many times the verifier has fetched the issuer's keys (each fetch is a
// request for the JWK set, preceded by one for the discovery document when its jwks_uri is not
// known yet).
func (v *Verifier) Fetches() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fetches
}

// claims are the registered claims Verify reads, besides the owner and admin claims.
type claims struct {
	jwt.Claims
	AuthorizedParty string `json:"azp"`
	TokenUse        string `json:"token_use"` // Amazon Cognito: "id" or "access"
}

// Verify checks a sign-in token and returns the person it signs in, and when the token expires.
// The rules, in order: a JWS in compact form of at most token.MaxJWTLen bytes, signed with one of
// Algorithms; no "typ" of an access token (at+jwt); a signature by a key of the issuer's JWK set
// whose "kid" (when the token names one) and "alg" (when the key names one) match; "iss" equal to
// the issuer; "aud" holding the audience, and "azp", when present, equal to it; "exp" present and
// not past, "nbf" not ahead, "iat" present and not ahead, each by more than Leeway; a Cognito
// "token_use", when present, "id"; a "sub"; an owner claim that token.ValidOwner accepts.
//
// Returns EUNAUTHORIZED naming the broken rule (never quoting the token); an error wrapping
// ErrUnavailable when the issuer's keys cannot be fetched. The person's Permissions are manage,
// and admin too when the admin claim holds the admin value; TokenID is "" and Subject is "sub".
func (v *Verifier) Verify(ctx context.Context, raw string) (token.Principal, time.Time, error) {
	if len(raw) > token.MaxJWTLen {
		return refuse("longer than %d bytes", token.MaxJWTLen)
	}
	tok, err := jwt.ParseSigned(raw, Algorithms)
	if err != nil || len(tok.Headers) != 1 {
		return refuse("not a JWT signed with an asymmetric algorithm (%s)", algorithmNames())
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt") {
		return refuse("an access token; sign in with an ID token")
	}
	keys, err := v.keysFor(ctx, h.KeyID)
	if err != nil {
		return token.Principal{}, time.Time{}, err
	}
	if len(keys) == 0 {
		return refuse("signed with a key the issuer does not publish")
	}
	var c claims
	var all map[string]any
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if tok.Claims(k.Key, &c, &all) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return refuse("its signature does not verify with the issuer's keys")
	}

	now := v.cfg.Now()
	switch {
	case c.Issuer != v.cfg.Issuer:
		return refuse("issued by another issuer")
	case !c.Audience.Contains(v.cfg.Audience):
		return refuse("issued for another audience")
	case c.AuthorizedParty != "" && c.AuthorizedParty != v.cfg.Audience:
		return refuse("issued to another client (azp)")
	case c.Expiry == nil:
		return refuse("it has no expiry (exp)")
	case !now.Before(c.Expiry.Time().Add(Leeway)):
		return refuse("expired")
	case c.NotBefore != nil && now.Add(Leeway).Before(c.NotBefore.Time()):
		return refuse("not valid yet (nbf)")
	case c.IssuedAt == nil:
		return refuse("it has no issue time (iat)")
	case now.Add(Leeway).Before(c.IssuedAt.Time()):
		return refuse("issued in the future (iat)")
	case c.TokenUse != "" && c.TokenUse != "id":
		return refuse("an access token; sign in with an ID token")
	case c.Subject == "":
		return refuse("it has no subject (sub)")
	}
	owner, _ := all[v.cfg.OwnerClaim].(string)
	if !token.ValidOwner(owner) {
		return refuse("its %s claim is not an owner name (%s)", v.cfg.OwnerClaim, token.OwnerRule)
	}
	p := token.Principal{Owner: owner, Subject: c.Subject, Permissions: []string{token.PermManage}}
	if v.cfg.AdminClaim != "" && holds(all[v.cfg.AdminClaim], v.cfg.AdminValue) {
		p.Permissions = []string{token.PermAdmin, token.PermManage}
	}
	return p, c.Expiry.Time(), nil
}

func refuse(format string, args ...any) (token.Principal, time.Time, error) {
	return token.Principal{}, time.Time{}, token.Errorf(token.EUNAUTHORIZED, "Sign-in token refused: "+format+".", args...)
}

func algorithmNames() string {
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// holds reports whether a claim's value is want, or an array of strings holding it.
func holds(claim any, want string) bool {
	switch c := claim.(type) {
	case string:
		return c == want
	case []any:
		return slices.ContainsFunc(c, func(x any) bool { s, ok := x.(string); return ok && s == want })
	}
	return false
}

// keysFor returns the keys of the issuer a token with key id kid may be signed with: those with
// that id, or every key when kid is "". The key set is fetched when it has never been, when it
// is older than KeysTTL, or when it holds no key with that id; fetches are at least
// RefetchInterval apart. Returns an error wrapping ErrUnavailable when the set is due and cannot
// be fetched, and no keys (no error) for a key id that is still unknown.
func (v *Verifier) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	v.mu.Lock()
	now := v.cfg.Now()
	fresh := !v.fetchedAt.IsZero() && now.Sub(v.fetchedAt) < v.cfg.KeysTTL
	keys := v.match(kid)
	v.mu.Unlock()
	if fresh && len(keys) > 0 {
		return keys, nil
	}
	// When the set is fresh but lacks the key and the issuer cannot be asked, the key may be a
	// new one: that is an outage too, not a bad token.
	if err := v.refresh(ctx); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.match(kid), nil
}

// match returns the cached keys with id kid (every key for ""). v.mu must be held.
func (v *Verifier) match(kid string) []jose.JSONWebKey {
	if kid == "" {
		return v.keys
	}
	var out []jose.JSONWebKey
	for _, k := range v.keys {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// refresh fetches the key set unless a fetch happened less than RefetchInterval ago, in which
// case it returns that fetch's error. Concurrent callers wait for one fetch.
func (v *Verifier) refresh(ctx context.Context) error {
	v.fetching.Lock()
	defer v.fetching.Unlock()
	v.mu.Lock()
	now := v.cfg.Now()
	if !v.triedAt.IsZero() && now.Sub(v.triedAt) < v.cfg.RefetchInterval {
		err := v.fetchErr
		v.mu.Unlock()
		return err
	}
	v.triedAt = now
	v.fetches++
	jwksURI := v.jwksURI
	v.mu.Unlock()

	// One caller's cancelled request must not fail the fetch the others wait for.
	ctx = context.WithoutCancel(ctx)
	keys, jwksURI, err := v.fetch(ctx, jwksURI)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fetchErr = err
	if err != nil {
		v.jwksURI = "" // discover again next time: the issuer may have moved its keys
		return err
	}
	v.jwksURI, v.keys, v.fetchedAt = jwksURI, keys, now
	return nil
}

// fetch reads the issuer's discovery document (unless jwksURI is known) and its JWK set, and
// returns the set's public signing keys.
func (v *Verifier) fetch(ctx context.Context, jwksURI string) ([]jose.JSONWebKey, string, error) {
	if jwksURI == "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := v.getJSON(ctx, DiscoveryURL(v.cfg.Issuer), &doc); err != nil {
			return nil, "", err
		}
		if doc.Issuer != v.cfg.Issuer {
			return nil, "", fmt.Errorf("%w: the discovery document names the issuer %q, not %q", ErrUnavailable, doc.Issuer, v.cfg.Issuer)
		}
		u, err := url.Parse(doc.JWKSURI)
		if err != nil || u.Host == "" || !secureOrLoopback(u) {
			return nil, "", fmt.Errorf("%w: the discovery document's jwks_uri %q is not an https URL", ErrUnavailable, doc.JWKSURI)
		}
		jwksURI = doc.JWKSURI
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := v.getJSON(ctx, jwksURI, &set); err != nil {
		return nil, "", err
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		// A key of a type this library does not know, a symmetric or a private key, or one for
		// encryption is left out, not a reason to refuse the whole set.
		if json.Unmarshal(raw, &k) != nil || !k.Valid() || !k.IsPublic() || k.Use != "" && k.Use != "sig" {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, "", fmt.Errorf("%w: the JWK set at %s holds no public signing key", ErrUnavailable, jwksURI)
	}
	return keys, jwksURI, nil
}

// DiscoveryURL is where the issuer's OpenID Connect discovery document is.
func DiscoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

func (v *Verifier) getJSON(ctx context.Context, u string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrUnavailable, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s: %s", ErrUnavailable, u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrUnavailable, u, err)
	}
	if len(b) > maxDocumentBytes {
		return fmt.Errorf("%w: GET %s: larger than %d bytes", ErrUnavailable, u, maxDocumentBytes)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrUnavailable, u, err)
	}
	return nil
}
