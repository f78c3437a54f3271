package samtest

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/token"
)

// grant is one Allow statement of a function's IAM policy, reduced to what DynamoDB evaluates.
// The conditions are the only ones the tests can evaluate; any other condition fails the test
// that reads the template, so that no condition is ever silently ignored.
type grant struct {
	Resource     string   // "table", "index" (any index) or "index/<name>" (that index only)
	Actions      []string // sorted
	LeadingKeys  []string // ForAllValues:StringLike dynamodb:LeadingKeys; nil: any item
	Attributes   []string // ForAllValues:StringEquals dynamodb:Attributes; nil: any attribute
	ReturnValues []string // StringEqualsIfExists dynamodb:ReturnValues; nil: any
}

// String is g in one line, its lists sorted, so that equal grants print alike.
func (g grant) String() string {
	list := func(v []string, sep string) string { return strings.Join(slices.Sorted(slices.Values(v)), sep) }
	s := g.Resource + " " + list(g.Actions, ",")
	if g.LeadingKeys != nil {
		s += " LeadingKeys like " + list(g.LeadingKeys, "|")
	}
	if g.Attributes != nil {
		s += " Attributes in " + list(g.Attributes, ",")
	}
	if g.ReturnValues != nil {
		s += " ReturnValues in " + list(g.ReturnValues, ",")
	}
	return s
}

// dynamoCall is one DynamoDB request as IAM authorizes it: a transaction is one call per item.
type dynamoCall struct {
	Action       string   // "dynamodb:GetItem"
	Resource     string   // "table" or "index"
	Index        string   // the index a Query names; "" for the table
	LeadingKey   string   // the partition key value the request names; "" when unknown
	Attributes   []string // attribute names read, written or compared; nil: every attribute (a read without projection)
	ReturnValues string   // "" when the request sets none
}

func (c dynamoCall) String() string {
	attrs := "*"
	if c.Attributes != nil {
		attrs = strings.Join(c.Attributes, ",")
	}
	resource := c.Resource
	if c.Index != "" {
		resource += "/" + c.Index
	}
	return fmt.Sprintf("%s %s on %q (attributes %s, ReturnValues %q)", resource, c.Action, c.LeadingKey, attrs, c.ReturnValues)
}

// allows reports whether g allows c, as IAM evaluates the statement.
func (g grant) allows(c dynamoCall) bool {
	if g.Resource != c.Resource && g.Resource != c.Resource+"/"+c.Index || !slices.Contains(g.Actions, c.Action) {
		return false
	}
	if g.LeadingKeys != nil && !g.leadingKeyMatches(c.LeadingKey) {
		return false
	}
	if g.Attributes != nil {
		if c.Attributes == nil {
			return false
		}
		for _, a := range c.Attributes {
			if !slices.Contains(g.Attributes, a) {
				return false
			}
		}
	}
	if g.ReturnValues != nil && c.ReturnValues != "" && !slices.Contains(g.ReturnValues, c.ReturnValues) {
		return false
	}
	return true
}

// leadingKeyMatches: an unknown key never matches a LeadingKeys condition here (IAM's
// ForAllValues would even let a request naming no key through: such requests must not happen).
func (g grant) leadingKeyMatches(key string) bool {
	if key == "" {
		return false
	}
	return slices.ContainsFunc(g.LeadingKeys, func(p string) bool { return stringLike(p, key) })
}

// stringLike is IAM's StringLike: * matches any characters, ? one.
func stringLike(pattern, s string) bool {
	// path.Match treats / specially and knows [ ]; token keys hold neither.
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}

