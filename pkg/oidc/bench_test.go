package oidc_test

import (
	"context"
	"testing"

	"github.com/apitokens/apitokens/internal/oidctest"
	"github.com/apitokens/apitokens/pkg/oidc"
)

// BenchmarkVerify: an ID token checked with the issuer's keys in hand (every sign-in but the
// first per KeysTTL): one RS256 signature verification and the claim rules.
func BenchmarkVerify(b *testing.B) {
	p := oidctest.Start(b, oidctest.Config{
		Users: []oidctest.User{{Subject: "root", Username: "root", Groups: []string{"apitokens-admin"}}},
	})
	v, err := oidc.New(oidc.Config{Issuer: p.Issuer(), Audience: audience, AdminClaim: "groups", AdminValue: "apitokens-admin"})
	if err != nil {
		b.Fatal(err)
	}
	jwt := p.IDToken(b, audience, "root")
	ctx := context.Background()
	if _, _, err := v.Verify(ctx, jwt); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := v.Verify(ctx, jwt); err != nil {
			b.Fatal(err)
		}
	}
}
