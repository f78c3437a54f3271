package token

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Leaked secrets: a secret-scanning partner (GitHub) reports tokens it found in public
// (ReportLeaks, POST /leaks), and whoever holds a token may revoke it by its value
// (RevokeByValue, POST /revoke). Either way the token is verified as every presented token is
// (Judge: this deployment's prefix, the checksum, then the secret's hash in constant time), so a
// report can only act on tokens whose secret it holds.

// Reporters, as audit events name them (Report.Reporter).
const (
	ReporterGitHub = "github-secret-scanning"
	ReporterSelf   = "self-revocation"
)

// Limits of leak handling.
const (
	// MaxLeakReports is the most tokens one report may list; GitHub sends far fewer per request.
	MaxLeakReports = 1000
	// MaxReportText bounds each text of a Report, in bytes; longer texts are cut.
	MaxReportText = 2048
	// DefaultSelfRevokeLimit is how many POST /revoke calls an address may make per minute.
	DefaultSelfRevokeLimit = 10
	// leakWriters bounds the writes a report runs at once: one TransactWriteItems per token.
	leakWriters = 8
	// decoyID is looked up for a malformed token, so that POST /revoke reads the store whatever
	// it is given. No token has it: ids come from crypto/rand.
	decoyID = "0000000000000000"
)

// LeakAction is what a confirmed leak report does to a token.
type LeakAction string

// Leak actions (Config.LeakAction).
const (
	LeakRevoke  LeakAction = "revoke"  // revoke the token for good
	LeakDisable LeakAction = "disable" // disable it: its owner may rotate it and enable it again
)

// Pattern returns the regular expression (RE2, as GitHub's secret scanning takes it) that
// matches the tokens of a deployment with the given prefix: the prefix, an optional environment
// label and the 65 base62 characters of id, secret and checksum. Tokens of other deployments
// (other prefixes) do not match.
func Pattern(prefix string) string {
	return prefix + "_(?:[a-z0-9]{1," + strconv.Itoa(maxPrefixLen) + "}_)?[0-9A-Za-z]{" + strconv.Itoa(bodyLen) + "}"
}

// LeakReport is one token a secret-scanning partner found in public.
type LeakReport struct {
	Token  string // the match, as found
	Type   string // the partner's name for the kind of secret
	URL    string // where it was found; may be ""
	Source string // what it was found in (GitHub: commit, content, issue_comment, npm, ...)
}

// Reporter is who sent a leak report, for the audit trail.
type Reporter struct {
	Name      string // ReporterGitHub
	SourceIP  string // its address; "" when unknown
	RequestID string // the request; "" when unknown
}