// functionGrants returns the grants of every function of tpl, with resourceOf naming the
// resource of a statement ("table", "index", or "" when it is neither).
func functionGrants(t *testing.T, tpl tree, resourceOf func(any) string) map[string][]grant {
	t.Helper()
	out := map[string][]grant{}
	for id, fn := range resourcesOfType(tpl, "AWS::Serverless::Function") {
		out[id] = []grant{}
		policies, _ := get(fn, "Properties", "Policies").([]any)
		for _, doc := range policies {
			statements, ok := get(doc, "Statement").([]any)
			if !ok {
				t.Errorf("%s: policy %v is not an inline statement list; least privilege is spelled out here", id, doc)
				continue
			}
			for _, st := range statements {
				if isPutEvents(st) {
					continue // the lifecycle events' grant: TestPutEventsGrants
				}
				if g, ok := parseGrant(t, id, st, resourceOf); ok {
					out[id] = append(out[id], g)
				}
			}
		}
	}
	return out
}

func parseGrant(t *testing.T, id string, st any, resourceOf func(any) string) (grant, bool) {
	t.Helper()
	if get(st, "Effect") != "Allow" {
		t.Errorf("%s: statement %v is not an Allow", id, st)
		return grant{}, false
	}
	g := grant{Resource: resourceOf(get(st, "Resource"))}
	if g.Resource == "" {
		t.Errorf("%s: statement resource %v is neither the table nor its indexes", id, get(st, "Resource"))
		return grant{}, false
	}
	for _, a := range toStrings(get(st, "Action")) {
		if !strings.HasPrefix(a, "dynamodb:") || strings.Contains(a, "*") {
			t.Errorf("%s: action %q: want a single dynamodb action", id, a)
		}
		g.Actions = append(g.Actions, a)
	}
	slices.Sort(g.Actions)
	cond, _ := get(st, "Condition").(tree)
	for op, keys := range cond {
		km, _ := keys.(tree)
		for key, v := range km {
			values := toStrings(v)
			switch op + " " + key {
			case "ForAllValues:StringLike dynamodb:LeadingKeys":
				g.LeadingKeys = values
			case "ForAllValues:StringEquals dynamodb:Attributes":
				g.Attributes = values
			case "StringEqualsIfExists dynamodb:ReturnValues":
				g.ReturnValues = values
			default:
				t.Errorf("%s: condition %s %s: not one these tests evaluate (LeadingKeys StringLike, Attributes StringEquals, ReturnValues StringEqualsIfExists)", id, op, key)
			}
		}
	}
	return g, true
}

// mainResource names the resources of template.yaml: its table and the table's indexes.
func mainResource(r any) string {
	switch {
	case slices.Equal(toStrings(get(r, "Fn::GetAtt")), []string{"Table", "Arn"}):
		return "table"
	case slices.Equal(toStrings(get(r, "Fn::GetAtt")), []string{"Table", "StreamArn"}):
		return "stream"
	case str(get(r, "Fn::Sub")) == "${Table.Arn}/index/*":
		return "index"
	case strings.HasPrefix(str(get(r, "Fn::Sub")), "${Table.Arn}/index/"):
		return strings.TrimPrefix(str(get(r, "Fn::Sub")), "${Table.Arn}/")
	}
	return ""
}

// appResource names the resources of authorizer/template.yaml: the table of its TableArn.
func appResource(r any) string {
	if ref(r) == "TableArn" {
		return "table"
	}
	return ""
}

// Least privilege of the authorizers (both roles, one binary): token records are read whole
// (GetItem), and their writes are held to the usage attributes; quota counters and quota events
// to theirs (quotaLeaseGrant, quotaEventGrant); rate-limit windows are written
// by an ADD of count that sets ttl and returns only what it updated, so those writes are held to
// their attributes too (dynamodb:Attributes needs the key, and ReturnValues that return only
// these attributes).
var authorizerGrants = []grant{
	{Resource: "table", Actions: []string{"dynamodb:GetItem"}, LeadingKeys: []string{tokenItems}},
	// Usage writes; quotas are leased from their counters (quotaLeaseGrant).
	{Resource: "table", Actions: []string{"dynamodb:UpdateItem"}, LeadingKeys: []string{tokenItems},
		Attributes:   []string{"pk", "lastUsedAt", "usageCount"},
		ReturnValues: noneOrUpdated},
	quotaLeaseGrant,
	quotaEventGrant,
	rateGrant,
	usageGrant,
	graceGrant,
}

