// Package dynamo is the DynamoDB token.Store: one table keyed by the string `pk`, a GSI listing
// an owner's tokens newest first, and DynamoDB's native TTL on the `ttl` attribute (see
// DESIGN.md, "Data model"). Every write is conditional, so a lost race is an ECONFLICT and never a
// silent overwrite; every read also filters by time itself, because TTL deletes lazily. No code
// path uses Scan.
package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/apitokens/apitokens/pkg/token"
)

var _ token.Store = (*Store)(nil)

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock by which reads and conditions treat tokens as gone or expired
	// (default time.Now); tests inject their own.
	Now func() time.Time
}

// Store keeps tokens in one DynamoDB table made by CreateTable. It is safe for concurrent use.
type Store struct {
	client *dynamodb.Client
	table  string
	now    func() time.Time
}

// New returns a Store on the given table.
func New(client *dynamodb.Client, table string, opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{client: client, table: table, now: opts.Now}
}

// Cancellation reason codes of TransactWriteItems.
const (
	reasonConditionFailed = "ConditionalCheckFailed"
	reasonConflict        = "TransactionConflict"
)

const (
	// maxTransactAttempts bounds the retries of a transaction cancelled by a TransactionConflict.
	maxTransactAttempts = 4
	// maxQueryLimit caps the items one Query of a thinned list page evaluates.
	maxQueryLimit = 1000
	// maxBatchGet is the most keys one BatchGetItem may name.
	maxBatchGet = 100
	// maxBatchAttempts bounds the BatchGetItem calls of one chunk of keys: DynamoDB returns the
	// keys it left unprocessed (throttling, or 16 MB of answer), which are asked for again.
	maxBatchAttempts = 8
)

var (
	errIDTaken    = token.Errorf(token.ECONFLICT, "Token id already exists.")
	errConcurrent = token.Errorf(token.ECONFLICT, "Token was changed concurrently; read it again and retry.")
)

func errClientTaken(clientID string) error {
	return token.Errorf(token.ECONFLICT, "A live token for clientId %q already exists.", clientID)
}

// CreateToken implements token.Store: one TransactWriteItems putting the token, its audit event
// and, when t holds a clientId, its clientId marker together; a PutItem when there is only the
// token.
func (s *Store) CreateToken(ctx context.Context, t *token.Token, ev *token.AuditEvent) error {
	item, err := attributevalue.MarshalMap(toItem(t))
	if err != nil {
		return fmt.Errorf("dynamo: create token: %w", err)
	}
	put := types.Put{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK},
	}
	if t.ClientID == "" && ev == nil && t.Remaining == nil {
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                put.TableName,
			Item:                     put.Item,
			ConditionExpression:      put.ConditionExpression,
			ExpressionAttributeNames: put.ExpressionAttributeNames,
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return errIDTaken
		} else if err != nil {
			return fmt.Errorf("dynamo: create token: %w", err)
		}
		return nil
	}

	items := []types.TransactWriteItem{{Put: &put}}
	if t.ClientID != "" {
		claim, err := s.claimClient(t, s.now())
		if err != nil {
			return fmt.Errorf("dynamo: create token: %w", err)
		}
		items = append(items, claim)
	}
	if t.Remaining != nil {
		// Its quota counter, so that the first use need not create it. After the token and its
		// claim: their reasons come first.
		counter, err := s.quotaPut(t)
		if err != nil {
			return fmt.Errorf("dynamo: create token: %w", err)
		}
		items = append(items, counter)
	}
	if items, err = s.withEvent(items, ev); err != nil {
		return fmt.Errorf("dynamo: create token: %w", err)
	}
	reasons, err := s.transactWrite(ctx, items)
	if err != nil {
		return fmt.Errorf("dynamo: create token: %w", err)
	}
	switch {
	case reasons == nil:
		return nil
	case reasonCode(reasons, 0) == reasonConditionFailed:
		return errIDTaken
	case t.ClientID != "" && reasonCode(reasons, 1) == reasonConditionFailed:
		return errClientTaken(t.ClientID)
	default:
		return fmt.Errorf("dynamo: create token: audit event %s refused: %v", ev.ID, reasons)
	}
}

// withEvent appends the put of ev, when there is one, to a transaction's items.
func (s *Store) withEvent(items []types.TransactWriteItem, ev *token.AuditEvent) ([]types.TransactWriteItem, error) {
	if ev == nil {
		return items, nil
	}
	it, err := toAuditItem(ev)
	if err != nil {
		return nil, err
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, err
	}
	return append(items, types.TransactWriteItem{Put: &types.Put{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK},
	}}), nil
}

// FindToken implements token.Store with one GetItem. The read is strongly consistent: this is the
// lookup that authorizes every request, and a revoke, disable or rotation must take effect on
// the very next request, not whenever an eventually consistent replica catches up.
func (s *Store) FindToken(ctx context.Context, id string) (*token.Token, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            tokenKey(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("dynamo: find token: %w", err)
	}
	if len(out.Item) == 0 {
		return nil, token.NotFound()
	}
	t, err := decodeToken(out.Item)
	if err != nil {
		return nil, fmt.Errorf("dynamo: find token: %w", err)
	}
	if t.Gone(s.now()) {
		return nil, token.NotFound()
	}
	return t, nil
}

// FindTokens implements token.Store: one strongly consistent BatchGetItem per 100 distinct ids,
// asking again for the keys DynamoDB leaves unprocessed (batchGet).
func (s *Store) FindTokens(ctx context.Context, ids []string) (map[string]*token.Token, error) {
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = tokenKey(id)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("dynamo: find tokens: %w", err)
	}
	now := s.now()
	out := make(map[string]*token.Token, len(items))
	for _, item := range items {
		if item == nil {
			continue
		}
		t, err := decodeToken(item)
		if err != nil {
			return nil, fmt.Errorf("dynamo: find tokens: %w", err)
		}
		if !t.Gone(now) {
			out[t.ID] = t
		}
	}
	return out, nil
}