// ReportLeaks handles one report of tokens found in public and returns, for each report in
// order, whether it is a token of this deployment (a true positive): it parses with the
// deployment's prefix and checksum, the token exists and is not gone, and the reported secret
// is its current secret, or its previous one while the rotation's grace period lasts, with its
// environment label. Each confirmed token that is not revoked yet (nor disabled, under
// LeakDisable) is revoked or disabled (Config.LeakAction), with one audit event naming the
// reporter, the URL and the source of its first report in the batch; a token already revoked or
// disabled is confirmed and left alone, so a repeated report changes nothing. Anything else (a
// malformed token, another deployment's, a wrong secret) is a false positive and changes
// nothing.
//
// Cost: one Store.FindTokens of the distinct ids (on DynamoDB one BatchGetItem per 100), then one
// UpdateToken per token acted on (one TransactWriteItems with its audit event), leakWriters at a
// time; a write that lost a race with another change reads its token again (one more
// FindTokens) and retries once. Returns ETOOLARGE for more than MaxLeakReports reports, or the
// first store error (tokens already acted on stay so; repeating the report completes it).
func (s *Service) ReportLeaks(ctx context.Context, by Reporter, reports []LeakReport) ([]bool, error) {
	if len(reports) > MaxLeakReports {
		return nil, Errorf(ETOOLARGE, "A report may list at most %d tokens.", MaxLeakReports)
	}
	parsed := make([]Parsed, len(reports))
	valid := make([]bool, len(reports))
	var ids []string
	for i, r := range reports {
		if parsed[i], valid[i] = Parse(s.cfg.Prefix, r.Token); valid[i] {
			ids = append(ids, parsed[i].ID)
		}
	}
	confirmed := make([]bool, len(reports))
	if len(ids) == 0 {
		return confirmed, nil
	}
	found, err := s.store.FindTokens(ctx, ids)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	first := map[string]int{} // token id -> its first confirmed report
	for i := range reports {
		t := found[parsed[i].ID]
		if !valid[i] || t == nil || Judge(t, parsed[i], now).Token == nil {
			continue
		}
		confirmed[i] = true
		if _, ok := first[t.ID]; !ok {
			first[t.ID] = i
		}
	}

	caller := Principal{SourceIP: by.SourceIP, RequestID: by.RequestID}
	action := ActionLeakRevoked
	if s.cfg.LeakAction == LeakDisable {
		action = ActionLeakDisabled
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		slots    = make(chan struct{}, leakWriters)
	)
	for _, i := range slices.Sorted(maps.Values(first)) {
		t, r := found[parsed[i].ID], reports[i]
		if s.settled(t, s.cfg.LeakAction) {
			continue
		}
		report := &Report{Reporter: by.Name, URL: cleanText(r.URL), Source: cleanText(r.Source), Type: cleanText(r.Type)}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := s.retire(ctx, t, caller, report, s.cfg.LeakAction, action, s.findOne); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return confirmed, nil
}

// RevokeByValueInput is a token presented for revocation by whoever holds it.
type RevokeByValueInput struct {
	Token     string     // the plaintext; surrounding white space is ignored
	SourceIP  netip.Addr // the caller's address; the zero Addr when unknown (all such callers share one limit)
	RequestID string     // the request, for the audit trail; "" when unknown
}

// RevokeByValue revokes the token in.Token for whoever holds it: presenting its secret is the
// proof. It succeeds alike whether the token existed and was revoked, was revoked already, is
// malformed, unknown or of another deployment, or carries a wrong secret, so that the answer
// tells the caller nothing; and it reads the store in each case (a malformed token looks up an
// id no token has), so the cost differs only by the write of an actual revoke. The revoke's
// audit event names the token itself as the actor and Report{Reporter: ReporterSelf}.
//
// Each address may call it Config.SelfRevokeLimit times a minute (an IPv6 address counts with
// its /64): one Store.CountRequest before anything else. Returns ERATELIMITED, carrying the
// window's state, when the address is over it, or a store error.
func (s *Service) RevokeByValue(ctx context.Context, in RevokeByValueInput) error {
	now := s.cfg.Now().UTC()
	start := WindowStart(now, time.Minute)
	count, ok, err := s.store.CountRequest(ctx, selfRevokeKey(in.SourceIP), start, time.Minute, s.cfg.SelfRevokeLimit)
	if err != nil {
		return err
	}
	if !ok {
		return &Error{Code: ERATELIMITED, Message: "Too many revocations from this address; retry after the Retry-After delay.",
			Limit: &LimitState{Limit: s.cfg.SelfRevokeLimit, Remaining: max(s.cfg.SelfRevokeLimit-count, 0), Reset: start.Add(time.Minute)}}
	}
	p, valid := Parse(s.cfg.Prefix, strings.TrimSpace(in.Token))
	id := p.ID
	if !valid {
		id = decoyID
	}
	t, err := s.store.FindToken(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	if !valid || Judge(t, p, now).Token == nil || s.settled(t, LeakRevoke) {
		return nil
	}
	caller := Principal{TokenID: t.ID, Owner: t.Owner, SourceIP: addrString(in.SourceIP), RequestID: in.RequestID}
	return s.retire(ctx, t, caller, &Report{Reporter: ReporterSelf}, LeakRevoke, ActionRevoke, s.store.FindToken)
}

// settled reports whether t needs nothing more under mode: it is revoked, or disabled when the
// mode only disables.
func (s *Service) settled(t *Token, mode LeakAction) bool {
	return !t.RevokedAt.IsZero() || mode == LeakDisable && !t.Enabled
}

// retire revokes or disables (mode) t, whose secret was reported, with an audit event of action
// carrying report. A write that lost a race reads the token again with reread and retries once;
// a token that is gone meanwhile, or that the race settled, needs nothing. (A batch rereads with
// FindTokens, a single revoke with FindToken: each function's role grants the read it makes.)
func (s *Service) retire(ctx context.Context, t *Token, caller Principal, report *Report, mode LeakAction, action string,
	reread func(context.Context, string) (*Token, error)) error {
	for attempt := 1; ; attempt++ {
		now := s.cfg.Now().UTC()
		before := t.Clone()
		if mode == LeakDisable {
			t.Enabled = false
		} else {
			t.RevokedAt = now
			t.PrevSecretHash, t.PrevSecretUntil, t.PrevUntilFirstUse = nil, time.Time{}, false
		}
		ev := s.newAuditEvent(caller, action, t, now)
		ev.Report = report
		err := s.save(ctx, ev, before, t)
		if ErrorCode(err) != ECONFLICT || attempt == 2 {
			return ignoreNotFound(err)
		}
		if t, err = reread(ctx, t.ID); err != nil || s.settled(t, mode) {
			return ignoreNotFound(err)
		}
	}
}

// selfRevokeKey is the rate-limit counter of POST /revoke for an address: IPv4 addresses (IPv4-mapped
// ones included) count alone, IPv6 ones with their /64, which one subscriber usually holds whole.
func selfRevokeKey(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "revoke-ip:unknown"
	case ip.Unmap().Is4():
		return "revoke-ip:" + ip.Unmap().String()
	}
	p, _ := ip.WithZone("").Prefix(64)
	return "revoke-ip:" + p.String()
}

func addrString(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.Unmap().String()
}

// cleanText bounds a reporter's text for an audit event: refused characters (refusedRune)
// dropped, cut at MaxReportText bytes on a character boundary.
func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if refusedRune(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	if len(s) <= MaxReportText {
		return s
	}
	cut := MaxReportText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// findOne is FindToken through FindTokens, for the rereads of a batch.
func (s *Service) findOne(ctx context.Context, id string) (*Token, error) {
	found, err := s.store.FindTokens(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if t := found[id]; t != nil {
		return t, nil
	}
	return nil, errNotFound
}