var (
	// graceGrant: Store.EndGrace, the first use of a new secret ending the old one's grace
	// (rotation with grace untilFirstUse); its condition reads the flag, the deadline, the
	// version and purgeAt.
	graceGrant = grant{Resource: "table", Actions: []string{"dynamodb:UpdateItem"}, LeadingKeys: []string{tokenItems},
		Attributes: []string{"pk", "prevSecretUntil", "prevUntilFirstUse", "updatedAt", "version", "purgeAt"}, ReturnValues: noneOrUpdated}
)

var (
	// quotaLeaseGrant: leases of a quota's counter (pkg/token/lease.go), its refill, the return of
	// unused uses and its creation for a token made before counters: UpdateItem only.
	quotaLeaseGrant = grant{Resource: "table", Actions: []string{"dynamodb:UpdateItem"}, LeadingKeys: []string{quotaItems},
		Attributes: []string{"pk", "remaining", "refilledAt", "refillAmount", "refillInterval", "ttl"}, ReturnValues: noneOrUpdated}
	noneOrUpdated = []string{"NONE", "UPDATED_OLD", "UPDATED_NEW"}
	rateGrant     = grant{Resource: "table", Actions: []string{"dynamodb:UpdateItem"}, LeadingKeys: []string{rateItems},
		Attributes: []string{"pk", "count", "ttl"}, ReturnValues: noneOrUpdated}
	// usageGrant: the day's usage counters, an ADD of valid and of each refusal code that sets ttl.
	usageGrant = grant{Resource: "table", Actions: []string{"dynamodb:UpdateItem"}, LeadingKeys: []string{usageItems},
		Attributes: append([]string{"pk", "ttl", "valid"}, token.RefusalCodes...), ReturnValues: noneOrUpdated}
)

// Item prefixes of the table (pkg/dynamo/item.go), as dynamodb:LeadingKeys patterns.
const (
	tokenItems  = "TOKEN#*"
	clientItems = "CLIENT#*"
	auditItems  = "AUDIT#*"
	rateItems   = "RATE#*"
	usageItems  = "USAGE#*"
	quotaItems  = "QUOTA#*"
	quotaEvents = "QUOTAEVENT#*"
	remindItems = "REMIND#*"
)

// quotaEventGrant: a quota event recorded once (Store.ClaimQuotaEvent), a conditional PutItem.
var quotaEventGrant = grant{Resource: "table", Actions: []string{"dynamodb:PutItem"}, LeadingKeys: []string{quotaEvents},
	Attributes: []string{"pk", "type", "detail", "ttl"}, ReturnValues: []string{"NONE"}}

// quotaSync: a token's change keeps its quota counter's TTL and refill settings (in its transaction).
var quotaSync = grant{Resource: "table", Actions: []string{"dynamodb:UpdateItem"}, LeadingKeys: []string{quotaItems}}

// quotaRead: the live counters of tokens with a quota (Service.liveQuotas), one BatchGetItem.
var quotaRead = grant{Resource: "table", Actions: []string{"dynamodb:BatchGetItem"}, LeadingKeys: []string{quotaItems}}