// ListTokens implements token.Store with a Query on the owner index, newest first. The first
// Query asks for one item more than the page, which tells whether a next page exists; when the
// status filter or gone tokens thin the page, it keeps querying with a growing Limit until the
// page and that one extra match are found or the index ends. The index is eventually
// consistent: a token created a moment ago may be missing from a list.
func (s *Store) ListTokens(ctx context.Context, q token.ListQuery) (token.TokenPage, error) {
	if q.Limit < 1 {
		return token.TokenPage{}, token.Errorf(token.EINVALID, "limit: must be at least 1")
	}
	index, key, value := ownerIndex, attrOwner, q.Owner
	if q.CreatedBy != "" {
		index, key, value = refIndex, attrRef, q.CreatedBy
	}
	if value == "" || strings.Contains(value, "#") {
		return token.TokenPage{}, nil // no token has such an owner or creator; DynamoDB refuses empty keys
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(index),
		KeyConditionExpression:    aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": key},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: value}},
		ScanIndexForward:          aws.Bool(false),
	}
	if q.After != "" {
		in.KeyConditionExpression = aws.String("#owner = :owner AND #sk < :after")
		in.ExpressionAttributeNames["#sk"] = attrSK
		in.ExpressionAttributeValues[":after"] = &types.AttributeValueMemberS{Value: q.After}
	}
	now := s.now()
	tokens, more, err := queryPage(ctx, s.client, in, q.Limit, func(item map[string]types.AttributeValue) (*token.Token, bool, error) {
		t, err := decodeToken(item)
		if err != nil {
			return nil, false, err
		}
		return t, !t.Gone(now) && q.Status.Matches(t, now) && (q.CreatedBy == "" || q.Owner == "" || t.Owner == q.Owner), nil
	})
	if err != nil {
		return token.TokenPage{}, fmt.Errorf("dynamo: list tokens: %w", err)
	}
	page := token.TokenPage{Tokens: tokens}
	if more {
		page.Next = tokens[len(tokens)-1].SortKey()
	}
	return page, nil
}

// queryPage runs in, a Query, for up to limit items that decode keeps, asking for one more than
// that (which tells whether a next page exists) and querying on with a growing Limit while
// filtering thins the page or the index ends. Returns the items kept and whether more follow.
func queryPage[T any](ctx context.Context, client *dynamodb.Client, in *dynamodb.QueryInput, limit int,
	decode func(map[string]types.AttributeValue) (T, bool, error)) ([]T, bool, error) {
	var page []T
	ask := limit + 1
	for {
		in.Limit = aws.Int32(int32(ask))
		out, err := client.Query(ctx, in)
		if err != nil {
			return nil, false, err
		}
		for _, item := range out.Items {
			v, keep, err := decode(item)
			if err != nil {
				return nil, false, err
			}
			if !keep {
				continue
			}
			if len(page) == limit {
				return page, true, nil
			}
			page = append(page, v)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return page, false, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		ask = min(2*ask, maxQueryLimit)
	}
}

// ListAudit implements token.Store with a Query, newest first: on the ref index for one owner's
// events (AUDIT#<owner>), on the owner index for every owner's (auditAll); the time range is a
// condition on the sort key, and a token id a filter. Like ListTokens, it asks for one event
// more than the page and queries on with a growing Limit while filtering thins the page.
func (s *Store) ListAudit(ctx context.Context, q token.AuditQuery) (token.AuditPage, error) {
	if q.Limit < 1 {
		return token.AuditPage{}, token.Errorf(token.EINVALID, "limit: must be at least 1")
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(ownerIndex),
		ExpressionAttributeNames:  map[string]string{"#key": attrOwner, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":key": &types.AttributeValueMemberS{Value: auditAll}},
		ScanIndexForward:          aws.Bool(false),
	}
	if q.Owner != "" {
		in.IndexName, in.ExpressionAttributeNames["#key"] = aws.String(refIndex), attrRef
		in.ExpressionAttributeValues[":key"] = &types.AttributeValueMemberS{Value: auditOwnerRefOf + q.Owner}
	}
	// The sort key range: [since, min(until, after)), as sort keys compare.
	lower, upper := "", "~"
	if !q.Since.IsZero() {
		lower = formatTime(q.Since)
	}
	if !q.Until.IsZero() {
		upper = formatTime(q.Until)
	}
	if q.After != "" && q.After < upper {
		upper = q.After
	}
	in.KeyConditionExpression = aws.String("#key = :key AND #sk BETWEEN :lower AND :upper")
	in.ExpressionAttributeValues[":lower"] = &types.AttributeValueMemberS{Value: max(lower, "0")}
	in.ExpressionAttributeValues[":upper"] = &types.AttributeValueMemberS{Value: upper}
	if q.TokenID != "" {
		in.FilterExpression = aws.String("#targetId = :target")
		in.ExpressionAttributeNames["#targetId"] = attrTargetID
		in.ExpressionAttributeValues[":target"] = &types.AttributeValueMemberS{Value: q.TokenID}
	}
	now := s.now()
	events, more, err := queryPage(ctx, s.client, in, q.Limit, func(item map[string]types.AttributeValue) (*token.AuditEvent, bool, error) {
		e, err := decodeAudit(item)
		if err != nil {
			return nil, false, err
		}
		// BETWEEN includes its upper end; expired events are gone.
		return e, e.SortKey() != upper && now.Before(e.ExpiresAt), nil
	})
	if err != nil {
		return token.AuditPage{}, fmt.Errorf("dynamo: list audit: %w", err)
	}
	page := token.AuditPage{Events: events}
	if more {
		page.Next = events[len(events)-1].SortKey()
	}
	return page, nil
}

// UpdateToken implements token.Store: one TransactWriteItems updating the token, putting its
// audit event and, when t holds a clientId, claiming (or, for a revoke, releasing) the marker; an
// UpdateItem when there is only the token. The condition requires the token to exist, not be
// gone, and have t's owner and version; when it fails, the old item DynamoDB returns tells
// ENOTFOUND from ECONFLICT without another read.
func (s *Store) UpdateToken(ctx context.Context, t *token.Token, ev *token.AuditEvent) error {
	now := s.now()
	update, err := s.tokenUpdate(t, now)
	if err != nil {
		return fmt.Errorf("dynamo: update token: %w", err)
	}
	counter, err := s.quotaWrite(t)
	if err != nil {
		return fmt.Errorf("dynamo: update token: %w", err)
	}
	if t.ClientID == "" && ev == nil && counter == nil {
		return s.updateItem(ctx, update, t, now)
	}

	items := []types.TransactWriteItem{{Update: update}}
	revoked := !t.RevokedAt.IsZero()
	if t.ClientID != "" {
		var marker types.TransactWriteItem
		if revoked {
			// Release the clientId, unless another token holds it by now (this one had expired).
			marker.Delete = &types.Delete{
				TableName:                aws.String(s.table),
				Key:                      map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: clientKey(t.Owner, t.ClientID)}},
				ConditionExpression:      aws.String("attribute_not_exists(#pk) OR #tokenId = :id"),
				ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#tokenId": attrTokenID},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":id": &types.AttributeValueMemberS{Value: t.ID},
				},
			}
		} else if marker, err = s.claimClient(t, now); err != nil {
			return fmt.Errorf("dynamo: update token: %w", err)
		}
		items = append(items, marker)
	}
	if counter != nil {
		items = append(items, *counter) // after the token and its marker: their reasons come first
	}
	withEvent, err := s.withEvent(items, ev)
	if err != nil {
		return fmt.Errorf("dynamo: update token: %w", err)
	}
	reasons, err := s.transactWrite(ctx, withEvent)
	if err != nil {
		return fmt.Errorf("dynamo: update token: %w", err)
	}
	switch {
	case reasons == nil:
		t.Version++
		return nil
	case reasonCode(reasons, 0) == reasonConditionFailed:
		return s.updateRefused(reasons[0].Item, t, now)
	case t.ClientID != "" && reasonCode(reasons, 1) == reasonConditionFailed && revoked:
		// The marker belongs to another token: there is nothing to release, only the revoke.
		retry := items[:1:1]
		if counter != nil {
			retry = append(retry, *counter)
		}
		withEvent, err := s.withEvent(retry, ev)
		if err != nil {
			return fmt.Errorf("dynamo: update token: %w", err)
		}
		if reasons, err = s.transactWrite(ctx, withEvent); err != nil {
			return fmt.Errorf("dynamo: update token: %w", err)
		} else if reasons != nil {
			return s.updateRefused(reasons[0].Item, t, now)
		}
		t.Version++
		return nil
	case t.ClientID != "" && reasonCode(reasons, 1) == reasonConditionFailed:
		return errClientTaken(t.ClientID)
	default:
		return fmt.Errorf("dynamo: update token: audit event %s refused: %v", ev.ID, reasons)
	}
}

