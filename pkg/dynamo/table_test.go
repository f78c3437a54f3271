package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/apitokens/apitokens/pkg/token"
)

func TestCreateTable(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	table := MustTable(t, client)
	if err := CreateTable(ctx, client, table); err != nil {
		t.Fatalf("CreateTable on an existing table: %v", err)
	}

	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatalf("DescribeTimeToLive: %v", err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != attrTTL {
		t.Fatalf("TTL = %+v; want ENABLED on %q", d, attrTTL)
	}

	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatalf("DescribeTable: %v", err)
	}
	desc := out.Table
	if got := keySchema(desc.KeySchema); got != "pk HASH" {
		t.Errorf("key schema %q; want %q", got, "pk HASH")
	}
	if desc.BillingModeSummary == nil || desc.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing mode %+v; want PAY_PER_REQUEST", desc.BillingModeSummary)
	}
	want := map[string]string{ownerIndex: "owner HASH, sk RANGE", refIndex: "ref HASH, sk RANGE", expiryIndex: "expiryDay HASH, expiryAt RANGE"}
	if len(desc.GlobalSecondaryIndexes) != len(want) {
		t.Fatalf("%d global secondary indexes; want %d", len(desc.GlobalSecondaryIndexes), len(want))
	}
	for _, gsi := range desc.GlobalSecondaryIndexes {
		name := aws.ToString(gsi.IndexName)
		if keySchema(gsi.KeySchema) != want[name] || gsi.Projection == nil {
			t.Errorf("index %s (%s); want %q", name, keySchema(gsi.KeySchema), want[name])
			continue
		}
		// The expiry index never holds a secret hash: only what a reminder needs.
		wantType, wantAttrs := types.ProjectionTypeAll, []string(nil)
		if name == expiryIndex {
			wantType, wantAttrs = types.ProjectionTypeInclude, expiryProjection
		}
		if gsi.Projection.ProjectionType != wantType || !slices.Equal(gsi.Projection.NonKeyAttributes, wantAttrs) {
			t.Errorf("index %s projects %s %v; want %s %v", name, gsi.Projection.ProjectionType, gsi.Projection.NonKeyAttributes, wantType, wantAttrs)
		}
	}
}

// A table made before the expiry index is refused with the command that adds it; once the
// command has run (here its equivalent UpdateTable), CreateTable accepts the table.
func TestCreateTableNamesAMissingExpiryIndex(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	name := fmt.Sprintf("apitokens-noexpiry-%d-%d", os.Getpid(), time.Now().UnixNano())
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrOwner), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrRef), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema:              []types.KeySchemaElement{{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash}},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{index(ownerIndex, attrOwner), index(refIndex, attrRef)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	err = CreateTable(ctx, client, name)
	if err == nil || !strings.Contains(err.Error(), AddExpiryIndexCommand(name)) {
		t.Fatalf("CreateTable on a table without the expiry index: %v; want an error naming %s", err, AddExpiryIndexCommand(name))
	}
	// The command's index, as the AWS CLI would send it.
	command := AddExpiryIndexCommand(name)
	_, rest, _ := strings.Cut(command, "'")
	updatesJSON, _, _ := strings.Cut(rest, "'")
	var updates []types.GlobalSecondaryIndexUpdate
	if err := json.Unmarshal([]byte(updatesJSON), &updates); err != nil || len(updates) != 1 || updates[0].Create == nil {
		t.Fatalf("the command's --global-secondary-index-updates %s: %v", updatesJSON, err)
	}
	if got, want := updates[0].Create, expiryIndexDefinition(); aws.ToString(got.IndexName) != expiryIndex ||
		keySchema(got.KeySchema) != keySchema(want.KeySchema) || got.Projection.ProjectionType != want.Projection.ProjectionType ||
		!slices.Equal(got.Projection.NonKeyAttributes, want.Projection.NonKeyAttributes) {
		t.Fatalf("the command creates %+v, CreateTable %+v", got, want)
	}
	if !strings.Contains(command, "AttributeName=expiryDay,AttributeType=S AttributeName=expiryAt,AttributeType=S") {
		t.Fatalf("the command defines other attributes: %s", command)
	}
	_, err = client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrExpiryDay), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrExpiryAt), AttributeType: types.ScalarAttributeTypeS},
		},
		GlobalSecondaryIndexUpdates: updates,
	})
	if err != nil {
		t.Fatalf("UpdateTable adding the expiry index: %v", err)
	}
	if err := CreateTable(ctx, client, name); err != nil {
		t.Fatalf("CreateTable after the expiry index was added: %v", err)
	}
}

// TestCreateTableNamesAMissingRefIndex: a table made before the ref index existed is refused
// with the command that adds it, not used without it.
func TestCreateTableNamesAMissingRefIndex(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	name := fmt.Sprintf("apitokens-old-%d-%d", os.Getpid(), time.Now().UnixNano())
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrOwner), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema:              []types.KeySchemaElement{{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash}},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{index(ownerIndex, attrOwner)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	err = CreateTable(ctx, client, name)
	if err == nil || !strings.Contains(err.Error(), "update-table") || !strings.Contains(err.Error(), refIndex) {
		t.Fatalf("CreateTable on a table without the ref index: %v; want an error naming the update that adds it", err)
	}
}

// CreateTable completes an existing table, but never passes off one it cannot use as its own.
func TestCreateTableRefusesAForeignTable(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	name := fmt.Sprintf("apitokens-foreign-%d-%d", os.Getpid(), time.Now().UnixNano())
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("CreateTable without index: %v", err)
	}
	t.Cleanup(func() {
		if _, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Errorf("DeleteTable(%s): %v", name, err)
		}
	})
	if err := CreateTable(ctx, client, name); err == nil {
		t.Fatal("CreateTable accepted an existing table without the owner index")
	}
}

func keySchema(ks []types.KeySchemaElement) string {
	var s string
	for i, k := range ks {
		if i > 0 {
			s += ", "
		}
		s += aws.ToString(k.AttributeName) + " " + string(k.KeyType)
	}
	return s
}

// NewEnvClient takes region, credentials and endpoint from the environment, as Lambda sets it.
func TestNewEnvClient(t *testing.T) {
	env := map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB": MustEndpoint(t),
		"AWS_REGION":                "us-east-1",
		"AWS_ACCESS_KEY_ID":         "local",
		"AWS_SECRET_ACCESS_KEY":     "local",
	}
	ctx := context.Background()
	client, err := NewEnvClient(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("NewEnvClient: %v", err)
	}
	table := MustTable(t, client)
	if _, err := New(client, table, Options{}).FindToken(ctx, "0000000000000000"); token.ErrorCode(err) != token.ENOTFOUND {
		t.Fatalf("FindToken through NewEnvClient's client: %v; want not found", err)
	}
	for _, missing := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		_, err := NewEnvClient(func(k string) string {
			if k == missing {
				return ""
			}
			return env[k]
		})
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("without %s: %v; want an error naming it", missing, err)
		}
	}
}