// wantGrants is the least privilege of each function of template.yaml, derived from the Store
// calls its route makes (pkg/dynamo/store.go), item prefix by item prefix;
// TestPoliciesAllowExactlyTheCalls (DynamoDB Local) checks it against the calls the handlers and
// the authorizer binary really make. A transaction needs the actions of its items: every change
// is one TransactWriteItems with the put of its audit event.
var wantGrants = map[string][]grant{
	// FindToken of a caller that is not an admin (its ceilings, pkg/token/attenuation.go), then
	// CreateToken: a transaction of Puts (token, audit event, clientId marker).
	"CreateFunction": {
		{Resource: "table", Actions: []string{"dynamodb:GetItem", "dynamodb:PutItem"}, LeadingKeys: []string{tokenItems}},
		{Resource: "table", Actions: []string{"dynamodb:PutItem"}, LeadingKeys: []string{auditItems, clientItems}},
		quotaRead,
		{Resource: "table", Actions: []string{"dynamodb:PutItem"}, LeadingKeys: []string{quotaItems}},
	},
	// ListTokens: Query on the owner index, or the ref index for ?createdBy; then WindowCounts of
	// the page's rate-limited tokens: one BatchGetItem.
	"ListFunction": {
		{Resource: "index", Actions: []string{"dynamodb:Query"}},
		{Resource: "table", Actions: []string{"dynamodb:BatchGetItem"}, LeadingKeys: []string{rateItems, quotaItems}},
	},
	// FindToken: GetItem.
	"SelfFunction": {{Resource: "table", Actions: []string{"dynamodb:GetItem"}, LeadingKeys: []string{tokenItems}}, quotaRead},
	// FindToken, then WindowCounts of a rate-limited token: BatchGetItem.
	"GetFunction": {
		{Resource: "table", Actions: []string{"dynamodb:GetItem"}, LeadingKeys: []string{tokenItems}},
		{Resource: "table", Actions: []string{"dynamodb:BatchGetItem"}, LeadingKeys: []string{rateItems, quotaItems}},
	},
	// FindToken, then UsageDays: one BatchGetItem of the days' counters.
	"UsageFunction": {
		{Resource: "table", Actions: []string{"dynamodb:GetItem"}, LeadingKeys: []string{tokenItems}},
		{Resource: "table", Actions: []string{"dynamodb:BatchGetItem"}, LeadingKeys: []string{usageItems}},
	},
	// FindToken, then UpdateToken: a transaction of Update (token), Put (audit event) and Put
	// (claim the clientId).
	"UpdateFunction": append(updateGrants[:2:2], quotaRead,
		grant{Resource: "table", Actions: []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}, LeadingKeys: []string{quotaItems}}),
	"RotateFunction": append(updateGrants[:2:2], quotaRead, quotaSync),
	// FindToken, then UpdateToken of a revoke: a transaction of Update (token), Put (audit event)
	// and Delete (release the clientId); with ?cascade=true, ListTokens on the ref index for each
	// token of the family, and the same transaction for each descendant.
	"RevokeFunction": {
		{Resource: "table", Actions: []string{"dynamodb:GetItem", "dynamodb:UpdateItem"}, LeadingKeys: []string{tokenItems}},
		{Resource: "table", Actions: []string{"dynamodb:PutItem"}, LeadingKeys: []string{auditItems}},
		{Resource: "table", Actions: []string{"dynamodb:DeleteItem"}, LeadingKeys: []string{clientItems}},
		{Resource: "index", Actions: []string{"dynamodb:Query"}},
		quotaRead,
		quotaSync,
	},
	// FindToken, then RecordUse of a valid token: UpdateItem of the token and, in parallel, of the
	// day's counters (also written alone for refusals).
	"VerifyFunction": {
		{Resource: "table", Actions: []string{"dynamodb:GetItem"}, LeadingKeys: []string{tokenItems}},
		{Resource: "table", Actions: []string{"dynamodb:UpdateItem"}, LeadingKeys: []string{tokenItems},
			Attributes:   []string{"pk", "lastUsedAt", "usageCount"},
			ReturnValues: noneOrUpdated},
		quotaLeaseGrant,
		quotaEventGrant,
		rateGrant,
		usageGrant,
		graceGrant,
	},
	// FindTokens of the reported tokens: BatchGetItem; then for each confirmed one UpdateToken: a
	// transaction of Update (token), Put (audit event) and, for a token with a clientId, Delete
	// (a revoke releases the marker) or Put (a disable claims it, LEAK_ACTION=disable).
	"LeaksFunction": {
		{Resource: "table", Actions: []string{"dynamodb:BatchGetItem", "dynamodb:UpdateItem"}, LeadingKeys: []string{tokenItems}},
		{Resource: "table", Actions: []string{"dynamodb:PutItem"}, LeadingKeys: []string{auditItems, clientItems}},
		{Resource: "table", Actions: []string{"dynamodb:DeleteItem"}, LeadingKeys: []string{clientItems}},
		quotaSync,
	},
	// CountRequest of the caller's address (an ADD on its RATE# window), FindToken, then the
	// revoke's transaction as DELETE /tokens/{id} makes it.
	"RevokeByTokenFunction": {
		{Resource: "table", Actions: []string{"dynamodb:GetItem", "dynamodb:UpdateItem"}, LeadingKeys: []string{tokenItems}},
		{Resource: "table", Actions: []string{"dynamodb:PutItem"}, LeadingKeys: []string{auditItems}},
		{Resource: "table", Actions: []string{"dynamodb:DeleteItem"}, LeadingKeys: []string{clientItems}},
		rateGrant,
		quotaSync,
	},
	// ListAudit: Query on the ref index (one owner's events) or the owner index (every owner's).
	"AuditFunction":                {{Resource: "index", Actions: []string{"dynamodb:Query"}}},
	"ManagementAuthorizerFunction": authorizerGrants,
	// The example API's backend reads the authorizer's context, not the table.
	"ExampleWhoamiFunction": {},
	// The OpenAPI document is embedded in the binary: no call at all.
	"OpenapiFunction": {},
	// The expiry reminders: ExpiringTokens, a Query of the expiry index only (which projects no
	// secret hash); ClaimReminder, a conditional PutItem, and ReleaseReminder, a DeleteItem, of
	// REMIND# claims. They never touch a token.
	remindersFunction: {
		{Resource: "index/expiry", Actions: []string{"dynamodb:Query"}},
		{Resource: "table", Actions: []string{"dynamodb:DeleteItem", "dynamodb:PutItem"}, LeadingKeys: []string{remindItems}},
	},
	// The quota events: the records of the table's stream, which its event source mapping reads
	// (a grant on the stream, not the table); it never calls DynamoDB itself.
	"QuotaEventsFunction": {{Resource: "stream", Actions: []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}}},
	// GET /me answers from the authorizer's context; the dashboard serves embedded files.
	"MeFunction":        {},
	"DashboardFunction": {},
}