// quotaWrite returns the write of t's quota counter that goes with an update of t, nil for none:
// with t.ResetQuota, the counter holding the new quota (put over any old one), or its delete
// when the quota is removed; for any other change of a token with a quota, its refill settings
// and TTL (kept with the token's, so the counter never vanishes before its token),
// creating the counter from t.Remaining and t.RefilledAt (as the caller read them: the token's
// own while it has no counter) if there is none. No condition: the token's update carries it.
func (s *Store) quotaWrite(t *token.Token) (*types.TransactWriteItem, error) {
	switch {
	case t.ResetQuota && t.Remaining == nil:
		return &types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(s.table), Key: quotaKey(t.ID)}}, nil
	case t.ResetQuota:
		put, err := s.quotaPut(t)
		return &put, err
	case t.Remaining == nil:
		return nil, nil
	}
	u := quotaUpdate(t, "if_not_exists(#remaining, :remaining)", "if_not_exists(#refilledAt, :refilledAt)")
	u.TableName = aws.String(s.table)
	return &types.TransactWriteItem{Update: u}, nil
}

// quotaPut is the transaction item that puts the counter holding t's own quota (t.Remaining must
// be set), over any counter there was.
func (s *Store) quotaPut(t *token.Token) (types.TransactWriteItem, error) {
	item, err := attributevalue.MarshalMap(toQuotaItem(t))
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: item}}, err
}

