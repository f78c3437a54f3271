package dynamo

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

func ptr[T any](v T) *T { return &v }

func TestTTLAttribute(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	table := MustTable(t, client)
	clock := storetest.NewClockAt(time.Now().UTC().Truncate(time.Second)) // TTLs in the future by the real clock: DynamoDB Local deletes expired items
	svc := MustService(t, New(client, table, Options{Now: clock.Now}), clock.Now)
	start := clock.Now()

	plain, _ := MustCreate(t, svc, token.CreateInput{})
	var tok *token.Token
	create := func() {
		tok, _ = MustCreate(t, svc, token.CreateInput{
			Lifetime:   token.Lifetime{Days: ptr(10)},
			AutoDelete: true,
			ClientID:   "app",
		})
	}
	update := func(in token.UpdateInput) func() {
		return func() {
			clock.Advance(time.Minute)
			if _, err := svc.Update(ctx, admin, tok.ID, in); err != nil {
				t.Fatalf("Update: %v", err)
			}
		}
	}

	// The steps run in order; each checks the ttl attribute of a token (plain for the first
	// step, tok for the others) and whether tok's clientId marker exists and its ttl (zero: no
	// ttl attribute).
	steps := []struct {
		name       string
		do         func()
		wantTTL    time.Time
		wantMarker bool
		markerTTL  time.Time
	}{
		{"create without autoDelete", nil, time.Time{}, false, time.Time{}},
		{"create with autoDelete and expiry", create, start.Add(10 * token.Day), true, start.Add(10 * token.Day)},
		{"update autoDelete off", update(token.UpdateInput{AutoDelete: ptr(false)}), time.Time{}, true, start.Add(10 * token.Day)},
		{"update autoDelete on", update(token.UpdateInput{AutoDelete: ptr(true)}), start.Add(10 * token.Day), true, start.Add(10 * token.Day)},
		{"update clears expiry", update(token.UpdateInput{Lifetime: &token.Lifetime{Never: true}}), time.Time{}, true, time.Time{}},
		{"update sets expiry", update(token.UpdateInput{Lifetime: &token.Lifetime{Days: ptr(2)}}), start.Add(4*time.Minute + 2*token.Day), true, start.Add(4*time.Minute + 2*token.Day)},
		{"update autoDelete off again", update(token.UpdateInput{AutoDelete: ptr(false)}), time.Time{}, true, start.Add(4*time.Minute + 2*token.Day)},
		{"revoke", func() {
			clock.Advance(time.Minute)
			if _, err := svc.Revoke(ctx, admin, tok.ID); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
		}, start.Add(6*time.Minute + 30*token.Day), false, time.Time{}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			id := plain.ID
			if step.do != nil {
				step.do()
				id = tok.ID
			}
			item := MustRawItem(t, client, table, tokenPrefix+id)
			if item == nil {
				t.Fatalf("token %s not stored", id)
			}
			assertTTL(t, item, step.wantTTL)
			marker := MustRawItem(t, client, table, clientKey("o", "app"))
			if (marker != nil) != step.wantMarker {
				t.Fatalf("clientId marker exists = %v; want %v", marker != nil, step.wantMarker)
			}
			if marker != nil {
				assertTTL(t, marker, step.markerTTL)
			}
		})
	}
}

func assertTTL(t *testing.T, item map[string]types.AttributeValue, want time.Time) {
	t.Helper()
	av, ok := item[attrTTL]
	if want.IsZero() {
		if ok {
			t.Fatalf("ttl = %v; want no ttl attribute", av)
		}
		return
	}
	n, isN := av.(*types.AttributeValueMemberN)
	if !isN || n.Value != strconv.FormatInt(want.Unix(), 10) {
		t.Fatalf("ttl = %#v; want number %d (%v)", av, want.Unix(), want)
	}
}

