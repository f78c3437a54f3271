package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"

	"github.com/apitokens/apitokens/pkg/token"
)

// The headers of GitHub's secret scanning partner program: the signature of the raw body
// (base64 of an ASN.1 ECDSA P-256 SHA-256 signature) and the id of the key that made it.
const (
	HeaderLeakKeyID     = "Github-Public-Key-Identifier"
	HeaderLeakSignature = "Github-Public-Key-Signature"
)

// MaxLeakBodyBytes is the largest leak report accepted; larger ones answer 413. It holds
// token.MaxLeakReports matches with room to spare.
const MaxLeakBodyBytes = 1 << 20

// ReportVerifier checks that a leak report comes from the partner that sends them.
type ReportVerifier interface {
	// Verify checks that signature is the partner's signature of body by its key keyID. Returns
	// EUNAUTHORIZED when either is missing or malformed, the key is unknown or the signature
	// does not match; another error when the partner's keys could not be had (answered 500, so
	// the partner retries).
	Verify(ctx context.Context, body []byte, keyID, signature string) error
}

// leakMatch is one element of a report of GitHub's secret scanning: a JSON array of them. Other
// members are ignored: the format is GitHub's, signed by GitHub, and may grow.
type leakMatch struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// LeakFeedback is one element of the answer to POST /leaks, in the feedback format of GitHub's
// partner program, in the order of the report. The token is given by its SHA-256 (hex), the form
// GitHub accepts besides the raw token, so that no answer carries a secret.
type LeakFeedback struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"` // "true_positive": a token of this deployment; "false_positive": anything else
}

// Feedback labels.
const (
	labelTrue  = "true_positive"
	labelFalse = "false_positive"
)

var (
	errLeakTooLarge = token.Errorf(token.ETOOLARGE, "Report is larger than 1 MiB.")
	errLeakBody     = token.Errorf(token.EINVALID, "Request body must be a JSON array of objects with a string token (and type, url, source).")
	errNoVerifier   = token.Errorf(token.EUNAUTHORIZED, "Leak reports are not accepted here: no partner keys are configured.")
)

// leaks answers POST /leaks, the endpoint GitHub's secret scanning calls with tokens it found in
// public: the signature is checked on the raw body before anything is parsed, then each token of
// this deployment is revoked or disabled (token.Service.ReportLeaks), and the answer labels
// each match. It logs counts only, never a token or the body.
func (a *API) leaks(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxLeakBodyBytes))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			a.fail(w, r, errLeakTooLarge)
			return
		}
		a.fail(w, r, token.Errorf(token.EINVALID, "Request body could not be read."))
		return
	}
	if a.Reports == nil {
		a.fail(w, r, errNoVerifier)
		return
	}
	if err := a.Reports.Verify(r.Context(), body, r.Header.Get(HeaderLeakKeyID), r.Header.Get(HeaderLeakSignature)); err != nil {
		a.fail(w, r, err)
		return
	}
	matches, err := decodeLeakReport(body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	reports := make([]token.LeakReport, len(matches))
	for i, m := range matches {
		reports[i] = token.LeakReport{Token: m.Token, Type: m.Type, URL: m.URL, Source: m.Source}
	}
	ip, requestID := a.origin(r)
	by := token.Reporter{Name: token.ReporterGitHub, RequestID: requestID}
	if ip.IsValid() {
		by.SourceIP = ip.String()
	}
	confirmed, err := a.Service.ReportLeaks(r.Context(), by, reports)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	feedback := make([]LeakFeedback, len(matches))
	n := 0
	for i, m := range matches {
		sum := sha256.Sum256([]byte(m.Token))
		feedback[i] = LeakFeedback{TokenHash: hex.EncodeToString(sum[:]), TokenType: m.Type, Label: labelFalse}
		if confirmed[i] {
			feedback[i].Label = labelTrue
			n++
		}
	}
	a.logger().InfoContext(r.Context(), "leak report", "reporter", token.ReporterGitHub, "matches", len(matches), "truePositives", n)
	writeJSON(w, http.StatusOK, feedback)
}

// decodeLeakReport reads a report: one JSON array of at most token.MaxLeakReports objects, each
// with a string token. Errors never quote the body.
func decodeLeakReport(body []byte) ([]leakMatch, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		return nil, errLeakBody
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw []json.RawMessage
	if err := dec.Decode(&raw); err != nil || dec.More() {
		return nil, errLeakBody
	}
	if len(raw) > token.MaxLeakReports {
		return nil, token.Errorf(token.ETOOLARGE, "A report may list at most %d tokens.", token.MaxLeakReports)
	}
	matches := make([]leakMatch, len(raw))
	for i, el := range raw {
		var m struct {
			Token *string `json:"token"`
			leakMatch
		}
		if len(el) == 0 || el[0] != '{' || json.Unmarshal(el, &m) != nil || m.Token == nil {
			return nil, errLeakBody
		}
		matches[i] = m.leakMatch
		matches[i].Token = *m.Token
	}
	return matches, nil
}

type revokeByValueRequest struct {
	Token string `json:"token"`
}

// RevokeByValueResponse is the answer of POST /revoke: always the same, whatever the token was.
type RevokeByValueResponse struct {
	Status string `json:"status"` // "received"
}

// revokeByValue answers POST /revoke: whoever holds a token revokes it by presenting it, with no
// other credential (token.Service.RevokeByValue). Every token, valid or not, gets the same 200;
// only a body that is not {"token": "<non-empty string>"} (400) and an address over its rate
// limit (429) are told apart, and neither depends on the token.
func (a *API) revokeByValue(w http.ResponseWriter, r *http.Request) {
	var req revokeByValueRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		a.fail(w, r, err)
		return
	}
	if strings.TrimSpace(req.Token) == "" {
		a.fail(w, r, token.Errorf(token.EINVALID, "token: required"))
		return
	}
	ip, requestID := a.origin(r)
	if err := a.Service.RevokeByValue(r.Context(), token.RevokeByValueInput{Token: req.Token, SourceIP: ip, RequestID: requestID}); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, RevokeByValueResponse{Status: "received"})
}

// origin is the caller's address and request id (API.Origin).
func (a *API) origin(r *http.Request) (netip.Addr, string) {
	if a.Origin != nil {
		return a.Origin(r)
	}
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ip = ap.Addr()
	} else if addr, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		ip = addr
	}
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 128 || strings.ContainsFunc(id, func(c rune) bool { return c <= ' ' || c > '~' }) {
		id = token.NewID()
	}
	return ip, id
}