// quotaUpdate is the update of t's quota counter that sets remaining and refilledAt to the
// expressions given (of :remaining and :refilledAt, t's), and the refill settings and TTL to
// t's, removing those t lacks. Its TableName is the caller's to set.
func quotaUpdate(t *token.Token, remaining, refilledAt string) *types.Update {
	it := toQuotaItem(t)
	names := map[string]string{"#remaining": attrRemaining, "#refilledAt": attrRefilled}
	values := map[string]types.AttributeValue{
		":remaining":  &types.AttributeValueMemberN{Value: strconv.FormatInt(it.Remaining, 10)},
		":refilledAt": &types.AttributeValueMemberS{Value: it.RefilledAt},
	}
	set := []string{"#remaining = " + remaining, "#refilledAt = " + refilledAt}
	var remove []string
	for _, a := range []struct {
		name string
		v    int64
	}{{"refillAmount", it.RefillAmount}, {"refillInterval", it.RefillInterval}, {attrTTL, it.TTL}} {
		names["#"+a.name] = a.name
		if a.v == 0 {
			remove = append(remove, "#"+a.name)
			continue
		}
		values[":"+a.name] = &types.AttributeValueMemberN{Value: strconv.FormatInt(a.v, 10)}
		set = append(set, "#"+a.name+" = :"+a.name)
	}
	expr := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	return &types.Update{
		Key:                       quotaKey(t.ID),
		UpdateExpression:          aws.String(expr),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
}

// tokenUpdate builds the conditional update of t's mutable attributes: SET those t has, REMOVE
// those it lacks (the ttl attribute among them, when t no longer has a PurgeAt).
func (s *Store) tokenUpdate(t *token.Token, now time.Time) (*types.Update, error) {
	item, err := attributevalue.MarshalMap(toItem(t))
	if err != nil {
		return nil, err
	}
	names := map[string]string{
		"#pk":      attrPK,
		"#owner":   attrOwner,
		"#version": attrVersion,
		"#purgeAt": attrPurgeAt,
	}
	values := map[string]types.AttributeValue{
		":owner":   item[attrOwner],
		":version": &types.AttributeValueMemberN{Value: strconv.FormatInt(t.Version, 10)},
		":now":     &types.AttributeValueMemberS{Value: formatTime(now)},
		":one":     &types.AttributeValueMemberN{Value: "1"},
	}
	set := []string{"#version = #version + :one"}
	var remove []string
	attrs := mutableAttrs
	if t.ResetQuota {
		attrs = append(attrs[:len(attrs):len(attrs)], quotaAttrs...)
	}
	for _, a := range attrs {
		names["#"+a] = a
		if v, ok := item[a]; ok {
			values[":"+a] = v
			set = append(set, "#"+a+" = :"+a)
		} else {
			remove = append(remove, "#"+a)
		}
	}
	expr := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	return &types.Update{
		TableName:                           aws.String(s.table),
		Key:                                 tokenKey(t.ID),
		UpdateExpression:                    aws.String(expr),
		ConditionExpression:                 aws.String("attribute_exists(#pk) AND #owner = :owner AND #version = :version AND (attribute_not_exists(#purgeAt) OR #purgeAt > :now)"),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}, nil
}

// updateItem runs a token update on its own and increments t.Version when it succeeds.
func (s *Store) updateItem(ctx context.Context, u *types.Update, t *token.Token, now time.Time) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           u.TableName,
		Key:                                 u.Key,
		UpdateExpression:                    u.UpdateExpression,
		ConditionExpression:                 u.ConditionExpression,
		ExpressionAttributeNames:            u.ExpressionAttributeNames,
		ExpressionAttributeValues:           u.ExpressionAttributeValues,
		ReturnValuesOnConditionCheckFailure: u.ReturnValuesOnConditionCheckFailure,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return s.updateRefused(ccf.Item, t, now)
	} else if err != nil {
		return fmt.Errorf("dynamo: update token: %w", err)
	}
	t.Version++
	return nil
}

// updateRefused says why the condition of a token update failed, from the item as it was: absent,
// another owner's or gone is ENOTFOUND (as in FindToken), anything else a version conflict.
func (s *Store) updateRefused(old map[string]types.AttributeValue, t *token.Token, now time.Time) error {
	if len(old) == 0 {
		return token.NotFound()
	}
	stored, err := decodeToken(old)
	if err != nil {
		return fmt.Errorf("dynamo: update token: %w", err)
	}
	if stored.Owner != t.Owner || stored.Gone(now) {
		return token.NotFound()
	}
	return errConcurrent
}

// claimClient returns the transaction item that makes t the holder of its clientId: it succeeds
// when no marker exists, t holds it already, or its holder is no longer live at now (its expiry
// or purge time has passed; a revoked holder has deleted its marker). A revoked t holds nothing
// (token.Token.Live) and writes no marker, but is refused all the same while another token
// holds the clientId.
func (s *Store) claimClient(t *token.Token, now time.Time) (types.TransactWriteItem, error) {
	marker, err := attributevalue.MarshalMap(clientMarker(t))
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	cond := aws.String("attribute_not_exists(#pk) OR #tokenId = :id OR (#expiresAt > :zero AND #expiresAt <= :now)")
	names := map[string]string{"#pk": attrPK, "#tokenId": attrTokenID, "#expiresAt": attrExpiresAt}
	values := map[string]types.AttributeValue{
		":id":   &types.AttributeValueMemberS{Value: t.ID},
		":zero": &types.AttributeValueMemberN{Value: "0"},
		":now":  &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixNano(), 10)},
	}
	if !t.RevokedAt.IsZero() {
		return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName:                 aws.String(s.table),
			Key:                       map[string]types.AttributeValue{attrPK: marker[attrPK]},
			ConditionExpression:       cond,
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		}}, nil
	}
	return types.TransactWriteItem{Put: &types.Put{
		TableName:                 aws.String(s.table),
		Item:                      marker,
		ConditionExpression:       cond,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}}, nil
}

// RecordUse implements token.Store: for valid uses, one UpdateItem of the token (SET lastUsedAt,
// ADD usageCount, so concurrent uses are all counted; lastUsedAt is the last write's, as the
// contract says), and in parallel one UpdateItem of the day's counters (ADD, with the TTL).
//
// Two requests in parallel rather than one TransactWriteItems of both: the same one round trip of
// latency, 2 write units instead of 4, and above all no transaction on the token item. DynamoDB
// refuses any write to an item while a transaction on it is in flight (TransactionConflict,
// which the SDK does not retry), so usage transactions would make a busy token's concurrent
// verifies, quota leases (LeaseQuota) and updates fail. The price is that the counters are
// not conditioned on the token: see the contract.
func (s *Store) RecordUse(ctx context.Context, id string, u token.Usage) error {
	if err := u.Check(); err != nil {
		return err
	}
	if u.IsEmpty() {
		return nil
	}
	if u.Valid == 0 {
		return s.addUsage(ctx, id, u)
	}
	counters := make(chan error, 1)
	go func() { counters <- s.addUsage(ctx, id, u) }()
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      tokenKey(id),
		UpdateExpression:         aws.String("SET #lastUsedAt = :at ADD #usageCount :n"),
		ConditionExpression:      aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#lastUsedAt": attrLastUsed, "#usageCount": attrUsage},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":at": &types.AttributeValueMemberS{Value: formatTime(u.At)},
			":n":  &types.AttributeValueMemberN{Value: strconv.FormatInt(u.Valid, 10)},
		},
	})
	counterErr := <-counters
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return token.NotFound()
	} else if err != nil {
		return fmt.Errorf("dynamo: record use: %w", err)
	}
	return counterErr
}