func TestNoSecretInItems(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	table := MustTable(t, client)
	svc := MustService(t, New(client, table, Options{}), nil)
	tok, first := MustCreate(t, svc, token.CreateInput{Env: "live", ClientID: "app", Meta: []byte(`{"k":"v"}`)})
	_, second, err := svc.Rotate(ctx, admin, tok.ID, time.Hour) // keeps the first secret's hash as the previous one
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}

	var secrets []string
	for _, plaintext := range []string{first, second} {
		p, ok := token.Parse(svc.Prefix(), plaintext)
		if !ok {
			t.Fatalf("Parse(%q) failed", plaintext)
		}
		secrets = append(secrets, plaintext, p.Secret)
	}
	items := []map[string]types.AttributeValue{
		MustRawItem(t, client, table, tokenPrefix+tok.ID),
		MustRawItem(t, client, table, clientKey("o", "app")),
	}
	out, err := client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		IndexName:                 aws.String(ownerIndex),
		KeyConditionExpression:    aws.String("#o = :o"),
		ExpressionAttributeNames:  map[string]string{"#o": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": &types.AttributeValueMemberS{Value: "o"}},
	})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	items = append(items, out.Items...)

	var stored [][]byte
	for _, item := range items {
		for _, av := range item {
			stored = appendValues(stored, av)
		}
	}
	// The check must be able to fail: what is meant to be stored is found.
	for _, want := range []string{tok.ID, tok.Hint, `{"k":"v"}`} {
		if !slices.ContainsFunc(stored, func(b []byte) bool { return bytes.Contains(b, []byte(want)) }) {
			t.Fatalf("stored values lack %q; the search is broken", want)
		}
	}
	for _, b := range stored {
		for _, secret := range secrets {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("a stored value contains the secret %q", secret)
			}
		}
	}
}

// appendValues appends every string, number and binary inside av.
func appendValues(dst [][]byte, av types.AttributeValue) [][]byte {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		dst = append(dst, []byte(v.Value))
	case *types.AttributeValueMemberN:
		dst = append(dst, []byte(v.Value))
	case *types.AttributeValueMemberB:
		dst = append(dst, v.Value)
	case *types.AttributeValueMemberSS:
		for _, s := range v.Value {
			dst = append(dst, []byte(s))
		}
	case *types.AttributeValueMemberNS:
		for _, s := range v.Value {
			dst = append(dst, []byte(s))
		}
	case *types.AttributeValueMemberBS:
		dst = append(dst, v.Value...)
	case *types.AttributeValueMemberL:
		for _, e := range v.Value {
			dst = appendValues(dst, e)
		}
	case *types.AttributeValueMemberM:
		for k, e := range v.Value {
			dst = appendValues(append(dst, []byte(k)), e)
		}
	}
	return dst
}

func TestConcurrentVerifiesCountEveryUse(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	store := New(client, MustTable(t, client), Options{})
	// The real clock: concurrent uses reach the store out of time order, and every one counts.
	svc := MustService(t, store, nil)
	tok, plaintext := MustCreate(t, svc, token.CreateInput{})

	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			v, err := svc.Verify(ctx, plaintext)
			if err != nil || !v.Valid() {
				t.Errorf("verify %d: %s, %v", i, v.Code, err)
			}
		})
	}
	wg.Wait()
	svc.FlushUsage(ctx, true) // the uses the service still buffers
	got, err := store.FindToken(ctx, tok.ID)
	if err != nil {
		t.Fatalf("FindToken: %v", err)
	}
	if got.UsageCount != 200 {
		t.Fatalf("usageCount after 200 concurrent verifies = %d; want 200", got.UsageCount)
	}
	if got.Version != tok.Version {
		t.Fatalf("verifies changed the version to %d; want %d", got.Version, tok.Version)
	}
}

// Revoking a token whose clientId another token has claimed since (the first had expired) must
// revoke it and leave the other token's claim alone.
func TestRevokeKeepsAnotherHoldersClientID(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	clock := storetest.NewClock()
	store := New(client, MustTable(t, client), Options{Now: clock.Now})
	first := storetest.NewToken("alice", clock.Now())
	first.ClientID, first.ExpiresAt = "app", clock.Now().Add(time.Hour)
	storetest.MustCreate(t, store, first)
	clock.Advance(time.Hour)
	second := storetest.NewToken("alice", clock.Now())
	second.ClientID = "app"
	storetest.MustCreate(t, store, second)

	first.RevokedAt = clock.Now()
	storetest.MustUpdate(t, store, first)
	if got := storetest.MustFind(t, store, first.ID); got.RevokedAt.IsZero() || got.Version != 2 {
		t.Fatalf("revoke not stored: revokedAt %v version %d", got.RevokedAt, got.Version)
	}
	third := storetest.NewToken("alice", clock.Now())
	third.ClientID = "app"
	storetest.AssertCode(t, store.CreateToken(ctx, third, nil), token.ECONFLICT)
}

