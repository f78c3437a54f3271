package dynamo

import (
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"

	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

func TestItemRoundTrip(t *testing.T) {
	now := storetest.NewClock().Now().Add(123456789 * time.Nanosecond)
	full := storetest.NewToken("alice", now)
	full.PrevSecretHash = token.HashSecret("old")
	full.PrevSecretUntil = now.Add(time.Hour)
	full.PrevUntilFirstUse = true
	full.AutoDelete = true
	full.RevokedAt = now.Add(time.Minute)
	full.PurgeAt = now.Add(30 * token.Day)
	full.LastUsedAt = now.Add(time.Second)
	full.UsageCount = 7
	full.ClientID = "app"
	full.Version = 3

	minimal := storetest.NewToken("bob", now)
	minimal.Env, minimal.Meta, minimal.ExpiresAt, minimal.Permissions = "", nil, time.Time{}, nil

	for name, want := range map[string]*token.Token{"full": full, "minimal": minimal} {
		t.Run(name, func(t *testing.T) {
			av, err := attributevalue.MarshalMap(toItem(want))
			if err != nil {
				t.Fatalf("MarshalMap: %v", err)
			}
			got, err := decodeToken(av)
			if err != nil {
				t.Fatalf("decodeToken: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip changed the token:\n got %+v\nwant %+v", got, want)
			}
			if _, ok := av[attrTTL]; ok != !want.PurgeAt.IsZero() {
				t.Fatalf("ttl attribute present = %v with PurgeAt %v", ok, want.PurgeAt)
			}
		})
	}
}

// Conditions compare stored times as strings (purgeAt > :now, lastUsedAt <= :at), so the
// stored form must sort like the instants it holds.
func TestTimeLayoutSortsByInstant(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	times := []time.Time{
		base,
		base.Add(time.Nanosecond),
		base.Add(500 * time.Millisecond),
		base.Add(time.Second),
		base.Add(time.Second + time.Nanosecond),
		base.Add(48 * time.Hour).In(time.FixedZone("east", 5*3600)),
	}
	for i := 1; i < len(times); i++ {
		if a, b := formatTime(times[i-1]), formatTime(times[i]); a >= b {
			t.Errorf("formatTime(%v) = %q sorts at or after formatTime(%v) = %q", times[i-1], a, times[i], b)
		}
	}
}

func TestTTLSeconds(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		at   time.Time
		want int64
	}{
		{"zero means no TTL", time.Time{}, 0},
		{"whole second", base, base.Unix()},
		{"fraction rounds up", base.Add(time.Nanosecond), base.Unix() + 1},
		{"just under a second rounds up", base.Add(999 * time.Millisecond), base.Unix() + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ttlSeconds(tt.at); got != tt.want {
				t.Fatalf("ttlSeconds(%v) = %d; want %d", tt.at, got, tt.want)
			}
		})
	}
}
