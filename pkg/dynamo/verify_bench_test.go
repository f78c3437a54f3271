package dynamo

import (
	"context"
	"testing"

	"github.com/apitokens/apitokens/pkg/token"
)

// BenchmarkVerifyAgainstDynamoDB times Service.Verify of one valid token on DynamoDB Local, as a
// server runs it: a consistent GetItem, and the token's usage write when it is due (its first
// use, then at most once per usage interval; before issue 14, every valid verify waited for one).
//
//	scripts/dynamodb-local.sh go test ./pkg/dynamo/ -run '^$' -bench VerifyAgainstDynamoDB
func BenchmarkVerifyAgainstDynamoDB(b *testing.B) {
	ctx := context.Background()
	client := MustClient(b)
	store := New(client, MustTable(b, client), Options{})
	svc, err := token.NewService(store, token.Config{})
	if err != nil {
		b.Fatal(err)
	}
	_, plain, err := svc.Create(ctx, token.Principal{Owner: "root", Permissions: []string{token.PermAdmin}}, token.CreateInput{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	verify := func() {
		if v, err := svc.Verify(ctx, plain); err != nil || !v.Valid() {
			b.Fatalf("Verify = %s, %v", v.Code, err)
		}
	}
	for range 300 { // warm up the server's JVM
		verify()
	}
	for b.Loop() {
		verify()
	}
}