func TestListPagination(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	clock := storetest.NewClock()
	svc := MustService(t, New(client, MustTable(t, client), Options{Now: clock.Now}), clock.Now)

	// 250 tokens of one owner: active, disabled, expiring, expiring with autoDelete (gone once
	// expired), revoked; several share a creation instant, so the id orders them.
	var all []*token.Token
	var revoke []string
	active := map[string]bool{}
	for i := range 250 {
		if i%3 == 0 {
			clock.Advance(time.Millisecond)
		}
		in := token.CreateInput{Owner: "pager"}
		switch i % 5 {
		case 1:
			in.Enabled = ptr(false)
		case 2:
			in.Lifetime.At = ptr(clock.Now().Add(time.Hour))
		case 3:
			in.Lifetime.At = ptr(clock.Now().Add(time.Hour))
			in.AutoDelete = true
		}
		tok, _ := MustCreate(t, svc, in)
		all = append(all, tok)
		switch i % 5 {
		case 0:
			active[tok.ID] = true
		case 4:
			revoke = append(revoke, tok.ID)
		}
	}
	for _, id := range revoke {
		if _, err := svc.Revoke(ctx, admin, id); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
	}
	clock.Advance(2 * time.Hour)

	var want []string
	slices.SortFunc(all, func(a, b *token.Token) int { return strings.Compare(b.SortKey(), a.SortKey()) })
	for _, tok := range all {
		if active[tok.ID] {
			want = append(want, tok.ID)
		}
	}

	var got []string
	in := token.ListInput{Owner: "pager", Limit: 20}
	for pages := 1; ; pages++ {
		page, err := svc.List(ctx, admin, in)
		if err != nil {
			t.Fatalf("List page %d: %v", pages, err)
		}
		if len(page.Tokens) > 20 || page.NextCursor != "" && len(page.Tokens) != 20 {
			t.Fatalf("page %d: %d tokens, cursor %q", pages, len(page.Tokens), page.NextCursor)
		}
		for _, tok := range page.Tokens {
			got = append(got, tok.ID)
		}
		if page.NextCursor == "" {
			break
		}
		in.Cursor = page.NextCursor
	}
	if len(want) != 50 {
		t.Fatalf("test setup: %d active tokens; want 50", len(want))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d active tokens:\n%v\nwant %d:\n%v", len(got), got, len(want), want)
	}
}

// A store call against a server that does not answer is an internal error: never "not found",
// never success.
func TestStoppedServer(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	client := newClient(endpoint, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	store := New(client, "stopped", Options{})
	svc := MustService(t, store, nil)
	tok := storetest.NewToken("alice", time.Now())
	withClient := tok.Clone()
	withClient.ClientID = "app"
	plaintext := token.Format(svc.Prefix(), "", tok.ID, token.NewSecret())

	calls := []struct {
		name string
		call func() error
	}{
		{"CreateToken", func() error { return store.CreateToken(ctx, tok, nil) }},
		{"CreateToken with clientId", func() error { return store.CreateToken(ctx, withClient, nil) }},
		{"FindToken", func() error { _, err := store.FindToken(ctx, tok.ID); return err }},
		{"ListTokens", func() error {
			_, err := store.ListTokens(ctx, token.ListQuery{Owner: "alice", Limit: 20})
			return err
		}},
		{"UpdateToken", func() error { return store.UpdateToken(ctx, tok, nil) }},
		{"UpdateToken with clientId", func() error { return store.UpdateToken(ctx, withClient, nil) }},
		{"RecordUse", func() error { return store.RecordUse(ctx, tok.ID, token.Usage{At: time.Now(), Valid: 1}) }},
		{"RecordUse of refusals", func() error {
			return store.RecordUse(ctx, tok.ID, token.Usage{At: time.Now(), Refused: map[string]int64{token.CodeRevoked: 1}})
		}},
		{"UsageDays", func() error { _, err := store.UsageDays(ctx, tok.ID, time.Now(), 30); return err }},
		{"WindowCounts", func() error {
			_, err := store.WindowCounts(ctx, []token.RateWindow{{TokenID: tok.ID, Start: time.Now()}})
			return err
		}},
		{"Service.Verify", func() error { _, err := svc.Verify(ctx, plaintext); return err }},
		{"Service.Get", func() error { _, err := svc.Get(ctx, admin, tok.ID); return err }},
		{"CreateTable", func() error { return CreateTable(ctx, client, "stopped") }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			storetest.AssertCode(t, c.call(), token.EINTERNAL)
		})
	}
}

