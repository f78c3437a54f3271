package samtest

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
)

// The tests of this file run against the DynamoDB Local of `make test` (DYNAMODB_ENDPOINT).

// callRecorder records the IAM actions a client's calls need, as "table dynamodb:GetItem" or
// "index dynamodb:Query": a transaction needs the action of each of its items.
type callRecorder struct {
	mu      sync.Mutex
	actions map[string]bool
}

func (c *callRecorder) register(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("recordActions",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.record(awsmiddleware.GetOperationName(ctx), in.Parameters)
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

func (c *callRecorder) record(op string, params any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.actions == nil {
		c.actions = map[string]bool{}
	}
	switch in := params.(type) {
	case *dynamodb.TransactWriteItemsInput:
		for _, item := range in.TransactItems {
			switch {
			case item.Put != nil:
				c.actions["table dynamodb:PutItem"] = true
			case item.Update != nil:
				c.actions["table dynamodb:UpdateItem"] = true
			case item.Delete != nil:
				c.actions["table dynamodb:DeleteItem"] = true
			case item.ConditionCheck != nil:
				c.actions["table dynamodb:ConditionCheckItem"] = true
			}
		}
	case *dynamodb.QueryInput:
		resource := "table"
		if in.IndexName != nil {
			resource = "index"
		}
		c.actions[resource+" dynamodb:Query"] = true
	default:
		c.actions["table dynamodb:"+op] = true
	}
}

// take returns the actions recorded since the last take as a policy.
func (c *callRecorder) take() policy {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := policy{}
	for _, a := range slices.Sorted(maps.Keys(c.actions)) {
		resource, action, _ := strings.Cut(a, " ")
		p[resource] = append(p[resource], action)
	}
	c.actions = nil
	return p
}

// TestPoliciesAllowExactlyTheCalls answers every route event on the DynamoDB store, as the
// route functions do, and every authorizer event through pkg/authorizer, and checks that each
// function's policy in template.yaml allows exactly the calls made: none denied in AWS, none
// granted for nothing. Target tokens hold a clientId, so updates, rotations and revocations
// take their transactional path too.
func TestPoliciesAllowExactlyTheCalls(t *testing.T) {
	client := dynamotest.MustClient(t)
	var rec callRecorder
	recording := dynamotest.MustClient(t, rec.register)
	policies := functionPolicies(t, mustTemplate(t))

	made := map[string]policy{}
	for _, tc := range eventCases {
		rt, ok := routeOf(tc.function)
		if !ok {
			continue
		}
		t.Run(tc.file, func(t *testing.T) {
			table := dynamotest.MustTable(t, client, dynamo.CreateTable)
			ev := mustEvent(t, tc.file)
			seed(t, dynamo.New(client, table, dynamo.Options{}), ev, tc.target, "github-actions")
			rec.take()
			resp := mustProxy(t, dynamo.New(recording, table, dynamo.Options{}), rt.Pattern, ev)
			checkAnswer(t, tc, resp.StatusCode, resp.Body)
			made[logicalID(tc.function)] = merge(made[logicalID(tc.function)], rec.take())
		})
	}

	t.Run("authorizer", func(t *testing.T) {
		table := dynamotest.MustTable(t, client, dynamo.CreateTable)
		plaintext := mustSeedPlaintext(t, dynamo.New(client, table, dynamo.Options{}), "acme", "manage")
		a := authorizer.New(dynamo.New(recording, table, dynamo.Options{}), authorizer.Config{})
		rec.take()
		for _, file := range mustAuthorizerEvents(t) {
			if _, err := a.Handle(context.Background(), withToken(t, file, plaintext)); err != nil && err != authorizer.ErrUnauthorized {
				t.Errorf("%s: %v", file, err)
			}
		}
		made["AuthorizerFunction"] = merge(made["AuthorizerFunction"], rec.take())
	})

	for id, p := range made {
		if !equalPolicy(p, policies[id]) {
			t.Errorf("%s calls need %v; template.yaml allows %v", id, p, policies[id])
		}
	}
}

func merge(a, b policy) policy {
	out := policy{}
	for _, p := range []policy{a, b} {
		for r, actions := range p {
			for _, x := range actions {
				if !slices.Contains(out[r], x) {
					out[r] = append(out[r], x)
				}
			}
		}
	}
	for r := range out {
		slices.Sort(out[r])
	}
	return out
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
		gsis = append(gsis, str(get(g, "IndexName"))+" "+keySchema(get(g, "KeySchema"))+" "+str(get(g, "Projection", "ProjectionType")))
	}
	for _, g := range d.GlobalSecondaryIndexes {
		wantGSIs = append(wantGSIs, *g.IndexName+" "+describedKeys(g.KeySchema)+" "+string(g.Projection.ProjectionType))
	}
	if !slices.Equal(gsis, wantGSIs) {
		t.Errorf("GlobalSecondaryIndexes %v, CreateTable makes %v", gsis, wantGSIs)
	}
	if got := str(get(p, "TimeToLiveSpecification", "AttributeName")); ttl.TimeToLiveDescription == nil || got != *ttl.TimeToLiveDescription.AttributeName {
		t.Errorf("TTL attribute %q, CreateTable enables %+v", got, ttl.TimeToLiveDescription)
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

// TestBinariesAgainstDynamoDBLocal runs the real bootstrap binaries of the authorizer and of the
// create and list functions under tools/lambdarun, as make invoke does, on one table: the
// authorizer admits a manage token and its context, put in the list event as API Gateway would,
// lets the list function list what the create function created.
func TestBinariesAgainstDynamoDBLocal(t *testing.T) {
	endpoint := dynamotest.MustEndpoint(t)
	client := dynamotest.MustClient(t)
	table := dynamotest.MustTable(t, client, dynamo.CreateTable)
	env := []string{
		"TABLE_NAME=" + table, "AWS_ENDPOINT_URL_DYNAMODB=" + endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_SESSION_TOKEN=", "AWS_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true",
	}
	admin := mustSeedPlaintext(t, dynamo.New(client, table, dynamo.Options{}), "acme", "manage")

	// The authorizer: a valid token is admitted with its context, an unknown one is not.
	authorizerBin := mustBinary(t, "functions/authorizer")
	event := withToken(t, filepath.Join(root, "events", "authorizer-http-v2.json"), admin)
	unknown := withToken(t, filepath.Join(root, "events", "authorizer-http-v2.json"),
		token.Format(token.DefaultPrefix, "live", token.NewID(), token.NewSecret()))
	var allowed, denied events.APIGatewayV2CustomAuthorizerSimpleResponse
	if err := json.Unmarshal(mustInvoke(t, authorizerBin, event, env, 2)[1], &allowed); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mustInvoke(t, authorizerBin, unknown, env, 1)[0], &denied); err != nil {
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

	// The create function, twice in one warm container.
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
}
