package samtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
)

// TestVerifyBinaryWritesUsesAtSIGTERM runs the real bootstrap of POST /verify under
// tools/lambdarun against DynamoDB Local, with the environment template.yaml gives it: its
// verifies only count uses, which it writes at most once per usage interval beside an
// invocation, and at SIGTERM (which lambdarun, like Lambda, sends when the function registered
// an extension). After the run every use is in the table, in at most two usage writes of the
// token (the first flush beside an invocation, and the one at SIGTERM) for its verifies.
func TestVerifyBinaryWritesUsesAtSIGTERM(t *testing.T) {
	const verifies = 6
	client := dynamotest.MustClient(t)
	rec := mustRecorder(t)
	table := dynamotest.MustTable(t, client, dynamo.CreateTable)
	store := dynamo.New(client, table, dynamo.Options{})
	plain := mustSeedPlaintext(t, store, "acme", "upload")
	p, ok := token.Parse(token.DefaultPrefix, plain)
	if !ok {
		t.Fatalf("seeded a malformed token %q", plain)
	}
	id := p.ID

	ev := mustEvent(t, "verify.json")
	ev.Body = fmt.Sprintf(`{"token":%q,"permissions":["upload"]}`, plain)
	event, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	env := append(functionEnv(t, mustTemplate(t), "VerifyFunction", nil, map[string]string{"Table": table}), awsEnv(rec.URL)...)
	rec.take(t)
	for i, raw := range mustInvoke(t, mustBinary(t, "functions/verify"), event, env, verifies) {
		if resp := mustProxyResponse(t, raw); resp.StatusCode != 200 || !strings.Contains(resp.Body, `"valid":true`) {
			t.Fatalf("verify %d: %d %s", i, resp.StatusCode, resp.Body)
		}
	}
	writes := 0
	for _, c := range rec.take(t) {
		if c.Action == "dynamodb:UpdateItem" && c.LeadingKey == "TOKEN#"+id {
			writes++
		}
	}
	got, err := store.FindToken(context.Background(), id)
	if err != nil || got.UsageCount != verifies {
		t.Fatalf("usageCount %d (%v) after %d verifies and SIGTERM; want %d", got.UsageCount, err, verifies, verifies)
	}
	days, err := store.UsageDays(context.Background(), id, got.LastUsedAt, 1)
	if err != nil || days[0].Valid != verifies {
		t.Fatalf("day counters %+v (%v); want %d valid", days, err, verifies)
	}
	if writes < 1 || writes > 2 {
		t.Fatalf("%d usage writes of the token for %d verifies; want 1 or 2", writes, verifies)
	}
}