// addUsage adds u's counts to the counters of u.At's day, in one UpdateItem that creates the
// item when it is the day's first write and sets its TTL.
func (s *Store) addUsage(ctx context.Context, id string, u token.Usage) error {
	names := map[string]string{"#ttl": attrTTL}
	values := map[string]types.AttributeValue{
		":ttl": &types.AttributeValueMemberN{Value: strconv.FormatInt(ttlSeconds(token.UsageExpiry(u.At)), 10)},
	}
	var adds []string
	add := func(attr string, n int64) {
		i := strconv.Itoa(len(adds))
		names["#c"+i] = attr
		values[":c"+i] = &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
		adds = append(adds, "#c"+i+" :c"+i)
	}
	if u.Valid > 0 {
		add(attrValid, u.Valid)
	}
	for _, code := range token.RefusalCodes { // a fixed order: the same counts, the same request
		if n := u.Refused[code]; n > 0 {
			add(code, n)
		}
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       usageKey(id, u.At),
		UpdateExpression:          aws.String("ADD " + strings.Join(adds, ", ") + " SET #ttl = :ttl"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return fmt.Errorf("dynamo: record usage counters: %w", err)
	}
	return nil
}

// UsageDays implements token.Store with BatchGetItem: one request per 100 days.
func (s *Store) UsageDays(ctx context.Context, id string, last time.Time, days int) ([]token.DayUsage, error) {
	dayList := token.UsageDays(last, days)
	keys := make([]map[string]types.AttributeValue, len(dayList))
	for i, day := range dayList {
		keys[i] = usageKey(id, day)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("dynamo: usage days: %w", err)
	}
	out := make([]token.DayUsage, len(dayList))
	for i, day := range dayList {
		if out[i], err = decodeUsage(day, items[i]); err != nil {
			return nil, fmt.Errorf("dynamo: usage days: %w", err)
		}
	}
	return out, nil
}

// WindowCounts implements token.Store with BatchGetItem: one request per 100 windows. A window
// whose TTL has passed counts 0 whether or not DynamoDB has deleted it yet.
func (s *Store) WindowCounts(ctx context.Context, windows []token.RateWindow) ([]int64, error) {
	keys := make([]map[string]types.AttributeValue, len(windows))
	for i, w := range windows {
		keys[i] = rateKey(w.TokenID, w.Start)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("dynamo: window counts: %w", err)
	}
	now := s.now().Unix()
	out := make([]int64, len(windows))
	for i, item := range items {
		if item == nil {
			continue
		}
		var it rateItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return nil, fmt.Errorf("dynamo: window counts: %w", err)
		}
		if it.TTL == 0 || now < it.TTL {
			out[i] = it.Count
		}
	}
	return out, nil
}

// batchGet reads the items of keys, strongly consistent, and returns them in the order of keys
// (nil for an absent one): one BatchGetItem per 100 distinct keys, and again for the keys
// DynamoDB leaves unprocessed (under throttling), with a short backoff, at most maxBatchAttempts
// times in a row.
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	pkOf := func(key map[string]types.AttributeValue) string {
		return key[attrPK].(*types.AttributeValueMemberS).Value
	}
	found := make(map[string]map[string]types.AttributeValue, len(keys))
	var pending []map[string]types.AttributeValue
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if pk := pkOf(k); !seen[pk] { // BatchGetItem refuses a request that names a key twice
			seen[pk] = true
			pending = append(pending, k)
		}
	}
	for retry := 0; len(pending) > 0; {
		if retry > 0 {
			if retry >= maxBatchAttempts {
				return nil, fmt.Errorf("%d keys still unprocessed after %d attempts", len(pending), maxBatchAttempts)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(min(retry, 5)) * 20 * time.Millisecond):
			}
		}
		n := min(len(pending), maxBatchGet)
		out, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{
				s.table: {Keys: pending[:n], ConsistentRead: aws.Bool(true)},
			},
		})
		if err != nil {
			return nil, err
		}
		for _, item := range out.Responses[s.table] {
			if pk, ok := item[attrPK].(*types.AttributeValueMemberS); ok {
				found[pk.Value] = item
			}
		}
		unprocessed := out.UnprocessedKeys[s.table].Keys
		if len(unprocessed) > 0 {
			retry++
		} else {
			retry = 0
		}
		pending = append(pending[n:], unprocessed...)
	}
	items := make([]map[string]types.AttributeValue, len(keys))
	for i, k := range keys {
		items[i] = found[pkOf(k)]
	}
	return items, nil
}

