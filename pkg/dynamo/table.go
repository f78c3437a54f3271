package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// tableWait bounds how long CreateTable waits for a new table to become active.
const tableWait = 5 * time.Minute

// CreateTable creates the token table with its owner, ref and expiry indexes (on-demand billing),
// waits until it is active, and enables TTL on the ttl attribute. It is idempotent: an existing
// table is completed rather than refused. Returns an error if a call fails, or if an existing
// table lacks an index (naming how to add the ref or expiry index to a table made before it) or
// has TTL on another attribute.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrOwner), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrRef), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrExpiryDay), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrExpiryAt), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{index(ownerIndex, attrOwner), index(refIndex, attrRef), expiryIndexDefinition()},
		StreamSpecification:    streamSpec,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamo: create table %s: %w", table, err)
	}

	out, err := waitActive(ctx, client, table)
	if err != nil {
		return err
	}
	if !hasIndex(out.Table, ownerIndex) {
		return fmt.Errorf("dynamo: table %s exists without the %s index: use another table name", table, ownerIndex)
	}
	if !hasIndex(out.Table, refIndex) {
		return fmt.Errorf("dynamo: table %s has no %s index (made before token families and the audit trail): add it, "+
			"e.g. aws dynamodb update-table --table-name %s --attribute-definitions AttributeName=ref,AttributeType=S "+
			"--global-secondary-index-updates '[{\"Create\":{\"IndexName\":\"ref\",\"KeySchema\":[{\"AttributeName\":\"ref\",\"KeyType\":\"HASH\"},"+
			"{\"AttributeName\":\"sk\",\"KeyType\":\"RANGE\"}],\"Projection\":{\"ProjectionType\":\"ALL\"}}}]', "+
			"or update the CloudFormation stack, which adds it", table, refIndex, table)
	}
	if !hasIndex(out.Table, expiryIndex) {
		return fmt.Errorf("dynamo: table %s has no %s index (made before expiry reminders): add it, e.g. %s, "+
			"or update the CloudFormation stack, which adds it; tokens get into it at their next write (README \"Expiry reminders\")",
			table, expiryIndex, AddExpiryIndexCommand(table))
	}
	if err := enableStream(ctx, client, table, out.Table); err != nil {
		return err
	}
	return enableTTL(ctx, client, table)
}

// AddExpiryIndexCommand is the AWS CLI command that adds the expiry index to a table made before
// it.
func AddExpiryIndexCommand(table string) string {
	nonKey, _ := json.Marshal(expiryProjection) // strings always encode
	return "aws dynamodb update-table --table-name " + table +
		" --attribute-definitions AttributeName=expiryDay,AttributeType=S AttributeName=expiryAt,AttributeType=S" +
		` --global-secondary-index-updates '[{"Create":{"IndexName":"expiry","KeySchema":[{"AttributeName":"expiryDay","KeyType":"HASH"},` +
		`{"AttributeName":"expiryAt","KeyType":"RANGE"}],"Projection":{"ProjectionType":"INCLUDE","NonKeyAttributes":` +
		string(nonKey) + `}}}]'`
}

// expiryIndexDefinition is expiryIndex: expiryDay and expiryAt, projecting expiryProjection.
func expiryIndexDefinition() types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(expiryIndex),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrExpiryDay), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrExpiryAt), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: expiryProjection},
	}
}

// index is a GSI on key and sk projecting every attribute.
func index(name, key string) types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(name),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(key), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}

func hasIndex(t *types.TableDescription, name string) bool {
	for _, gsi := range t.GlobalSecondaryIndexes {
		if aws.ToString(gsi.IndexName) == name {
			return true
		}
	}
	return false
}

// enableTTL turns TTL on for the ttl attribute unless it is on already (UpdateTimeToLive refuses
// to enable it twice).
func enableTTL(ctx context.Context, client *dynamodb.Client, table string) error {
	ttlOn := func() (bool, error) {
		out, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
		if err != nil {
			return false, fmt.Errorf("dynamo: describe TTL of %s: %w", table, err)
		}
		d := out.TimeToLiveDescription
		if d == nil {
			return false, nil
		}
		switch d.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if name := aws.ToString(d.AttributeName); name != attrTTL {
				return false, fmt.Errorf("dynamo: table %s has TTL on %q, not %q", table, name, attrTTL)
			}
			return true, nil
		}
		return false, nil
	}
	if on, err := ttlOn(); on || err != nil {
		return err
	}
	_, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		// A concurrent CreateTable may have enabled it in between.
		if on, _ := ttlOn(); on {
			return nil
		}
		return fmt.Errorf("dynamo: enable TTL on %s: %w", table, err)
	}
	return nil
}

// streamSpec is the table's stream: new images, for QuotaEventsFunction, which publishes the quota
// events recorded as QUOTAEVENT# items (Store.ClaimQuotaEvent).
var streamSpec = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage}

// enableStream turns the stream on for a table made before it (one UpdateTable, then a wait
// until the table is active again); a table with a stream of another view type is an error, as
// the function reads new images.
func enableStream(ctx context.Context, client *dynamodb.Client, table string, t *types.TableDescription) error {
	if spec := t.StreamSpecification; spec != nil && aws.ToBool(spec.StreamEnabled) {
		switch spec.StreamViewType {
		case types.StreamViewTypeNewImage, types.StreamViewTypeNewAndOldImages:
			return nil
		}
		return fmt.Errorf("dynamo: table %s has a %s stream: quota events need NEW_IMAGE or NEW_AND_OLD_IMAGES", table, spec.StreamViewType)
	}
	if _, err := client.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(table), StreamSpecification: streamSpec}); err != nil {
		return fmt.Errorf("dynamo: enable the stream of %s: %w", table, err)
	}
	_, err := waitActive(ctx, client, table)
	return err
}

// waitActive waits (up to tableWait) until table is active, and returns its description.
func waitActive(ctx context.Context, client *dynamodb.Client, table string) (*dynamodb.DescribeTableOutput, error) {
	out, err := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 2 * time.Second
		o.MaxDelay = 20 * time.Second
	}).WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, tableWait)
	if err != nil {
		return nil, fmt.Errorf("dynamo: wait for table %s: %w", table, err)
	}
	return out, nil
}
