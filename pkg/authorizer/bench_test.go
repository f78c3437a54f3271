package authorizer_test

import (
	"context"
	"testing"

	"github.com/apitokens/apitokens/pkg/authorizer"
)

// BenchmarkAuthorize measures one decision on the memory store: hit (record cached), miss (every
// call reads the store: cache disabled) and malformed (rejected before any lookup).
func BenchmarkAuthorize(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, a *authorizer.Authorizer, tok string, want authorizer.Outcome) {
		b.ReportAllocs()
		for b.Loop() {
			d, err := a.Authorize(ctx, authorizer.Request{Token: tok, Method: "GET", Route: "/files/a"})
			if err != nil || d.Outcome != want {
				b.Fatalf("%+v %v", d, err)
			}
		}
	}
	b.Run("hit", func(b *testing.B) {
		f := newFixture(b)
		run(b, f.authorizer(b, nil), f.valid, authorizer.Allowed)
	})
	b.Run("miss", func(b *testing.B) {
		f := newFixture(b)
		run(b, f.authorizer(b, func(c *authorizer.Config) { c.CacheTTL = 0 }), f.valid, authorizer.Allowed)
	})
	b.Run("malformed", func(b *testing.B) {
		f := newFixture(b)
		run(b, f.authorizer(b, nil), f.badChecksum, authorizer.Unauthorized)
	})
	b.Run("hit-routes", func(b *testing.B) {
		f := newFixture(b)
		run(b, f.authorizer(b, withRoutes(b)), f.valid, authorizer.Allowed)
	})
}