// CountRequest implements token.Store: one UpdateItem on the window's item, an atomic ADD
// admitted only while the count is below the limit, which also sets the item's TTL.
func (s *Store) CountRequest(ctx context.Context, id string, start time.Time, window time.Duration, limit int64) (int64, bool, error) {
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      rateKey(id, start),
		UpdateExpression:         aws.String("ADD #count :one SET #ttl = :ttl"),
		ConditionExpression:      aws.String("attribute_not_exists(#count) OR #count < :limit"),
		ExpressionAttributeNames: map[string]string{"#count": attrCount, "#ttl": attrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one":   &types.AttributeValueMemberN{Value: "1"},
			":limit": &types.AttributeValueMemberN{Value: strconv.FormatInt(limit, 10)},
			":ttl":   &types.AttributeValueMemberN{Value: strconv.FormatInt(ttlSeconds(start.Add(window)), 10)},
		},
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return limit, false, nil
	} else if err != nil {
		return 0, false, fmt.Errorf("dynamo: count request: %w", err)
	}
	var it rateItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
		return 0, false, fmt.Errorf("dynamo: count request: %w", err)
	}
	return it.Count, true, nil
}

// LeaseRate implements token.Store: one UpdateItem on the window's item, an atomic ADD of k
// that also sets the item's TTL, returning the count after it.
func (s *Store) LeaseRate(ctx context.Context, id string, start time.Time, window time.Duration, k int64) (int64, error) {
	if k < 1 {
		return 0, token.Errorf(token.EINVALID, "lease of %d requests", k)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      rateKey(id, start),
		UpdateExpression:         aws.String("ADD #count :k SET #ttl = :ttl"),
		ExpressionAttributeNames: map[string]string{"#count": attrCount, "#ttl": attrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":k":   &types.AttributeValueMemberN{Value: strconv.FormatInt(k, 10)},
			":ttl": &types.AttributeValueMemberN{Value: strconv.FormatInt(ttlSeconds(start.Add(window)), 10)},
		},
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("dynamo: lease rate window: %w", err)
	}
	var it rateItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
		return 0, fmt.Errorf("dynamo: lease rate window: %w", err)
	}
	return it.Count, nil
}

// leaseAttempts bounds LeaseQuota's writes: a refill, a lease, the lease of what remains when
// fewer than k did, and one more after creating the counter.
const leaseAttempts = 5

// LeaseQuota implements token.Store on the token's QUOTA# item: when a refill is due, first one
// conditional write that only the first caller of the new period wins, and only while the
// counter's refill settings are the ones the caller read; then a conditional decrement by k
// (remaining >= k), which returns the counter; when it fails, the old item DynamoDB returns says
// what remains, and the next attempt leases that. A missing counter is created from the token
// (one strongly consistent GetItem and one conditional UpdateItem, once per token).
func (s *Store) LeaseQuota(ctx context.Context, id string, refill *token.Refill, refilledAt, now time.Time, k int64) (token.QuotaLease, error) {
	if k < 1 {
		return token.QuotaLease{}, token.Errorf(token.EINVALID, "lease of %d uses", k)
	}
	names := map[string]string{"#remaining": attrRemaining, "#refilledAt": attrRefilled}
	// due is the refill boundary to try first, zero for none: a refill is tried at most once
	// a call (and once more right after creating a missing counter).
	var due time.Time
	if refill != nil {
		if d := token.LatestRefill(refilledAt, refill.Interval, now); d.After(refilledAt) {
			due = d
		}
	}
	created := false
	var last token.QuotaLease
	for attempt := 1; attempt <= leaseAttempts; attempt++ {
		if !due.IsZero() {
			lease, old, err := s.refillQuota(ctx, id, refill, due, k)
			if err != nil || lease.Granted > 0 {
				return lease, err
			}
			c, ok, err := decodeQuota(old)
			switch {
			case err != nil:
				return token.QuotaLease{}, fmt.Errorf("dynamo: lease quota: %w", err)
			case !ok && !created:
				// No counter yet: create it from the token, then try the refill again.
				created = true
				if lease, done, err := s.createQuota(ctx, id); err != nil || done {
					return lease, err
				}
				continue
			case ok:
				// Refilled already this period, or the settings changed: lease from what the
				// counter holds, sized by it.
				k = max(min(k, c.Remaining), 1)
			}
			due = time.Time{}
		}
		if attempt == leaseAttempts {
			k = 1 // contention took what each attempt saw: ask for the least
		}
		out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table),
			Key:       quotaKey(id),
			// refilledAt is set to itself so that UPDATED_NEW returns the period too: the
			// authorizers' grant holds ReturnValues to NONE or UPDATED_*, never ALL_*.
			UpdateExpression:         aws.String("SET #remaining = #remaining - :k, #refilledAt = #refilledAt"),
			ConditionExpression:      aws.String("#remaining >= :k"),
			ExpressionAttributeNames: names,
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":k": &types.AttributeValueMemberN{Value: strconv.FormatInt(k, 10)},
			},
			ReturnValues:                        types.ReturnValueUpdatedNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var ccf *types.ConditionalCheckFailedException
		if err == nil {
			c, _, err := decodeQuota(out.Attributes)
			if err != nil {
				return token.QuotaLease{}, fmt.Errorf("dynamo: lease quota: %w", err)
			}
			return token.QuotaLease{Granted: k, Remaining: c.Remaining, Period: c.RefilledAt}, nil
		} else if !errors.As(err, &ccf) {
			return token.QuotaLease{}, fmt.Errorf("dynamo: lease quota: %w", err)
		}
		c, ok, err := decodeQuota(ccf.Item)
		if err != nil {
			return token.QuotaLease{}, fmt.Errorf("dynamo: lease quota: %w", err)
		}
		if !ok {
			if created {
				return token.QuotaLease{}, fmt.Errorf("dynamo: lease quota: counter of %s missing after its creation", id)
			}
			created = true
			if lease, done, err := s.createQuota(ctx, id); err != nil || done {
				return lease, err
			}
			continue
		}
		last = token.QuotaLease{Remaining: max(c.Remaining, 0), Period: c.RefilledAt}
		if c.Remaining <= 0 {
			return last, nil // spent (a due refill was tried first)
		}
		k = min(k, c.Remaining)
	}
	return last, nil
}

