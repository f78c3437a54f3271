package token_test

import (
	"testing"

	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
)

// BenchmarkVerify measures the hot path of the authorizer: parse, one store read, two constant-time
// hash comparisons, the status, and recording the use. Target: <= 2 µs/op and <= 15 allocs/op.
func BenchmarkVerify(b *testing.B) {
	svc, err := token.NewService(memstore.New(nil), token.Config{})
	if err != nil {
		b.Fatal(err)
	}
	_, plaintext, err := svc.Create(ctx, admin, token.CreateInput{
		Name: "bench", Env: "live", Permissions: []string{"read", "files:*"},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		v, err := svc.Verify(ctx, plaintext, "files:read")
		if err != nil || !v.Valid() {
			b.Fatalf("Verify = %s, %v", v.Code, err)
		}
	}
}

// BenchmarkParseMalformed measures the rejection of a mistyped token, which costs no I/O.
func BenchmarkParseMalformed(b *testing.B) {
	s := token.Format(token.DefaultPrefix, "live", token.NewID(), token.NewSecret())
	typo := "x"
	if s[20] == 'x' {
		typo = "y"
	}
	s = s[:20] + typo + s[21:]
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := token.Parse(token.DefaultPrefix, s); ok {
			b.Fatal("Parse accepted a mistyped token")
		}
	}
}
