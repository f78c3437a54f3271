package dashboard_test

// The usage chart (GET /tokens/{id}/usage) and the live limit state of records
// (rateLimit.count/remaining/reset, refill.nextRefillAt) in the browser.

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/dashboard"
	"github.com/apitokens/apitokens/pkg/token"
)

// TestUsageChart: the details of a token draw its uses of the last 30 days, split by outcome,
// from the calls the test made: two valid verifications and one refused by the rate limit.
// Refusals are written at once here (UsageInterval -1); by default a token's refusals wait up to
// a minute for its next usage write.
func TestUsageChart(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{UsageInterval: -1})
	_, plaintext := s.mint(t, token.CreateInput{Owner: "admin", Name: "metered", Permissions: []string{"read"},
		Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 2, Window: time.Hour}}})
	var codes []string
	for range 3 {
		codes = append(codes, s.verify(t, plaintext).Code)
	}
	if strings.Join(codes, ",") != "VALID,VALID,RATE_LIMITED" {
		t.Fatalf("verify codes %v", codes)
	}
	p := s.open(t)
	p.signIn(s.admin)
	p.click(p.named("button", "metered"))
	p.waitFor(`document.querySelector('.details-row svg.usage-chart') !== null`)

	days := eval[[]map[string]string](p, `[...document.querySelectorAll('.details-row g.day')].map((g) => ({...g.dataset}))`)
	if len(days) != 30 {
		t.Fatalf("the chart has %d days, want 30", len(days))
	}
	valid, refused, reasons := 0, 0, ""
	for _, d := range days {
		v, err1 := strconv.Atoi(d["valid"])
		r, err2 := strconv.Atoi(d["refused"])
		if err1 != nil || err2 != nil {
			t.Fatalf("day %v: counts are not numbers", d)
		}
		valid, refused, reasons = valid+v, refused+r, reasons+d["reasons"]
	}
	if valid != 2 || refused != 1 || reasons != "RATE_LIMITED:1" {
		t.Errorf("the chart shows %d valid, %d refused (%q); want 2, 1 (RATE_LIMITED:1)", valid, refused, reasons)
	}
	today := time.Now().UTC()
	if last := days[29]["date"]; last != today.Format("2006-01-02") && last != today.Add(-time.Hour).Format("2006-01-02") {
		t.Errorf("the last day is %s, want today (UTC)", last)
	}
	if summary := eval[string](p, `document.querySelector('.details-row .usage-summary').textContent`); summary != "Last 30 days: 2 valid, 1 refused (RATE_LIMITED 1)." {
		t.Errorf("summary %q", summary)
	}
	if n := eval[int](p, `document.querySelectorAll('.details-row g.day rect.valid').length`); n != 1 {
		t.Errorf("%d valid bars, want the one of today", n)
	}
}

// TestLiveLimitState: the details show where a token stands against its limits: the current
// rate-limit window's count, what is left and when it resets; the quota's next refill.
func TestLiveLimitState(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{})
	remaining := int64(10)
	_, plaintext := s.mint(t, token.CreateInput{Owner: "admin", Name: "limited", Permissions: []string{"read"},
		Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 5, Window: time.Hour}, Remaining: &remaining,
			Refill: &token.Refill{Amount: 10, Interval: 24 * time.Hour}}})
	s.verify(t, plaintext)
	s.verify(t, plaintext)
	p := s.open(t)
	p.signIn(s.admin)
	p.click(p.named("button", "limited"))
	p.waitFor(`document.querySelector('.details-row .facts-list') !== null`)
	facts := eval[string](p, `document.querySelector('.details-row .facts-list').textContent`)
	for _, want := range []string{"5 per hour: 2 used in this window, 3 left, resets ", "8 uses left, refilled to 10 every 1 day; next refill "} {
		if !strings.Contains(facts, want) {
			t.Errorf("details lack %q: %s", want, facts)
		}
	}
}
