package authorizer_test

import (
	"context"
	"testing"

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

// TestFirstSightRoundTrips: with the memory cache off, the first authorization of a token in an
// instance is one store round trip that also records the use; later ones within the usage
// interval are one read and no write; a token with limits is read, limited and then recorded.
func TestFirstSightRoundTrips(t *testing.T) {
	f := newFixture(t)
	a := f.authorizer(t, func(c *authorizer.Config) { c.CacheTTL = 0 })
	ctx := context.Background()
	step := func(tok string, wantTrips, wantUses int32) {
		t.Helper()
		f.store.trips.Store(0)
		f.store.uses.Store(0)
		if d, err := a.Authorize(ctx, authorizer.Request{Token: tok, Method: "GET", Route: "/a"}); err != nil || d.Outcome != authorizer.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
		if got, uses := f.store.trips.Load(), f.store.uses.Load(); got != wantTrips || uses != wantUses {
			t.Fatalf("%d round trips, %d usage writes; want %d and %d", got, uses, wantTrips, wantUses)
		}
	}
	step(f.valid, 1, 1) // first sight: read and record in one
	step(f.valid, 1, 0) // within the usage interval: one read
	f.clock.Advance(authorizer.DefaultUsageInterval)
	step(f.valid, 1, 1) // a write is due again: one round trip again
	p, _ := token.Parse("tok", f.valid)
	if got := mustUsage(t, f, p.ID); got != 3 {
		t.Fatalf("usageCount %d after 3 authorizations; want 3", got)
	}

	limited := f.limited(t, token.LimitsInput{Remaining: ptr(int64(5))})
	step(limited, 3, 1) // read (no write: it has a quota), the quota's write, the usage write

	// A refused token records nothing, and its refusal does not postpone the next write.
	f.store.uses.Store(0)
	for _, tok := range []string{f.revoked, f.disabled, f.expired, f.unknown} {
		if d, _ := a.Authorize(ctx, authorizer.Request{Token: tok, Method: "GET", Route: "/a"}); d.Outcome != authorizer.Unauthorized {
			t.Fatalf("%+v", d)
		}
	}
	if got := f.store.uses.Load(); got != 0 {
		t.Fatalf("refused tokens caused %d usage writes", got)
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
