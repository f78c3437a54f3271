package dynamo

import (
	"context"
	"fmt"
	"os"
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
	want := map[string]string{ownerIndex: "owner HASH, sk RANGE", refIndex: "ref HASH, sk RANGE"}
	if len(desc.GlobalSecondaryIndexes) != len(want) {
		t.Fatalf("%d global secondary indexes; want %d", len(desc.GlobalSecondaryIndexes), len(want))
	}
	for _, gsi := range desc.GlobalSecondaryIndexes {
		name := aws.ToString(gsi.IndexName)
		if keySchema(gsi.KeySchema) != want[name] || gsi.Projection == nil || gsi.Projection.ProjectionType != types.ProjectionTypeAll {
			t.Errorf("index %s (%s) projecting %+v; want %q projecting ALL", name, keySchema(gsi.KeySchema), gsi.Projection, want[name])
		}
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