// updateGrants are the grants of a change that keeps the token live (update, rotate).
var updateGrants = []grant{
	{Resource: "table", Actions: []string{"dynamodb:GetItem", "dynamodb:UpdateItem"}, LeadingKeys: []string{tokenItems}},
	{Resource: "table", Actions: []string{"dynamodb:PutItem"}, LeadingKeys: []string{auditItems, clientItems}},
}

// wantAppGrants is the least privilege of the function of authorizer/template.yaml.
var wantAppGrants = map[string][]grant{"AuthorizerFunction": authorizerGrants}

func TestPoliciesLeastPrivilege(t *testing.T) {
	for _, tc := range []struct {
		file       string
		resourceOf func(any) string
		want       map[string][]grant
	}{
		{"template.yaml", mainResource, wantGrants},
		{appTemplate, appResource, wantAppGrants},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := functionGrants(t, mustTemplateFile(t, tc.file), tc.resourceOf)
			for id, want := range tc.want {
				if !equalGrants(got[id], want) {
					t.Errorf("%s allows %v, want %v", id, got[id], want)
				}
			}
			for id, g := range got {
				if _, ok := tc.want[id]; !ok {
					t.Errorf("%s: no least-privilege policy on record for it (allows %v)", id, g)
				}
			}
		})
	}
}

