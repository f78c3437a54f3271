package dynamo

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// leakedTokens writes n tokens of owner acme with BatchWriteItem, active (half of them holding a
// clientId, whose revoke releases its marker in the same transaction) or revoked already, and
// returns their plaintexts as a report.
func leakedTokens(tb testing.TB, client *dynamodb.Client, table string, n int, now time.Time, revoked bool) []token.LeakReport {
	tb.Helper()
	var reports []token.LeakReport
	var reqs []types.WriteRequest
	flush := func() {
		for len(reqs) > 0 {
			out, err := client.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs}})
			if err != nil {
				tb.Fatalf("BatchWriteItem: %v", err)
			}
			reqs = out.UnprocessedItems[table]
		}
	}
	for i := range n {
		tok := storetest.NewToken("acme", now)
		secret := token.NewSecret()
		tok.SecretHash = token.HashSecret(secret)
		if revoked {
			tok.RevokedAt = now
		} else if i%2 == 0 {
			tok.ClientID = "client-" + tok.ID
			marker, err := attributevalue.MarshalMap(clientMarker(tok))
			if err != nil {
				tb.Fatal(err)
			}
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: marker}})
		}
		item, err := attributevalue.MarshalMap(toItem(tok))
		if err != nil {
			tb.Fatal(err)
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		if len(reqs) >= 24 {
			flush()
		}
		reports = append(reports, token.LeakReport{
			Token: token.Format(token.DefaultPrefix, tok.Env, tok.ID, secret), Type: "apitokens_token",
			URL: fmt.Sprintf("https://github.com/o/r/blob/abc/f%d", i), Source: "content",
		})
	}
	flush()
	return reports
}

// TestReportLeaksCalls states the DynamoDB calls of a leak report, counted by the SDK: 100
// reported tokens (and 20 matches of other deployments, which cost nothing) are one
// BatchGetItem and one TransactWriteItems per token (its revoke, its audit event, the release of
// its clientId marker); the same report again is the BatchGetItem alone; 250 tokens revoked
// already are three BatchGetItems and nothing else.
func TestReportLeaksCalls(t *testing.T) {
	counter := &dynamotest.CallCounter{}
	client := MustClient(t, counter.Register)
	table := MustTable(t, client)
	clock := storetest.NewClockAt(time.Now().UTC()) // DynamoDB Local's TTL acts on the real clock
	svc := MustService(t, New(client, table, Options{Now: clock.Now}), clock.Now)
	ctx := context.Background()
	reporter := token.Reporter{Name: token.ReporterGitHub}

	reports := leakedTokens(t, client, table, 100, clock.Now(), false)
	for range 20 {
		reports = append(reports, token.LeakReport{Token: token.Format("other", "live", token.NewID(), token.NewSecret())})
	}
	counter.Take()
	for _, tc := range []struct {
		name string
		want map[string]int
	}{
		{"first report", map[string]int{"BatchGetItem": 1, "TransactWriteItems": 100}},
		{"the same again", map[string]int{"BatchGetItem": 1}},
	} {
		confirmed, err := svc.ReportLeaks(ctx, reporter, reports)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := countTrue(confirmed); n != 100 {
			t.Fatalf("%s: %d true positives; want 100", tc.name, n)
		}
		if got := counter.Take(); !maps.Equal(got, tc.want) {
			t.Fatalf("%s: calls %v; want %v", tc.name, got, tc.want)
		}
	}
	for _, r := range reports[:100] {
		p, _ := token.Parse(token.DefaultPrefix, r.Token)
		if tok := MustRawItem(t, client, table, tokenPrefix+p.ID); tok["revokedAt"] == nil {
			t.Fatalf("token %s not revoked", p.ID)
		}
	}
	page, err := svc.Audit(ctx, admin, token.AuditInput{Owner: "acme", Limit: 100})
	if err != nil || len(page.Events) != 100 || page.NextCursor != "" {
		t.Fatalf("audit: %d events, next %q, %v; want 100 leak events", len(page.Events), page.NextCursor, err)
	}
	counter.Take()

	more := leakedTokens(t, client, table, 250, clock.Now(), true)
	counter.Take()
	confirmed, err := svc.ReportLeaks(ctx, reporter, more)
	if err != nil || countTrue(confirmed) != 250 {
		t.Fatalf("250 revoked tokens: %d true positives, %v", countTrue(confirmed), err)
	}
	if got, want := counter.Take(), map[string]int{"BatchGetItem": 3}; !maps.Equal(got, want) {
		t.Fatalf("250 revoked tokens: calls %v; want %v", got, want)
	}
}

func countTrue(bs []bool) int {
	return len(slices.DeleteFunc(slices.Clone(bs), func(b bool) bool { return !b }))
}

// BenchmarkReportLeaks times a report of 100 leaked tokens of this deployment, all revoked in
// it (1 BatchGetItem, 100 TransactWriteItems, 8 at a time), against DynamoDB Local:
//
//	scripts/dynamodb-local.sh go test ./pkg/dynamo/ -run '^$' -bench ReportLeaks -benchtime 20x
func BenchmarkReportLeaks(b *testing.B) {
	client := MustClient(b)
	table := MustTable(b, client)
	now := time.Now().UTC()
	svc := MustService(b, New(client, table, Options{}), time.Now)
	ctx := context.Background()
	reporter := token.Reporter{Name: token.ReporterGitHub}
	warm := leakedTokens(b, client, table, 100, now, false)
	if _, err := svc.ReportLeaks(ctx, reporter, warm); err != nil { // warm up the server's JVM
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		reports := leakedTokens(b, client, table, 100, now, false)
		b.StartTimer()
		confirmed, err := svc.ReportLeaks(ctx, reporter, reports)
		if err != nil || countTrue(confirmed) != 100 {
			b.Fatalf("ReportLeaks: %d confirmed, %v", countTrue(confirmed), err)
		}
	}
}