// refillQuota applies a refill due at due to token id's counter and takes min(k, amount) uses of
// it, if this caller is the period's first and the counter's settings are refill. A condition
// that fails is no error: the lease has Granted 0, and old is the counter as it was.
func (s *Store) refillQuota(ctx context.Context, id string, refill *token.Refill, due time.Time, k int64) (token.QuotaLease, map[string]types.AttributeValue, error) {
	take := min(k, refill.Amount)
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.table),
		Key:              quotaKey(id),
		UpdateExpression: aws.String("SET #remaining = :left, #refilledAt = :due"),
		// refilledAt <= :floor: the counter's period started at least an interval before due, so
		// the first caller of a period wins, and a schedule read before an admin reset the quota
		// (which moves refilledAt to the reset) cannot refill early.
		ConditionExpression: aws.String("attribute_exists(#remaining) AND #refilledAt <= :floor" +
			" AND #refillAmount = :amount AND #refillInterval = :interval"),
		ExpressionAttributeNames: map[string]string{
			"#remaining": attrRemaining, "#refilledAt": attrRefilled,
			"#refillAmount": "refillAmount", "#refillInterval": "refillInterval",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":left":     &types.AttributeValueMemberN{Value: strconv.FormatInt(refill.Amount-take, 10)},
			":due":      &types.AttributeValueMemberS{Value: formatTime(due)},
			":floor":    &types.AttributeValueMemberS{Value: formatTime(due.Add(-refill.Interval))},
			":amount":   &types.AttributeValueMemberN{Value: strconv.FormatInt(refill.Amount, 10)},
			":interval": &types.AttributeValueMemberN{Value: strconv.FormatInt(int64(refill.Interval/time.Second), 10)},
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return token.QuotaLease{Granted: take, Remaining: refill.Amount - take, Period: due}, nil, nil
	case errors.As(err, &ccf):
		return token.QuotaLease{}, ccf.Item, nil
	default:
		return token.QuotaLease{}, nil, fmt.Errorf("dynamo: refill quota: %w", err)
	}
}

// createQuota creates token id's counter from the token's own remaining and refilledAt (read
// strongly consistent), unless a counter exists by then: a token made before counters had items
// of their own, or one never leased. done is set when there is nothing to lease: the token has
// no quota (lease.Unlimited), or is absent or gone (ENOTFOUND).
func (s *Store) createQuota(ctx context.Context, id string) (lease token.QuotaLease, done bool, err error) {
	t, err := s.FindToken(ctx, id)
	if err != nil {
		return token.QuotaLease{}, true, err
	}
	if t.Remaining == nil {
		return token.QuotaLease{Unlimited: true}, true, nil
	}
	// An UpdateItem rather than a PutItem: the callers' grant on counters is UpdateItem only.
	u := quotaUpdate(t, ":remaining", ":refilledAt")
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       u.Key,
		UpdateExpression:          u.UpdateExpression,
		ConditionExpression:       aws.String("attribute_not_exists(#remaining)"),
		ExpressionAttributeNames:  u.ExpressionAttributeNames,
		ExpressionAttributeValues: u.ExpressionAttributeValues,
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return token.QuotaLease{}, true, fmt.Errorf("dynamo: create quota counter: %w", err)
	}
	return token.QuotaLease{}, false, nil
}

// ReturnQuota implements token.Store: one conditional ADD, only while the counter's period is
// period.
func (s *Store) ReturnQuota(ctx context.Context, id string, period time.Time, n int64) error {
	if n < 1 {
		return nil
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      quotaKey(id),
		UpdateExpression:         aws.String("ADD #remaining :n"),
		ConditionExpression:      aws.String("attribute_exists(#remaining) AND #refilledAt = :period"),
		ExpressionAttributeNames: map[string]string{"#remaining": attrRemaining, "#refilledAt": attrRefilled},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":n":      &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)},
			":period": &types.AttributeValueMemberS{Value: formatTime(period)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("dynamo: return quota: %w", err)
	}
	return nil
}

// QuotaCounters implements token.Store with BatchGetItem: one request per 100 ids.
func (s *Store) QuotaCounters(ctx context.Context, ids []string) (map[string]token.QuotaCounter, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = quotaKey(id)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("dynamo: quota counters: %w", err)
	}
	out := make(map[string]token.QuotaCounter)
	for i, item := range items {
		c, ok, err := decodeQuota(item)
		if err != nil {
			return nil, fmt.Errorf("dynamo: quota counters: %w", err)
		}
		if ok {
			out[ids[i]] = c
		}
	}
	return out, nil
}

// transactWrite runs one transaction and returns its cancellation reasons when a condition
// failed, nil when it succeeded. DynamoDB cancels a transaction that meets another one in flight
// on the same item (TransactionConflict) before judging its conditions; such a transaction is
// retried a few times, so that racing writers get the answer their conditions give, and a
// conflict that persists is an ECONFLICT. Any other failure is returned as is.
func (s *Store) transactWrite(ctx context.Context, items []types.TransactWriteItem) ([]types.CancellationReason, error) {
	for attempt := 1; ; attempt++ {
		_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return nil, err
		}
		if hasReason(tce.CancellationReasons, reasonConditionFailed) {
			return tce.CancellationReasons, nil
		}
		if !hasReason(tce.CancellationReasons, reasonConflict) {
			return nil, err
		}
		if attempt == maxTransactAttempts {
			return nil, errConcurrent
		}
		backoff := time.Duration(attempt) * (10*time.Millisecond + rand.N(20*time.Millisecond))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
	}
}

func reasonCode(reasons []types.CancellationReason, i int) string {
	if i >= len(reasons) {
		return ""
	}
	return aws.ToString(reasons[i].Code)
}

