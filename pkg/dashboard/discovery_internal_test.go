package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestDiscoveryRetriesAfterAFailure: a provider that is down is asked again only after
// retryAfter, and once its document is read it is not asked again.
func TestDiscoveryRetriesAfterAFailure(t *testing.T) {
	var calls atomic.Int32
	var up atomic.Bool
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !up.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "authorization_endpoint": issuer + "/auth", "token_endpoint": issuer + "/token"})
	}))
	defer srv.Close()
	issuer = srv.URL
	now := time.Unix(1_800_000_000, 0)
	d := newDiscovery(issuer)
	d.now = func() time.Time { return now }
	ctx := context.Background()

	if ep := d.get(ctx); ep != nil || calls.Load() != 1 {
		t.Fatalf("provider down: %v after %d calls", ep, calls.Load())
	}
	up.Store(true)
	now = now.Add(d.retryAfter - time.Second)
	if ep := d.get(ctx); ep != nil || calls.Load() != 1 {
		t.Fatalf("within retryAfter: %v after %d calls, want no new call", ep, calls.Load())
	}
	now = now.Add(2 * time.Second)
	ep := d.get(ctx)
	if ep == nil || ep.Token != issuer+"/token" || ep.tokenOrigin != srv.URL || calls.Load() != 2 {
		t.Fatalf("after retryAfter: %+v after %d calls", ep, calls.Load())
	}
	up.Store(false)
	if again := d.get(ctx); again != ep || calls.Load() != 2 {
		t.Errorf("a known document was read again (%d calls)", calls.Load())
	}
}