// TestAuthorizerGrantsScoped: every statement of an authorizer's role names the items it may
// touch, and any attribute restriction is one DynamoDB can enforce for the calls it covers.
func TestAuthorizerGrantsScoped(t *testing.T) {
	for _, g := range authorizerGrants {
		if len(g.LeadingKeys) == 0 {
			t.Errorf("%v: no dynamodb:LeadingKeys: an authorizer may touch TOKEN#, RATE#, USAGE#, QUOTA# and QUOTAEVENT# items only", g)
		}
		for _, k := range g.LeadingKeys {
			if k != tokenItems && k != rateItems && k != usageItems && k != quotaItems && k != quotaEvents {
				t.Errorf("%v: leading key %q is neither a token record, a rate-limit window, usage counters nor a quota counter", g, k)
			}
		}
		if g.Attributes == nil {
			continue
		}
		if slices.Contains(g.Actions, "dynamodb:GetItem") {
			t.Errorf("%v: an attribute restriction on GetItem needs a projection, and the authorizer reads whole records", g)
		}
		if !slices.Contains(g.Attributes, "pk") {
			t.Errorf("%v: dynamodb:Attributes must list the key attribute pk", g)
		}
		if g.ReturnValues == nil || slices.Contains(g.ReturnValues, "ALL_NEW") || slices.Contains(g.ReturnValues, "ALL_OLD") {
			t.Errorf("%v: with dynamodb:Attributes, ReturnValues must be held to NONE, UPDATED_OLD or UPDATED_NEW, or the write returns every attribute", g)
		}
	}
}

// TestTableGrantsScoped: every statement of template.yaml on the table names the items it may
// touch, and the roles keep the records that matter out of reach: only CreateFunction puts a
// whole token, no function deletes a token, and audit events are only ever put, never updated
// or deleted (TTL removes them).
func TestTableGrantsScoped(t *testing.T) {
	for id, grants := range functionGrants(t, mustTemplate(t), mainResource) {
		for _, g := range grants {
			if g.Resource == "table" && len(g.LeadingKeys) == 0 {
				t.Errorf("%s: %v: no dynamodb:LeadingKeys: name the item prefixes (%s, %s, %s, %s, %s)", id, g, tokenItems, clientItems, auditItems, rateItems, usageItems)
			}
		}
		for _, tc := range []struct {
			action, key string
			allowed     bool
		}{
			{"dynamodb:PutItem", "TOKEN#abc", id == "CreateFunction"},
			{"dynamodb:DeleteItem", "TOKEN#abc", false},
			{"dynamodb:UpdateItem", "AUDIT#abc", false},
			{"dynamodb:DeleteItem", "AUDIT#abc", false},
		} {
			c := dynamoCall{Action: tc.action, Resource: "table", LeadingKey: tc.key}
			if got := slices.ContainsFunc(grants, func(g grant) bool { return g.allows(c) }); got && !tc.allowed {
				t.Errorf("%s may %s %s: %v", id, tc.action, tc.key, grants)
			}
		}
	}
}

