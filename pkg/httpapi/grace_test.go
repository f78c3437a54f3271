package httpapi_test

import (
	"strings"
	"testing"
	"time"
)

// TestRotationUntilFirstUse: POST /tokens/{id}/rotate with gracePeriod "untilFirstUse" keeps the
// old secret until the new one is first used (POST /verify), or until maxGracePeriodSeconds,
// whichever comes first; bad combinations are refused, naming the field, and change nothing.
func TestRotationUntilFirstUse(t *testing.T) {
	e := newEnv(t, nil)
	verify := func(tok string) string {
		t.Helper()
		return e.must(200, "POST", "/verify", "", `{"token":"`+tok+`"}`).str("code")
	}

	t.Run("first use ends the old secret", func(t *testing.T) {
		created := e.must(201, "POST", "/tokens", e.admin, `{"name":"svc"}`)
		old := created.str("token")
		rotated := e.must(200, "POST", "/tokens/"+created.str("id")+"/rotate", e.admin, `{"gracePeriod":"untilFirstUse","maxGracePeriodSeconds":86400}`)
		fresh := rotated.str("token")
		e.clock.Advance(23 * time.Hour)
		if verify(old) != "VALID" || verify(old) != "VALID" {
			t.Fatal("old secret refused before the new one was used")
		}
		if verify(fresh) != "VALID" {
			t.Fatal("new secret refused")
		}
		if got := verify(old); got != "NOT_FOUND" {
			t.Fatalf("old secret after the new one's first use: %s", got)
		}
		if verify(fresh) != "VALID" {
			t.Fatal("new secret refused on its second use")
		}
	})

	t.Run("maximum passes", func(t *testing.T) {
		created := e.must(201, "POST", "/tokens", e.admin, `{"name":"svc"}`)
		old := created.str("token")
		e.must(200, "POST", "/tokens/"+created.str("id")+"/rotate", e.admin, `{"gracePeriod":"untilFirstUse","maxGracePeriodSeconds":60,"gracePeriodSeconds":null}`)
		e.clock.Advance(59 * time.Second)
		if verify(old) != "VALID" {
			t.Fatal("old secret refused inside the maximum")
		}
		e.clock.Advance(time.Second)
		if got := verify(old); got != "NOT_FOUND" {
			t.Fatalf("old secret after the maximum: %s", got)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		created := e.must(201, "POST", "/tokens", e.admin, `{"name":"svc"}`)
		id := created.str("id")
		before := e.snapshot()
		for body, field := range map[string]string{
			`{"gracePeriod":"untilFirstUse"}`:                                                    "maxGracePeriodSeconds",
			`{"gracePeriod":"untilFirstUse","maxGracePeriodSeconds":0}`:                          "maxGracePeriodSeconds",
			`{"gracePeriod":"untilFirstUse","maxGracePeriodSeconds":604801}`:                     "maxGracePeriodSeconds",
			`{"gracePeriod":"untilFirstUse","maxGracePeriodSeconds":1.5}`:                        "maxGracePeriodSeconds",
			`{"gracePeriod":"untilFirstUse","maxGracePeriodSeconds":"60"}`:                       "maxGracePeriodSeconds",
			`{"gracePeriod":"untilFirstUse","maxGracePeriodSeconds":60,"gracePeriodSeconds":60}`: "gracePeriodSeconds",
			`{"gracePeriod":"untilfirstuse","maxGracePeriodSeconds":60}`:                         "gracePeriod",
			`{"gracePeriod":3600}`:         "gracePeriod",
			`{"maxGracePeriodSeconds":60}`: "maxGracePeriodSeconds",
		} {
			if msg := e.must(400, "POST", "/tokens/"+id+"/rotate", e.admin, body).str("message"); !strings.HasPrefix(msg, field) {
				t.Errorf("%s: message %q does not start with %s", body, msg, field)
			}
		}
		if after := e.snapshot(); after != before {
			t.Fatalf("a refused rotation changed the store:\n%s\nwas\n%s", after, before)
		}
		if verify(created.str("token")) != "VALID" {
			t.Fatal("a refused rotation changed the secret")
		}
	})

	t.Run("another owner cannot rotate", func(t *testing.T) {
		created := e.must(201, "POST", "/tokens", e.admin, `{"name":"svc"}`)
		bob := e.mint("bob", "manage")
		e.must(404, "POST", "/tokens/"+created.str("id")+"/rotate", bob, `{"gracePeriod":"untilFirstUse","maxGracePeriodSeconds":60}`)
		if verify(created.str("token")) != "VALID" {
			t.Fatal("a refused rotation changed the secret")
		}
	})
}