func TestCallsPerOperation(t *testing.T) {
	ctx := context.Background()
	counter := &dynamotest.CallCounter{}
	client := MustClient(t, counter.Register)
	clock := storetest.NewClock()
	svc := MustService(t, New(client, MustTable(t, client), Options{Now: clock.Now}), clock.Now)
	for range 45 {
		clock.Advance(time.Second)
		MustCreate(t, svc, token.CreateInput{})
	}
	counter.Take()

	var cursor, disabled string
	steps := []struct {
		name string
		call func() error
		want map[string]int
	}{
		{"Create: the token and its audit event in one transaction", func() error {
			_, _, err := svc.Create(ctx, admin, token.CreateInput{Name: "n"})
			return err
		}, map[string]int{"TransactWriteItems": 1}},
		{"Update: the read, then the change and its audit event in one transaction", func() error {
			tok, _ := MustCreate(t, svc, token.CreateInput{})
			counter.Take()
			name := "renamed"
			_, err := svc.Update(ctx, admin, tok.ID, token.UpdateInput{Name: &name})
			return err
		}, map[string]int{"GetItem": 1, "TransactWriteItems": 1}},
		{"Create with clientId", func() error {
			_, _, err := svc.Create(ctx, admin, token.CreateInput{Name: "n", ClientID: "app"})
			return err
		}, map[string]int{"TransactWriteItems": 1}},
		{"Verify of a valid token", func() error {
			_, plaintext, err := svc.Create(ctx, admin, token.CreateInput{Name: "n"})
			if err != nil {
				return err
			}
			counter.Take()
			v, err := svc.Verify(ctx, plaintext)
			if err == nil && !v.Valid() {
				t.Errorf("verdict %s; want valid", v.Code)
			}
			return err
		}, map[string]int{"GetItem": 1, "UpdateItem": 2}}, // the token's usage and the day's counters, in parallel
		{"Verify of a rate-limited token: one more write", func() error {
			return verifyWith(t, ctx, svc, counter, token.LimitsInput{RateLimit: &token.RateLimit{Limit: 10, Window: time.Minute}})
		}, map[string]int{"GetItem": 1, "UpdateItem": 3}},
		{"Verify of a token with a quota: one more write", func() error {
			left := int64(5)
			return verifyWith(t, ctx, svc, counter, token.LimitsInput{Remaining: &left})
		}, map[string]int{"GetItem": 1, "UpdateItem": 3}},
		{"Verify of a disabled token: its first refusal writes its counters", func() error {
			_, disabled = MustCreate(t, svc, token.CreateInput{Owner: "other", Enabled: ptr(false)}) // not on the lists below
			counter.Take()
			_, err := svc.Verify(ctx, disabled)
			return err
		}, map[string]int{"GetItem": 1, "UpdateItem": 1}},
		{"Verify of a disabled token again within the usage interval: the read only", func() error {
			v, err := svc.Verify(ctx, disabled)
			if err == nil && v.Code != token.CodeDisabled {
				t.Errorf("verdict %s; want DISABLED", v.Code)
			}
			return err
		}, map[string]int{"GetItem": 1}},
		{"Verify of an unknown id: the read only, no counters", func() error {
			_, err := svc.Verify(ctx, token.Format(svc.Prefix(), "", token.NewID(), token.NewSecret()))
			return err
		}, map[string]int{"GetItem": 1}},
		{"Get of a rate-limited token, with its window's count", func() error {
			tok, _ := MustCreate(t, svc, token.CreateInput{Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 10, Window: time.Minute}}})
			counter.Take()
			got, err := svc.Get(ctx, admin, tok.ID)
			if err != nil {
				return err
			}
			_, err = svc.RateWindows(ctx, []*token.Token{got})
			return err
		}, map[string]int{"GetItem": 1, "BatchGetItem": 1}},
		{"Get of a token without a rate limit: no more calls", func() error {
			tok, _ := MustCreate(t, svc, token.CreateInput{})
			counter.Take()
			got, err := svc.Get(ctx, admin, tok.ID)
			if err != nil {
				return err
			}
			_, err = svc.RateWindows(ctx, []*token.Token{got})
			return err
		}, map[string]int{"GetItem": 1}},
		{"List page with rate-limited tokens: one BatchGetItem for all their windows, one for the quota tokens' counters", func() error {
			for i := range 3 {
				clock.Advance(time.Second)
				MustCreate(t, svc, token.CreateInput{Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 10 + int64(i), Window: time.Minute}}})
			}
			counter.Take()
			page, err := svc.List(ctx, admin, token.ListInput{Limit: 20})
			if err != nil {
				return err
			}
			states, err := svc.RateWindows(ctx, page.Tokens)
			if err == nil && len(states) < 3 {
				t.Errorf("%d rate-limit states on a page with at least 3 rate-limited tokens", len(states))
			}
			return err
		}, map[string]int{"BatchGetItem": 2, "Query": 1}},
		{"Usage of 90 days: the token's read and one BatchGetItem", func() error {
			tok, _ := MustCreate(t, svc, token.CreateInput{})
			counter.Take()
			days, err := svc.Usage(ctx, admin, tok.ID, token.MaxUsageDays)
			if err == nil && len(days) != token.MaxUsageDays {
				t.Errorf("%d days; want %d", len(days), token.MaxUsageDays)
			}
			return err
		}, map[string]int{"GetItem": 1, "BatchGetItem": 1}},
		{"Verify of an IP-pinned token: no more calls", func() error {
			cidrs := []string{"203.0.113.0/24"}
			_, plaintext := MustCreate(t, svc, token.CreateInput{Limits: token.LimitsInput{AllowedCIDRs: &cidrs}})
			counter.Take()
			v, err := svc.VerifyRequest(ctx, token.VerifyInput{Token: plaintext, SourceIP: netip.MustParseAddr("203.0.113.5")})
			if err == nil && !v.Valid() {
				t.Errorf("verdict %s; want valid", v.Code)
			}
			return err
		}, map[string]int{"GetItem": 1, "UpdateItem": 2}},
		{"List first page: the Query, and one BatchGetItem for the counters of its tokens with a quota", func() error {
			page, err := svc.List(ctx, admin, token.ListInput{Limit: 20})
			cursor = page.NextCursor
			return err
		}, map[string]int{"Query": 1, "BatchGetItem": 1}},
		{"List next page", func() error {
			_, err := svc.List(ctx, admin, token.ListInput{Limit: 20, Cursor: cursor})
			return err
		}, map[string]int{"Query": 1}},
		{"List a token's children", func() error {
			_, err := svc.List(ctx, admin, token.ListInput{CreatedBy: token.NewID(), Limit: 20})
			return err
		}, map[string]int{"Query": 1}},
		{"Audit page", func() error {
			page, err := svc.Audit(ctx, admin, token.AuditInput{Limit: 20})
			if err == nil && len(page.Events) != 20 {
				t.Errorf("%d events; want a full page", len(page.Events))
			}
			return err
		}, map[string]int{"Query": 1}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			counter.Take()
			if err := step.call(); err != nil {
				t.Fatal(err)
			}
			if got := counter.Take(); !mapsEqual(got, step.want) {
				t.Fatalf("DynamoDB calls %v; want %v", got, step.want)
			}
		})
	}
}