func hasReason(reasons []types.CancellationReason, code string) bool {
	for i := range reasons {
		if reasonCode(reasons, i) == code {
			return true
		}
	}
	return false
}

// EndGrace implements token.Store with one UpdateItem, conditioned on the token still waiting
// for the first use of its secret at version version. A failed condition is the answer false,
// not an error.
func (s *Store) EndGrace(ctx context.Context, id string, version int64, now time.Time) (bool, error) {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.table),
		Key:              tokenKey(id),
		UpdateExpression: aws.String("SET #until = :now, #updatedAt = :now, #version = #version + :one REMOVE #flag"),
		ConditionExpression: aws.String("attribute_exists(#pk) AND #flag = :true AND #version = :version AND #until > :now" +
			" AND (attribute_not_exists(#purgeAt) OR #purgeAt > :storeNow)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrPK, "#flag": attrPrevFirstUse, "#until": "prevSecretUntil", "#updatedAt": "updatedAt",
			"#version": attrVersion, "#purgeAt": attrPurgeAt,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now":      &types.AttributeValueMemberS{Value: formatTime(now)},
			":storeNow": &types.AttributeValueMemberS{Value: formatTime(s.now())},
			":one":      &types.AttributeValueMemberN{Value: "1"},
			":true":     &types.AttributeValueMemberBOOL{Value: true},
			":version":  &types.AttributeValueMemberN{Value: strconv.FormatInt(version, 10)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("dynamo: end grace: %w", err)
	}
	return true, nil
}

// expiryPageSize is the Limit of each Query of ExpiringTokens (tests lower it to cross pages).
var expiryPageSize int32 = maxQueryLimit

// ExpiringTokens implements token.Store: for each UTC day of [from, to), one Query of the expiry
// index, KeyCondition expiryDay = :day AND expiryAt BETWEEN the range's ends within that day,
// followed through LastEvaluatedKey. Revoked tokens are not in the index; gone ones are dropped
// here, as every read does.
func (s *Store) ExpiringTokens(ctx context.Context, from, to time.Time) ([]*token.Token, error) {
	if !from.Before(to) {
		return nil, nil
	}
	now := s.now()
	lower, upper := formatTime(from), formatTime(to)
	var out []*token.Token
	last := expiryDay(to.Add(-time.Nanosecond))
	for day := from.UTC().Truncate(token.Day); ; day = day.Add(token.Day) {
		in := &dynamodb.QueryInput{
			TableName:                aws.String(s.table),
			IndexName:                aws.String(expiryIndex),
			KeyConditionExpression:   aws.String("#day = :day AND #at BETWEEN :lower AND :upper"),
			ExpressionAttributeNames: map[string]string{"#day": attrExpiryDay, "#at": attrExpiryAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":day":   &types.AttributeValueMemberS{Value: expiryDay(day)},
				":lower": &types.AttributeValueMemberS{Value: lower},
				":upper": &types.AttributeValueMemberS{Value: upper},
			},
			Limit: aws.Int32(expiryPageSize),
		}
		for {
			page, err := s.client.Query(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("dynamo: expiring tokens: %w", err)
			}
			for _, item := range page.Items {
				t, err := decodeToken(item)
				if err != nil {
					return nil, fmt.Errorf("dynamo: expiring tokens: %w", err)
				}
				// BETWEEN includes its upper end, which the range excludes.
				if t.ExpiresAt.Before(to) && t.RevokedAt.IsZero() && !t.Gone(now) {
					out = append(out, t)
				}
			}
			if len(page.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = page.LastEvaluatedKey
		}
		if expiryDay(day) == last {
			return out, nil
		}
	}
}

// ClaimReminder implements token.Store with one PutItem of REMIND#<reminder key>, conditioned on
// no such claim (or only one whose TTL has passed, which DynamoDB has not deleted yet).
func (s *Store) ClaimReminder(ctx context.Context, r token.Reminder) (bool, error) {
	ok, err := s.claim(ctx, remindKey(r), r.ClaimExpiry())
	if err != nil {
		return false, fmt.Errorf("dynamo: claim reminder: %w", err)
	}
	return ok, nil
}

// ClaimQuotaEvent implements token.Store with one PutItem of QUOTAEVENT#<event id> holding the
// event's type and detail, conditioned as ClaimReminder's; the table's stream hands the new item
// to QuotaEventsFunction, which publishes it.
func (s *Store) ClaimQuotaEvent(ctx context.Context, e token.Event) (bool, error) {
	detail, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("dynamo: claim quota event: %w", err)
	}
	item := map[string]types.AttributeValue{
		attrPK:          &types.AttributeValueMemberS{Value: quotaEventPrefix + e.EventID},
		attrEventType:   &types.AttributeValueMemberS{Value: e.Type},
		attrEventDetail: &types.AttributeValueMemberS{Value: string(detail)},
	}
	ok, err := s.claim(ctx, item, s.now().Add(token.UsageRetention))
	if err != nil {
		return false, fmt.Errorf("dynamo: claim quota event: %w", err)
	}
	return ok, nil
}

// claim puts item with a TTL at expires, unless an item of its key exists whose TTL has not
// passed (DynamoDB deletes expired items only eventually); it reports whether it put it.
func (s *Store) claim(ctx context.Context, item map[string]types.AttributeValue, expires time.Time) (bool, error) {
	item[attrTTL] = &types.AttributeValueMemberN{Value: strconv.FormatInt(ttlSeconds(expires), 10)}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk) OR #ttl <= :now"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#ttl": attrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(s.now().Unix(), 10)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, nil
}

// ReleaseReminder implements token.Store with one DeleteItem of the claim.
func (s *Store) ReleaseReminder(ctx context.Context, r token.Reminder) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: remindKey(r)})
	if err != nil {
		return fmt.Errorf("dynamo: release reminder: %w", err)
	}
	return nil
}