// TestGrantEvaluation: the evaluation the recorded-calls test relies on decides as IAM does.
func TestGrantEvaluation(t *testing.T) {
	token, write, rate, quota := authorizerGrants[0], authorizerGrants[1], rateGrant, quotaLeaseGrant
	expiryQuery := wantGrants[remindersFunction][0]
	for _, tc := range []struct {
		name string
		g    grant
		c    dynamoCall
		want bool
	}{
		{"token read", token, dynamoCall{Action: "dynamodb:GetItem", Resource: "table", LeadingKey: "TOKEN#abc"}, true},
		{"token usage", write, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "TOKEN#abc", Attributes: []string{"pk", "lastUsedAt", "usageCount"}}, true},
		{"token secret", write, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "TOKEN#abc", Attributes: []string{"pk", "secretHash"}}, false},
		{"token re-enabled", write, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "TOKEN#abc", Attributes: []string{"pk", "enabled"}}, false},
		{"token permissions", write, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "TOKEN#abc", Attributes: []string{"pk", "permissions"}}, false},
		{"token owner", write, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "TOKEN#abc", Attributes: []string{"pk", "owner"}}, false},
		{"token returning all", write, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "TOKEN#abc", Attributes: []string{"pk", "usageCount"}, ReturnValues: "ALL_NEW"}, false},
		{"token update by the read grant", token, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "TOKEN#abc", Attributes: []string{"pk", "usageCount"}}, false},
		{"client marker", token, dynamoCall{Action: "dynamodb:GetItem", Resource: "table", LeadingKey: "CLIENT#acme#ci"}, false},
		{"unknown key", token, dynamoCall{Action: "dynamodb:GetItem", Resource: "table"}, false},
		{"index", token, dynamoCall{Action: "dynamodb:GetItem", Resource: "index", LeadingKey: "TOKEN#abc"}, false},
		{"other action", token, dynamoCall{Action: "dynamodb:PutItem", Resource: "table", LeadingKey: "TOKEN#abc"}, false},
		{"window count", rate, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "RATE#abc#1", Attributes: []string{"pk", "count", "ttl"}, ReturnValues: "UPDATED_NEW"}, true},
		{"window without return values", rate, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "RATE#abc#1", Attributes: []string{"pk", "count"}}, true},
		{"window returning all", rate, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "RATE#abc#1", Attributes: []string{"pk", "count"}, ReturnValues: "ALL_NEW"}, false},
		{"window other attribute", rate, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "RATE#abc#1", Attributes: []string{"pk", "count", "owner"}}, false},
		{"window all attributes", rate, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "RATE#abc#1"}, false},
		{"token item as window", rate, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "TOKEN#abc", Attributes: []string{"pk", "count"}}, false},
		{"quota lease", quota, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "QUOTA#abc", Attributes: []string{"pk", "refilledAt", "remaining"}, ReturnValues: "UPDATED_NEW"}, true},
		{"quota returning all", quota, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "QUOTA#abc", Attributes: []string{"pk", "remaining"}, ReturnValues: "ALL_NEW"}, false},
		{"quota put", quota, dynamoCall{Action: "dynamodb:PutItem", Resource: "table", LeadingKey: "QUOTA#abc", Attributes: []string{"pk", "remaining"}}, false},
		{"token item as quota", quota, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "TOKEN#abc", Attributes: []string{"pk", "remaining"}}, false},
		{"token quota by the usage grant", write, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "TOKEN#abc", Attributes: []string{"pk", "remaining"}}, false},
		{"day counters", usageGrant, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "USAGE#abc#2026-11-22", Attributes: []string{"RATE_LIMITED", "pk", "ttl", "valid"}}, true},
		{"day counters of another attribute", usageGrant, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "USAGE#abc#2026-11-22", Attributes: []string{"pk", "usageCount"}}, false},
		{"token item as day counters", usageGrant, dynamoCall{Action: "dynamodb:UpdateItem", Resource: "table", LeadingKey: "TOKEN#abc", Attributes: []string{"pk", "valid"}}, false},
		{"expiry index", expiryQuery, dynamoCall{Action: "dynamodb:Query", Resource: "index", Index: "expiry"}, true},
		{"owner index by the expiry grant", expiryQuery, dynamoCall{Action: "dynamodb:Query", Resource: "index", Index: "owner"}, false},
		{"table by the expiry grant", expiryQuery, dynamoCall{Action: "dynamodb:Query", Resource: "table"}, false},
		{"expiry index by any-index grant", grant{Resource: "index", Actions: []string{"dynamodb:Query"}}, dynamoCall{Action: "dynamodb:Query", Resource: "index", Index: "expiry"}, true},
	} {
		if got := tc.g.allows(tc.c); got != tc.want {
			t.Errorf("%s: %v allows %v: %v, want %v", tc.name, tc.g, tc.c, got, tc.want)
		}
	}
}

func equalGrants(a, b []grant) bool {
	key := func(gs []grant) []string {
		var s []string
		for _, g := range gs {
			s = append(s, g.String())
		}
		slices.Sort(s)
		return s
	}
	return slices.Equal(key(a), key(b))
}