// verifyWith creates a token with limits and verifies it once, counting only the verify.
func verifyWith(t *testing.T, ctx context.Context, svc *token.Service, counter *dynamotest.CallCounter, limits token.LimitsInput) error {
	t.Helper()
	_, plaintext := MustCreate(t, svc, token.CreateInput{Limits: limits})
	counter.Take()
	v, err := svc.Verify(ctx, plaintext)
	if err == nil && !v.Valid() {
		t.Errorf("verdict %s; want valid", v.Code)
	}
	return err
}

// The rate-limit window item carries a TTL at the window's end, so DynamoDB deletes it natively.
func TestRateWindowItemExpires(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	table := MustTable(t, client)
	clock := storetest.NewClock()
	store := New(client, table, Options{Now: clock.Now})
	start := token.WindowStart(clock.Now(), time.Minute)
	for i := range 3 {
		count, ok, err := store.CountRequest(ctx, "AAAAAAAAAAAAAAAA", start, time.Minute, 2)
		if err != nil || ok != (i < 2) || count != int64(min(i+1, 2)) {
			t.Fatalf("request %d: count %d admitted %v %v", i, count, ok, err)
		}
	}
	item := MustRawItem(t, client, table, ratePrefix+"AAAAAAAAAAAAAAAA#"+strconv.FormatInt(start.Unix(), 10))
	ttl, ok := item[attrTTL].(*types.AttributeValueMemberN)
	if !ok || ttl.Value != strconv.FormatInt(start.Add(time.Minute).Unix(), 10) {
		t.Fatalf("window item %v; want ttl %d", item, start.Add(time.Minute).Unix())
	}
	if n := item[attrCount].(*types.AttributeValueMemberN).Value; n != "2" {
		t.Fatalf("count %s; want 2 (refused requests are not counted)", n)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// DynamoDB cancels a transaction that meets another in flight on the same item
// (TransactionConflict); DynamoDB Local serializes transactions and never does, so the test
// injects the cancellation.
func TestTransactionConflictIsRetried(t *testing.T) {
	tests := []struct {
		name      string
		conflicts int
		wantCode  string
		wantCalls int
	}{
		{"transient conflict", 2, "", 3},
		{"persistent conflict", maxTransactAttempts, token.ECONFLICT, maxTransactAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter := &dynamotest.CallCounter{}
			injected := 0
			client := MustClient(t, counter.Register, func(o *dynamodb.Options) {
				o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
					return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("injectConflict",
						func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
							if awsmiddleware.GetOperationName(ctx) == "TransactWriteItems" && injected < tt.conflicts {
								injected++
								return middleware.InitializeOutput{}, middleware.Metadata{}, &types.TransactionCanceledException{
									Message: aws.String("Transaction cancelled"),
									CancellationReasons: []types.CancellationReason{
										{Code: aws.String("None")}, {Code: aws.String(reasonConflict)},
									},
								}
							}
							return next.HandleInitialize(ctx, in)
						}), middleware.After)
				})
			})
			store := New(client, MustTable(t, client), Options{})
			tok := storetest.NewToken("alice", time.Now())
			tok.ClientID = "app"
			counter.Take()
			err := store.CreateToken(context.Background(), tok, nil)
			storetest.AssertCode(t, err, tt.wantCode)
			if got := counter.Take()["TransactWriteItems"]; got != tt.wantCalls {
				t.Fatalf("%d TransactWriteItems calls; want %d", got, tt.wantCalls)
			}
			_, err = store.FindToken(context.Background(), tok.ID)
			if wantFound := tt.wantCode == ""; (err == nil) != wantFound {
				t.Fatalf("FindToken after create: %v; want found = %v", err, wantFound)
			}
		})
	}
}

