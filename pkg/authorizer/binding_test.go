package authorizer_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/token"
)

// TestAPIBinding: an instance named for its API refuses tokens bound to other APIs with 403
// FORBIDDEN_API and a policy that allows nothing; with REQUIRE_API_BINDING it also refuses
// unbound tokens. Refusals record no use.
func TestAPIBinding(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}
	mint := func(apis ...string) (string, string) {
		tok, plain, err := f.svc.Create(ctx, admin, token.CreateInput{Name: "bound", Permissions: []string{"list"}, APIs: apis})
		if err != nil {
			t.Fatal(err)
		}
		return tok.ID, plain
	}
	uploadsID, uploads := mint("uploads", "media")
	billingID, billing := mint("billing")
	unboundID, unbound := mint()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		tok     string
		want    outcome
		code    any
		counted string
	}{
		{"bound here", map[string]string{authorizer.EnvAPIName: "uploads"}, uploads, allow, nil, uploadsID},
		{"bound elsewhere", map[string]string{authorizer.EnvAPIName: "uploads"}, billing, forbidden, token.CodeForbiddenAPI, ""},
		{"unbound, binding optional", map[string]string{authorizer.EnvAPIName: "uploads"}, unbound, allow, nil, unboundID},
		{"unbound, binding required", map[string]string{authorizer.EnvAPIName: "uploads", authorizer.EnvRequireAPIBinding: "true"}, unbound, forbidden, token.CodeForbiddenAPI, ""},
		{"unnamed API", nil, billing, allow, nil, billingID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := authorizer.ConfigFromEnv(consumerEnv(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Now, cfg.CacheTTL = f.clock.Now, 0
			before := map[string]int64{}
			for _, id := range []string{uploadsID, billingID, unboundID} {
				before[id] = mustUsage(t, f, id)
			}
			a := authorizer.New(f.store, cfg)
			resp, err := a.HandleToken(ctx, events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: "Bearer " + tc.tok, MethodArn: arn("GET", "/files")})
			a.WaitForWrites()
			if got := restOutcome(t, resp, err, arn("GET", "/files")); got != tc.want {
				t.Fatalf("outcome %s; want %s", got, tc.want)
			}
			if tc.want == forbidden {
				if resp.Context[authorizer.ContextCode] != tc.code {
					t.Errorf("context code %v; want %v", resp.Context[authorizer.ContextCode], tc.code)
				}
				for _, st := range resp.PolicyDocument.Statement {
					if st.Effect == "Allow" {
						t.Errorf("a refused API binding allows %v", st.Resource)
					}
				}
			}
			for id, n := range before {
				want := n
				if id == tc.counted {
					want++
				}
				if got := mustUsage(t, f, id); got != want {
					t.Errorf("usageCount of %s: %d; want %d", id, got, want)
				}
			}
		})
	}
}

