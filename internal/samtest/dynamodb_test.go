package samtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
)

// The tests of this file run against the DynamoDB Local of `make test` (DYNAMODB_ENDPOINT).

// dynamoRecorder is a proxy in front of DynamoDB Local that records every request as IAM
// authorizes it (dynamoCall), from the wire, whoever sends it: a Store in this process or a real
// function binary pointed at it with AWS_ENDPOINT_URL_DYNAMODB.
type dynamoRecorder struct {
	URL   string
	mu    sync.Mutex
	calls []dynamoCall
	err   error
}

func mustRecorder(t *testing.T) *dynamoRecorder {
	t.Helper()
	target, err := url.Parse(dynamotest.MustEndpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	r := &dynamoRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
		calls, err := parseCalls(op, body)
		r.mu.Lock()
		r.calls = append(r.calls, calls...)
		if err != nil && r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// take returns the calls recorded since the last take.
func (r *dynamoRecorder) take(t *testing.T) []dynamoCall {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		t.Fatalf("recording DynamoDB calls: %v", r.err)
	}
	calls := r.calls
	r.calls = nil
	return calls
}

// tableKey is the table's partition key (template.yaml's KeySchema, dynamo.CreateTable's).
const tableKey = "pk"

// wireRequest is the part of a DynamoDB JSON request that IAM's condition keys read.
type wireRequest struct {
	IndexName                string
	Key                      map[string]map[string]any
	Item                     map[string]map[string]any
	ProjectionExpression     string
	UpdateExpression         string
	ConditionExpression      string
	KeyConditionExpression   string
	FilterExpression         string
	ExpressionAttributeNames map[string]string
	AttributesToGet          []string
	ReturnValues             string
	TransactItems            []map[string]wireRequest
	RequestItems             map[string]struct { // BatchGetItem, by table
		Keys                     []map[string]map[string]any
		ProjectionExpression     string
		ExpressionAttributeNames map[string]string
		AttributesToGet          []string
	}
}

// transactActions are the IAM actions of the items of a TransactWriteItems.
var transactActions = map[string]string{"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}

// parseCalls turns one request of operation op into the calls IAM authorizes: one, or one per
// item of a transaction.
func parseCalls(op string, body []byte) ([]dynamoCall, error) {
	var in wireRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	if op == "BatchGetItem" {
		// IAM authorizes a BatchGetItem once, on all its keys (ForAllValues): one call per key.
		var calls []dynamoCall
		for _, table := range in.RequestItems {
			for _, key := range table.Keys {
				calls = append(calls, callOf(op, wireRequest{Key: key, ProjectionExpression: table.ProjectionExpression,
					ExpressionAttributeNames: table.ExpressionAttributeNames, AttributesToGet: table.AttributesToGet}))
			}
		}
		return calls, nil
	}
	if op != "TransactWriteItems" {
		return []dynamoCall{callOf(op, in)}, nil
	}
	var calls []dynamoCall
	for _, item := range in.TransactItems {
		for kind, req := range item {
			action, ok := transactActions[kind]
			if !ok {
				return nil, fmt.Errorf("TransactWriteItems: unknown item kind %q", kind)
			}
			calls = append(calls, callOf(action, req))
		}
	}
	return calls, nil
}

func callOf(op string, in wireRequest) dynamoCall {
	c := dynamoCall{Action: "dynamodb:" + op, Resource: "table", ReturnValues: in.ReturnValues}
	if in.IndexName != "" {
		c.Resource, c.Index = "index", in.IndexName
	}
	for _, item := range []map[string]map[string]any{in.Key, in.Item} {
		if s, ok := item[tableKey]["S"].(string); ok {
			c.LeadingKey = s
		}
	}
	switch op {
	case "GetItem", "BatchGetItem", "Query", "Scan":
		if in.ProjectionExpression == "" && len(in.AttributesToGet) == 0 {
			return c // a read of every attribute
		}
	}
	names := map[string]bool{}
	for _, item := range []map[string]map[string]any{in.Key, in.Item} {
		for k := range item {
			names[k] = true
		}
	}
	for _, n := range in.ExpressionAttributeNames {
		names[n] = true
	}
	for _, n := range in.AttributesToGet {
		names[n] = true
	}
	for _, e := range []string{in.ProjectionExpression, in.UpdateExpression, in.ConditionExpression, in.KeyConditionExpression, in.FilterExpression} {
		for _, n := range bareNames(e) {
			names[n] = true
		}
	}
	c.Attributes = slices.Sorted(maps.Keys(names))
	return c
}

// expressionWords are the keywords of DynamoDB expressions (functions are told by their "(").
var expressionWords = map[string]bool{"AND": true, "OR": true, "NOT": true, "BETWEEN": true, "IN": true, "SET": true, "ADD": true, "REMOVE": true, "DELETE": true}

// bareNames returns the top-level attribute names an expression spells out instead of through
// #placeholders.
func bareNames(expr string) []string {
	isIdent := func(c byte) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	var out []string
	for i := 0; i < len(expr); {
		if !isIdent(expr[i]) {
			i++
			continue
		}
		j := i
		for j < len(expr) && isIdent(expr[j]) {
			j++
		}
		word, next := expr[i:j], strings.TrimLeft(expr[j:], " ")
		var prev byte = ' '
		if i > 0 {
			prev = expr[i-1]
		}
		number := expr[i] >= '0' && expr[i] <= '9'
		if !number && prev != '#' && prev != ':' && prev != '.' && !strings.HasPrefix(next, "(") && !expressionWords[strings.ToUpper(word)] {
			out = append(out, word)
		}
		i = j
	}
	return out
}

func TestBareNames(t *testing.T) {
	for expr, want := range map[string][]string{
		"SET #lastUsedAt = :now ADD #usageCount :n":                    nil,
		"attribute_exists(#pk) AND (#a = :h OR size(#b) > :zero)":      nil,
		"SET owner = :o, meta.x[0] = :m REMOVE ttl":                    {"owner", "meta", "ttl"},
		"attribute_not_exists(pk) and begins_with(sk, :p) or not done": {"pk", "sk", "done"},
	} {
		if got := bareNames(expr); !slices.Equal(got, want) {
			t.Errorf("bareNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// TestPoliciesAllowExactlyTheCalls answers every route event on the DynamoDB store, as the
// route functions do, and runs both authorizers' real binaries with the environment their
// templates give them on every authorizer event and every kind of token; it records each
// DynamoDB request on the wire, as IAM sees it, and checks that the function's policy allows
// exactly the calls made: none denied in AWS, no grant (action, item prefix) there for nothing.
// Every change is a transaction with its audit event; target tokens and one descendant of a
// cascade hold a clientId, so updates, rotations and revocations claim or release its marker
// too; a cascading revoke walks a family of three descendants through the ref index.
func TestPoliciesAllowExactlyTheCalls(t *testing.T) {
	client := dynamotest.MustClient(t)
	rec := mustRecorder(t)
	recording := dynamotest.NewClient(rec.URL)
	grants := functionGrants(t, mustTemplate(t), mainResource)

	made := map[string][]dynamoCall{}
	for _, tc := range eventCases {
		rt, ok := routeOf(tc.function)
		if !ok {
			continue
		}
		t.Run(tc.file, func(t *testing.T) {
			table := dynamotest.MustTable(t, client, dynamo.CreateTable)
			ev := mustEvent(t, tc.file)
			seed(t, dynamo.New(client, table, dynamo.Options{}), ev, tc, "github-actions")
			rec.take(t)
			resp := mustProxy(t, dynamo.New(recording, table, dynamo.Options{}), rt.Pattern, ev, leakEnv(t, tc))
			checkAnswer(t, tc, resp.StatusCode, resp.Body)
			id := logicalID(tc.function)
			made[id] = append(made[id], rec.take(t)...)
		})
	}
	t.Run("ManagementAuthorizerFunction", func(t *testing.T) {
		env := func(table string) []string {
			return functionEnv(t, mustTemplate(t), "ManagementAuthorizerFunction", nil, map[string]string{"Table": table})
		}
		made["ManagementAuthorizerFunction"] = authorizerCalls(t, client, rec, env, true)
	})
	for id, calls := range made {
		checkCalls(t, "template.yaml "+id, grants[id], calls)
	}

	// The consumer authorizer with the application's defaults, and without its memory cache (so
	// that a token's later calls read it without recording a use), bound to an API name.
	t.Run(appTemplate, func(t *testing.T) {
		app := mustTemplateFile(t, appTemplate)
		var calls []dynamoCall
		for _, params := range []map[string]string{{}, {"MemoryCacheTtlSeconds": "0", "ApiName": "uploads", "ResponseMode": "iam"}} {
			env := func(table string) []string {
				params["TableName"], params["TableArn"] = table, "arn:aws:dynamodb:us-east-1:123456789012:table/"+table
				return functionEnv(t, app, "AuthorizerFunction", params, nil)
			}
			calls = append(calls, authorizerCalls(t, client, rec, env, false)...)
		}
		checkCalls(t, appTemplate+" AuthorizerFunction", functionGrants(t, app, appResource)["AuthorizerFunction"], calls)
	})
}

// authorizerCalls runs the authorizer binary, with the environment env gives it for a table,
// twice on every authorizer event (HTTP API ones only when httpOnly) for every kind of token:
// plain, rate-limited, with a quota due for a refill, rotated with grace untilFirstUse (its first
// decision ends the grace), unknown; and returns the DynamoDB calls it made.
func authorizerCalls(t *testing.T, client *dynamodb.Client, rec *dynamoRecorder, env func(table string) []string, httpOnly bool) []dynamoCall {
	t.Helper()
	table := dynamotest.MustTable(t, client, dynamo.CreateTable)
	store := dynamo.New(client, table, dynamo.Options{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	remaining, one := int64(5), int64(1)
	tokens := map[string]func(*token.Token){
		"plain": func(*token.Token) {},
		"rotated": func(tok *token.Token) {
			tok.PrevSecretHash, tok.PrevSecretUntil = token.HashSecret(token.NewSecret()), now.Add(time.Hour)
			tok.PrevUntilFirstUse = true
		},
		"rate-limited": func(tok *token.Token) { tok.RateLimit = &token.RateLimit{Limit: 100, Window: time.Minute} },
		"quota": func(tok *token.Token) {
			tok.Remaining, tok.RefilledAt = &remaining, now.Add(-time.Hour)
			tok.Refill = &token.Refill{Amount: 5, Interval: time.Minute}
		},
		// One use left: the first decision empties the quota, which records a quota event.
		"nearly spent": func(tok *token.Token) { tok.Remaining, tok.RefilledAt = &one, now },
	}
	plaintexts := map[string]string{"unknown": token.Format(token.DefaultPrefix, "live", token.NewID(), token.NewSecret())}
	for name, set := range tokens {
		id, secret := token.NewID(), token.NewSecret()
		tok := newToken(id, "acme", []string{"manage", "read", "upload", "list"}, secret)
		set(tok)
		mustCreate(t, store, tok)
		plaintexts[name] = token.Format(token.DefaultPrefix, tok.Env, id, secret)
	}
	bootstrap := mustBinary(t, "functions/authorizer")
	fnEnv := append(env(table), awsEnv(rec.URL)...)
	rec.take(t)
	var calls []dynamoCall
	for _, file := range mustAuthorizerEvents(t) {
		if httpOnly && !isHTTPAPIEvent(t, file) {
			continue
		}
		for name, plaintext := range plaintexts {
			rep := runLambda(t, bootstrap, withToken(t, file, plaintext), fnEnv, 2)
			if rep.Runs[0].InitError != nil {
				t.Fatalf("%s: init failed with the template's environment %q: %s", filepath.Base(file), fnEnv, rep.Runs[0].InitError)
			}
			got := rec.take(t)
			if name != "unknown" && len(got) == 0 {
				t.Errorf("%s, %s token: no DynamoDB call", filepath.Base(file), name)
			}
			calls = append(calls, got...)
		}
	}
	return calls
}

func isHTTPAPIEvent(t *testing.T, file string) bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return ev.Version == "2.0"
}

// awsEnv is what a function needs to reach DynamoDB Local (or the recorder) at endpoint.
func awsEnv(endpoint string) []string {
	return []string{
		"AWS_ENDPOINT_URL_DYNAMODB=" + endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_SESSION_TOKEN=", "AWS_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// checkCalls: grants allow every call, and every action of a grant, on every item prefix it
// names, is needed by a call.
func checkCalls(t *testing.T, id string, grants []grant, calls []dynamoCall) {
	t.Helper()
	denied := map[string]bool{}
	for _, c := range calls {
		if !slices.ContainsFunc(grants, func(g grant) bool { return g.allows(c) }) {
			denied[c.String()] = true
		}
	}
	for _, c := range slices.Sorted(maps.Keys(denied)) {
		t.Errorf("%s: %s is denied by its policy %v", id, c, grants)
	}
	if testing.Verbose() {
		seen := map[string]bool{}
		for _, c := range calls {
			seen[c.String()] = true
		}
		t.Logf("%s: %d calls: %s", id, len(calls), strings.Join(slices.Sorted(maps.Keys(seen)), "; "))
	}
	for _, g := range grants {
		keys := g.LeadingKeys
		if keys == nil {
			keys = []string{""}
		}
		for _, a := range g.Actions {
			for _, k := range keys {
				narrow := g
				narrow.Actions = []string{a}
				if k != "" {
					narrow.LeadingKeys = []string{k}
				}
				if !slices.ContainsFunc(calls, narrow.allows) {
					t.Errorf("%s: its policy grants %v, which no call needs", id, narrow)
				}
			}
		}
	}
}

// mustSeedPlaintext creates a token of owner with perms and returns its plaintext.
func mustSeedPlaintext(t *testing.T, store token.Store, owner string, perms ...string) string {
	t.Helper()
	id, secret := token.NewID(), token.NewSecret()
	tok := newToken(id, owner, perms, secret)
	mustCreate(t, store, tok)
	return token.Format(token.DefaultPrefix, tok.Env, id, secret)
}

func mustAuthorizerEvents(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "events", authorizerEvents+"*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no events/%s*.json (%v)", authorizerEvents, err)
	}
	return files
}

// withToken returns an authorizer event with its placeholder token replaced by plaintext.
func withToken(t *testing.T, file, plaintext string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const placeholder = "tok_live_REPLACE_WITH_A_TOKEN"
	if !strings.Contains(string(b), placeholder) {
		t.Fatalf("%s: no %s placeholder", file, placeholder)
	}
	return []byte(strings.ReplaceAll(string(b), placeholder, plaintext))
}

// TestTableMatchesCreateTable: the table of template.yaml is the one dynamo.CreateTable makes.
func TestTableMatchesCreateTable(t *testing.T) {
	client := dynamotest.MustClient(t)
	name := dynamotest.MustTable(t, client, dynamo.CreateTable)
	ctx := context.Background()
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &name})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Table

	p := get(mustTemplate(t), "Resources", "Table", "Properties")
	var attrs []string
	for _, a := range get(p, "AttributeDefinitions").([]any) {
		attrs = append(attrs, str(get(a, "AttributeName"))+":"+str(get(a, "AttributeType")))
	}
	var wantAttrs []string
	for _, a := range d.AttributeDefinitions {
		wantAttrs = append(wantAttrs, *a.AttributeName+":"+string(a.AttributeType))
	}
	slices.Sort(attrs)
	slices.Sort(wantAttrs)
	if !slices.Equal(attrs, wantAttrs) {
		t.Errorf("AttributeDefinitions %v, CreateTable makes %v", attrs, wantAttrs)
	}
	if got, want := keySchema(get(p, "KeySchema")), describedKeys(d.KeySchema); got != want {
		t.Errorf("KeySchema %s, CreateTable makes %s", got, want)
	}
	var gsis, wantGSIs []string
	for _, g := range get(p, "GlobalSecondaryIndexes").([]any) {
		gsis = append(gsis, str(get(g, "IndexName"))+" "+keySchema(get(g, "KeySchema"))+" "+str(get(g, "Projection", "ProjectionType"))+
			" "+strings.Join(toStrings(get(g, "Projection", "NonKeyAttributes")), ","))
	}
	for _, g := range d.GlobalSecondaryIndexes {
		wantGSIs = append(wantGSIs, *g.IndexName+" "+describedKeys(g.KeySchema)+" "+string(g.Projection.ProjectionType)+
			" "+strings.Join(g.Projection.NonKeyAttributes, ","))
	}
	if !slices.Equal(gsis, wantGSIs) {
		t.Errorf("GlobalSecondaryIndexes %v, CreateTable makes %v", gsis, wantGSIs)
	}
	if got := str(get(p, "TimeToLiveSpecification", "AttributeName")); ttl.TimeToLiveDescription == nil || got != *ttl.TimeToLiveDescription.AttributeName {
		t.Errorf("TTL attribute %q, CreateTable enables %+v", got, ttl.TimeToLiveDescription)
	}
	if spec := d.StreamSpecification; spec == nil || spec.StreamEnabled == nil || !*spec.StreamEnabled || str(get(p, "StreamSpecification", "StreamViewType")) != string(spec.StreamViewType) {
		t.Errorf("stream: template %v, CreateTable %+v", get(p, "StreamSpecification"), spec)
	}
	if d.BillingModeSummary == nil || d.BillingModeSummary.BillingMode != types.BillingModePayPerRequest || get(p, "BillingMode") != "PAY_PER_REQUEST" {
		t.Errorf("billing: template %v, CreateTable %+v", get(p, "BillingMode"), d.BillingModeSummary)
	}
}

func keySchema(v any) string {
	var parts []string
	for _, k := range v.([]any) {
		parts = append(parts, str(get(k, "AttributeName"))+" "+str(get(k, "KeyType")))
	}
	return strings.Join(parts, ", ")
}

func describedKeys(ks []types.KeySchemaElement) string {
	var parts []string
	for _, k := range ks {
		parts = append(parts, *k.AttributeName+" "+string(k.KeyType))
	}
	return strings.Join(parts, ", ")
}

// TestBinariesAgainstDynamoDBLocal runs the real bootstrap binaries of the management API's
// authorizer and of the create, list and audit functions under tools/lambdarun, as make invoke
// does, on one table: the authorizer admits a manage token and its context, put in the list and
// audit events as API Gateway would, lets the list function list what the create function
// created, and the audit function show the create event of each, with the request it came from.
func TestBinariesAgainstDynamoDBLocal(t *testing.T) {
	endpoint := dynamotest.MustEndpoint(t)
	client := dynamotest.MustClient(t)
	table := dynamotest.MustTable(t, client, dynamo.CreateTable)
	env := append([]string{"TABLE_NAME=" + table}, awsEnv(endpoint)...)
	admin := mustSeedPlaintext(t, dynamo.New(client, table, dynamo.Options{}), "acme", "manage")

	// The management API's authorizer, with the environment template.yaml gives it: a valid token
	// is admitted with its context, an unknown one is not.
	authorizerEnv := append(functionEnv(t, mustTemplate(t), "ManagementAuthorizerFunction", nil, map[string]string{"Table": table}), awsEnv(endpoint)...)
	authorizerBin := mustBinary(t, "functions/authorizer")
	event := withToken(t, filepath.Join(root, "events", "authorizer-http-v2.json"), admin)
	unknown := withToken(t, filepath.Join(root, "events", "authorizer-http-v2.json"),
		token.Format(token.DefaultPrefix, "live", token.NewID(), token.NewSecret()))
	var allowed, denied events.APIGatewayV2CustomAuthorizerSimpleResponse
	if err := json.Unmarshal(mustInvoke(t, authorizerBin, event, authorizerEnv, 2)[1], &allowed); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mustInvoke(t, authorizerBin, unknown, authorizerEnv, 1)[0], &denied); err != nil {
		t.Fatal(err)
	}
	if !allowed.IsAuthorized || denied.IsAuthorized {
		t.Fatalf("authorizer: admitted %v for a valid token and %v for an unknown one", allowed.IsAuthorized, denied.IsAuthorized)
	}
	for _, key := range []string{authorizer.ContextTokenID, authorizer.ContextOwner, authorizer.ContextPermissions, authorizer.ContextName, authorizer.ContextExpiresAt} {
		if _, ok := allowed.Context[key]; !ok {
			t.Errorf("authorizer context lacks %q, which the route functions read: %v", key, allowed.Context)
		}
	}

	// The create function, twice in one warm container; it reads its caller, the token the
	// event's authorizer context names.
	seed(t, dynamo.New(client, table, dynamo.Options{}), mustEvent(t, "create.json"), eventCase{}, "")
	createEvent, err := os.ReadFile(filepath.Join(root, "events", "create.json"))
	if err != nil {
		t.Fatal(err)
	}
	var created []string
	for _, raw := range mustInvoke(t, mustBinary(t, "functions/create"), createEvent, env, 2) {
		resp := mustProxyResponse(t, raw)
		var body struct {
			ID    string `json:"id"`
			Token string `json:"token"`
		}
		if resp.StatusCode != 201 || json.Unmarshal([]byte(resp.Body), &body) != nil || body.Token == "" {
			t.Fatalf("create: %d %s", resp.StatusCode, resp.Body)
		}
		created = append(created, body.ID)
	}

	// The list function, with the authorizer's context as API Gateway passes it.
	listEvent := mustEvent(t, "list.json")
	listEvent.RequestContext.Authorizer.Lambda = allowed.Context
	b, err := json.Marshal(listEvent)
	if err != nil {
		t.Fatal(err)
	}
	resp := mustProxyResponse(t, mustInvoke(t, mustBinary(t, "functions/list"), b, env, 1)[0])
	if resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, resp.Body)
	}
	for _, id := range created {
		if !strings.Contains(resp.Body, `"id":"`+id+`"`) {
			t.Errorf("list does not show token %s created by the create function: %s", id, resp.Body)
		}
	}

	// The audit function, on the owner's whole trail.
	auditEvent := mustEvent(t, "audit.json")
	auditEvent.RequestContext.Authorizer.Lambda = allowed.Context
	auditEvent.RawQueryString, auditEvent.QueryStringParameters = "", nil
	if b, err = json.Marshal(auditEvent); err != nil {
		t.Fatal(err)
	}
	resp = mustProxyResponse(t, mustInvoke(t, mustBinary(t, "functions/audit"), b, env, 1)[0])
	var trail struct {
		Events []struct {
			Action, TokenID, ActorTokenID, RequestID string
		}
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &trail) != nil {
		t.Fatalf("audit: %d %s", resp.StatusCode, resp.Body)
	}
	createRequest := mustEvent(t, "create.json").RequestContext
	for _, id := range created {
		n := 0
		for _, e := range trail.Events {
			if e.TokenID != id {
				continue
			}
			n++
			if e.Action != "create" || e.ActorTokenID != createRequest.Authorizer.Lambda[authorizer.ContextTokenID] || e.RequestID != createRequest.RequestID {
				t.Errorf("audit event of token %s: %+v, want the create by %v in request %s", id, e, createRequest.Authorizer.Lambda[authorizer.ContextTokenID], createRequest.RequestID)
			}
		}
		if n != 1 {
			t.Errorf("audit shows %d events of token %s created by the create function, want 1: %s", n, id, resp.Body)
		}
	}
}