// With a clientId, UpdateToken is a transaction; its refusals must read as without one.
func TestUpdateWithClientIDRefusals(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	clock := storetest.NewClock()
	store := New(client, MustTable(t, client), Options{Now: clock.Now})

	tok := storetest.NewToken("alice", clock.Now())
	tok.ClientID = "app"
	tok.AutoDelete, tok.PurgeAt = true, tok.ExpiresAt
	storetest.MustCreate(t, store, tok)
	stale := tok.Clone()
	tok.Name = "first"
	storetest.MustUpdate(t, store, tok)

	tests := []struct {
		name   string
		change func(c *token.Token)
		want   string
	}{
		{"stale version", func(c *token.Token) { c.Version = stale.Version }, token.ECONFLICT},
		{"another owner", func(c *token.Token) { c.Owner = "mallory" }, token.ENOTFOUND},
		{"absent", func(c *token.Token) { c.ID = token.NewID() }, token.ENOTFOUND},
		{"stale revoke", func(c *token.Token) { c.Version, c.RevokedAt = stale.Version, clock.Now() }, token.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tok.Clone()
			c.Name = "refused"
			tt.change(c)
			storetest.AssertCode(t, store.UpdateToken(ctx, c, nil), tt.want)
		})
	}
	if got := storetest.MustFind(t, store, tok.ID); got.Name != "first" || !got.RevokedAt.IsZero() {
		t.Fatalf("refused updates changed the token: name %q, revokedAt %v", got.Name, got.RevokedAt)
	}
	clock.Advance(31 * token.Day) // past expiry, and so past PurgeAt: gone
	storetest.AssertCode(t, store.UpdateToken(ctx, tok.Clone(), nil), token.ENOTFOUND)
}