// TestEnvironmentLabelIsBound: tok_test_<id><secret> is not tok_live_<id><secret>.
func TestEnvironmentLabelIsBound(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, live, err := f.svc.Create(ctx, token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}, token.CreateInput{Name: "live", Env: "live"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := token.Parse("tok", live)
	for _, presented := range []string{token.Format("tok", "test", p.ID, p.Secret), token.Format("tok", "", p.ID, p.Secret)} {
		a := f.authorizer(t, nil)
		d, err := a.Authorize(ctx, authorizer.Request{Token: presented, Method: "GET", Route: "/a"})
		if err != nil || d.Outcome != authorizer.Unauthorized || d.Code != token.CodeNotFound {
			t.Errorf("%s...: %+v %v; want 401 NOT_FOUND", presented[:10], d, err)
		}
		if v, err := f.svc.Verify(ctx, presented); err != nil || v.Code != token.CodeNotFound {
			t.Errorf("verify %s...: %s %v; want NOT_FOUND", presented[:10], v.Code, err)
		}
	}
	if d, _ := f.authorizer(t, nil).Authorize(ctx, authorizer.Request{Token: live, Method: "GET", Route: "/a"}); d.Outcome != authorizer.Allowed {
		t.Fatalf("the token as issued: %+v", d)
	}
}

// heldWrites holds every usage write until released: a decision that waited for its write would
// never come back.
type heldWrites struct {
	token.Store
	release chan struct{}
}

func (s *heldWrites) RecordUse(ctx context.Context, id string, u token.Usage) error {
	<-s.release
	return s.Store.RecordUse(ctx, id, u)
}

// TestFirstSight: the first authorization of a token in an instance waits for its read only (one
// round trip of latency); its usage write goes out after the decision and counts the use exactly
// once; later ones within the usage interval read only; a token with limits is counted once,
// after its limits; refused tokens are never counted.
func TestFirstSight(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p, _ := token.Parse("tok", f.valid)

	held := &heldWrites{Store: f.store, release: make(chan struct{})}
	deferred := authorizer.New(held, authorizer.Config{Now: f.clock.Now, UsageInterval: time.Minute})
	if d, err := deferred.Authorize(ctx, authorizer.Request{Token: f.valid, Method: "GET", Route: "/a"}); err != nil || d.Outcome != authorizer.Allowed {
		t.Fatalf("first sight: %+v %v", d, err)
	}
	if got := mustUsage(t, f, p.ID); got != 0 {
		t.Fatalf("usageCount %d while the write is held; want 0", got)
	}
	close(held.release)
	deferred.WaitForWrites()
	if got := mustUsage(t, f, p.ID); got != 1 {
		t.Fatalf("usageCount %d after a first sight; want 1", got)
	}

	a := f.authorizer(t, func(c *authorizer.Config) { c.CacheTTL = 0 })
	step := func(tok string, wantFinds, wantWrites, wantUses int32) {
		t.Helper()
		f.store.finds.Store(0)
		f.store.writes.Store(0)
		f.store.uses.Store(0)
		if d, err := a.Authorize(ctx, authorizer.Request{Token: tok, Method: "GET", Route: "/a"}); err != nil || d.Outcome != authorizer.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
		a.WaitForWrites()
		if finds, writes, uses := f.store.finds.Load(), f.store.writes.Load(), f.store.uses.Load(); finds != wantFinds || writes != wantWrites || uses != wantUses {
			t.Fatalf("%d reads, %d writes, %d counted; want %d, %d, %d", finds, writes, uses, wantFinds, wantWrites, wantUses)
		}
	}
	step(f.valid, 1, 1, 1) // first sight in this instance: the read, then the write
	step(f.valid, 1, 0, 0) // within the usage interval: the read only
	f.clock.Advance(authorizer.DefaultUsageInterval)
	step(f.valid, 1, 1, 1) // a write is due again
	if got := mustUsage(t, f, p.ID); got != 4 {
		t.Fatalf("usageCount %d after 4 authorizations in two instances; want 4", got)
	}

	limited := f.limited(t, token.LimitsInput{Remaining: ptr(int64(5))})
	lp, _ := token.Parse("tok", limited)
	// The quota's write, then the use is counted once, after the limits allowed it.
	step(limited, 1, 2, 1)
	if got := mustUsage(t, f, lp.ID); got != 1 {
		t.Fatalf("usageCount of the limited token %d; want 1", got)
	}

	// Refused tokens are never counted.
	before := map[string]int64{}
	page, err := f.svc.List(ctx, token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}, token.ListInput{Status: "all", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range page.Tokens {
		before[tok.ID] = tok.UsageCount
	}
	f.store.uses.Store(0)
	for _, tok := range []string{f.revoked, f.disabled, f.expired, f.unknown} {
		if d, _ := a.Authorize(ctx, authorizer.Request{Token: tok, Method: "GET", Route: "/a"}); d.Outcome != authorizer.Unauthorized {
			t.Fatalf("%+v", d)
		}
	}
	a.WaitForWrites()
	if got := f.store.uses.Load(); got != 0 {
		t.Fatalf("refused tokens were counted %d times", got)
	}
	for id, n := range before {
		if got := mustUsage(t, f, id); got != n {
			t.Errorf("usageCount of %s moved from %d to %d", id, n, got)
		}
	}
}

func mustUsage(t *testing.T, f *fixture, id string) int64 {
	t.Helper()
	tok, err := f.store.Store.FindToken(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tok.UsageCount
}

func ptr[T any](v T) *T { return &v }
