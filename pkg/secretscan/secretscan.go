// Package secretscan checks the signatures of GitHub's secret scanning partner program: GitHub
// signs the raw body of each report it sends (POST /leaks) with ECDSA on P-256 over SHA-256, puts
// the base64 of the ASN.1 signature in the Github-Public-Key-Signature header and the id of the
// key in Github-Public-Key-Identifier, and publishes its keys as
//
//	{"public_keys": [{"key_identifier": "...", "key": "-----BEGIN PUBLIC KEY-----...", "is_current": true}]}
//
// at https://api.github.com/meta/public_keys/secret_scanning. A Verifier fetches that list when
// it first needs it, keeps it in memory, revalidates it (with its ETag) once it is MaxAge old, and
// fetches it again when a report names a key it does not know (a rotation), at most once per
// RefetchInterval, so forged key ids cannot make it hammer GitHub.
package secretscan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// DefaultKeysURL is where GitHub publishes the keys of its secret scanning.
const DefaultKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

// Defaults of Config.
const (
	DefaultRefetchInterval = 30 * time.Second
	DefaultMaxAge          = time.Hour
	fetchTimeout           = 5 * time.Second
	maxKeysBytes           = 1 << 20
	maxKeyIDLen            = 256
	maxSignatureLen        = 512 // base64 of an ASN.1 P-256 signature is under 100 characters
)

// Config configures a Verifier. The zero value of every field means its default.
type Config struct {
	KeysURL         string        // the key list (default DefaultKeysURL); http or https
	Client          *http.Client  // default: a client with a 5-second timeout
	RefetchInterval time.Duration // least time between two fetches of the list (default 30 s)
	MaxAge          time.Duration // the list is revalidated before use once this old (default 1 h)
	Now             func() time.Time
	Logger          *slog.Logger // nil: slog.Default()
}

// Verifier checks report signatures against the keys at Config.KeysURL. It is safe for
// concurrent use.
type Verifier struct {
	cfg Config

	mu        sync.Mutex
	keys      map[string]*ecdsa.PublicKey
	etag      string
	fetchedAt time.Time // when the list in keys was last fetched or revalidated
	triedAt   time.Time // when a fetch was last attempted
	lastErr   error     // the error of that attempt; nil when it succeeded
}

// New returns a Verifier. Returns an error when cfg.KeysURL is not an absolute http or https URL.
func New(cfg Config) (*Verifier, error) {
	if cfg.KeysURL == "" {
		cfg.KeysURL = DefaultKeysURL
	}
	if u, err := url.Parse(cfg.KeysURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("secretscan: keys URL %q: want an absolute http or https URL", cfg.KeysURL)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: fetchTimeout}
	}
	if cfg.RefetchInterval <= 0 {
		cfg.RefetchInterval = DefaultRefetchInterval
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Verifier{cfg: cfg}, nil
}

var (
	errUnsigned     = token.Errorf(token.EUNAUTHORIZED, "Missing Github-Public-Key-Identifier or Github-Public-Key-Signature header.")
	errBadSignature = token.Errorf(token.EUNAUTHORIZED, "Signature does not match the body.")
	errUnknownKey   = token.Errorf(token.EUNAUTHORIZED, "Unknown signing key.")
)

// Verify checks that signature (base64 of an ASN.1 DER ECDSA signature) is the signature of the
// SHA-256 of body by the published P-256 key keyID. Returns EUNAUTHORIZED when keyID or signature
// is missing or malformed, the key is not in the list (fetched again first, unless it was fetched
// less than RefetchInterval ago), or the signature does not match; a plain error when the list
// is needed and cannot be fetched.
func (v *Verifier) Verify(ctx context.Context, body []byte, keyID, signature string) error {
	if keyID == "" || signature == "" {
		return errUnsigned
	}
	if len(keyID) > maxKeyIDLen || len(signature) > maxSignatureLen {
		return errBadSignature
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return errBadSignature
	}
	key, err := v.key(ctx, keyID)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(key, digest[:], sig) {
		return errBadSignature
	}
	return nil
}

// key returns the key keyID, fetching the list first when it is older than MaxAge or lacks the
// key, unless a fetch was attempted less than RefetchInterval ago. A failed revalidation keeps
// the list it has: GitHub's endpoint being down must not refuse reports signed by known keys.
func (v *Verifier) key(ctx context.Context, keyID string) (*ecdsa.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.cfg.Now()
	k, known := v.keys[keyID]
	stale := v.keys == nil || now.Sub(v.fetchedAt) >= v.cfg.MaxAge
	if known && !stale {
		return k, nil
	}
	if v.triedAt.IsZero() || now.Sub(v.triedAt) >= v.cfg.RefetchInterval {
		v.triedAt = now
		v.lastErr = v.fetch(ctx, now)
		if err := v.lastErr; err != nil {
			if known {
				v.cfg.Logger.WarnContext(ctx, "secret scanning keys: revalidation failed; keeping the keys held", "error", err)
				return k, nil
			}
			return nil, err
		}
		k, known = v.keys[keyID]
	}
	if v.keys == nil {
		return nil, fmt.Errorf("secretscan: no keys yet; the last fetch failed: %w", v.lastErr)
	}
	if !known {
		return nil, errUnknownKey
	}
	return k, nil
}

// keyList is the document at KeysURL.
type keyList struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// fetch replaces the keys with the list at KeysURL, or keeps them on a 304 to its If-None-Match.
// Entries that are not PEM P-256 public keys are skipped; a list with none is an error.
func (v *Verifier) fetch(ctx context.Context, now time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.KeysURL, nil)
	if err != nil {
		return fmt.Errorf("secretscan: fetch keys: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "apitokens")
	if v.etag != "" && v.keys != nil {
		req.Header.Set("If-None-Match", v.etag)
	}
	resp, err := v.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("secretscan: fetch keys: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && v.keys != nil:
		v.fetchedAt = now
		return nil
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("secretscan: fetch keys from %s: status %d", v.cfg.KeysURL, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysBytes+1))
	if err != nil {
		return fmt.Errorf("secretscan: fetch keys: %w", err)
	}
	if len(b) > maxKeysBytes {
		return fmt.Errorf("secretscan: keys from %s: larger than %d bytes", v.cfg.KeysURL, maxKeysBytes)
	}
	var list keyList
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("secretscan: keys from %s: %w", v.cfg.KeysURL, err)
	}
	keys := map[string]*ecdsa.PublicKey{}
	skipped := 0
	for _, e := range list.PublicKeys {
		k, err := parseKey(e.Key)
		if err != nil || e.KeyIdentifier == "" {
			skipped++
			continue
		}
		keys[e.KeyIdentifier] = k
	}
	if len(keys) == 0 {
		return fmt.Errorf("secretscan: keys from %s: no P-256 public key among %d entries", v.cfg.KeysURL, len(list.PublicKeys))
	}
	if skipped > 0 {
		v.cfg.Logger.WarnContext(ctx, "secret scanning keys: entries skipped", "skipped", skipped, "kept", len(keys))
	}
	v.keys, v.etag, v.fetchedAt = keys, resp.Header.Get("ETag"), now
	return nil
}

// parseKey reads a PEM "PUBLIC KEY" (PKIX) holding an ECDSA P-256 key.
func parseKey(s string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return k, nil
}