// A token stored already revoked holds no clientId, but, as in memstore, cannot be created while
// another live token holds it.
func TestCreateRevokedWithClientID(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	clock := storetest.NewClock()
	store := New(client, MustTable(t, client), Options{Now: clock.Now})
	newToken := func(revoked bool) *token.Token {
		tok := storetest.NewToken("alice", clock.Now())
		tok.ClientID = "app"
		if revoked {
			tok.RevokedAt = clock.Now()
		}
		return tok
	}
	storetest.MustCreate(t, store, newToken(true))
	live := newToken(false)
	storetest.MustCreate(t, store, live) // the revoked token did not take the clientId
	storetest.AssertCode(t, store.CreateToken(ctx, newToken(true), nil), token.ECONFLICT)
	marker := MustRawItem(t, client, store.table, clientKey("alice", "app"))
	if holder, _ := marker[attrTokenID].(*types.AttributeValueMemberS); holder == nil || holder.Value != live.ID {
		t.Fatalf("clientId marker %v; want one held by %s", marker, live.ID)
	}
}

// TestCascadeRevokeOfAFamily: a three-level family of 50 tokens (a root, 7 children, 42
// grandchildren) is revoked by one cascade: every descendant revoked with its audit event, nothing
// outside the family touched. Calls: the root's GetItem, one Query of the ref index per family
// member (each a page of its children), one TransactWriteItems per revoke (token and event).
func TestCascadeRevokeOfAFamily(t *testing.T) {
	ctx := context.Background()
	counter := &dynamotest.CallCounter{}
	client := MustClient(t, counter.Register)
	// Real time: the revoked tokens' TTL (30 days on) must lie in DynamoDB Local's future, or it
	// may delete them while the test reads them.
	clock := storetest.NewClockAt(time.Now().UTC().Truncate(time.Second))
	store := New(client, MustTable(t, client), Options{Now: clock.Now})
	svc := MustService(t, store, clock.Now)
	by := func(id string) token.Principal {
		return token.Principal{TokenID: id, Owner: "alice", Permissions: []string{token.PermAdmin}}
	}
	root, _, err := svc.Create(ctx, admin, token.CreateInput{Name: "root", Owner: "alice", Permissions: []string{"manage"}})
	if err != nil {
		t.Fatal(err)
	}
	family := []string{root.ID}
	for i := range 7 {
		child, _, err := svc.Create(ctx, by(root.ID), token.CreateInput{Name: fmt.Sprint("child ", i), Permissions: []string{"manage"}})
		if err != nil {
			t.Fatal(err)
		}
		family = append(family, child.ID)
		for j := range 6 {
			g, _, err := svc.Create(ctx, by(child.ID), token.CreateInput{Name: fmt.Sprint("grandchild ", i, ".", j)})
			if err != nil {
				t.Fatal(err)
			}
			family = append(family, g.ID)
		}
	}
	outsiders := []string{}
	for i := range 5 {
		o, _, err := svc.Create(ctx, by(token.NewID()), token.CreateInput{Name: fmt.Sprint("outsider ", i)})
		if err != nil {
			t.Fatal(err)
		}
		outsiders = append(outsiders, o.ID)
	}
	clock.Advance(time.Second)
	counter.Take()

	_, c, err := svc.RevokeFamily(ctx, admin, root.ID)
	if err != nil {
		t.Fatal(err)
	}
	calls := counter.Take()
	if c.Revoked != 49 || c.Skipped != 0 {
		t.Fatalf("cascade revoked %d and skipped %d; want 49 and 0", c.Revoked, c.Skipped)
	}
	if want := map[string]int{"GetItem": 1, "Query": 50, "TransactWriteItems": 50}; !mapsEqual(calls, want) {
		t.Fatalf("DynamoDB calls %v; want %v", calls, want)
	}
	for i, id := range family {
		tok, err := store.FindToken(ctx, id)
		if err != nil {
			out, _ := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(store.table), Key: tokenKey(id)})
			t.Fatalf("family member %d (%s): %v; stored item %v", i, id, err, out.Item)
		}
		if tok.RevokedAt.IsZero() {
			t.Errorf("family member %s is not revoked", id)
		}
	}
	for _, id := range outsiders {
		if tok := storetest.MustFind(t, store, id); !tok.RevokedAt.IsZero() || tok.Version != 1 {
			t.Errorf("outsider %s was touched", id)
		}
	}
	events := storetest.MustAudit(t, store, token.AuditQuery{Owner: "alice", Since: clock.Now(), Limit: 100})
	if len(events) != 50 {
		t.Fatalf("%d audit events for the cascade; want 50", len(events))
	}
	for _, e := range events {
		if e.Action != token.ActionRevoke || e.TargetID != root.ID && e.Cascade != root.ID {
			t.Errorf("event %+v", *e)
		}
	}
}
