package dashboard_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/apitokens/apitokens/pkg/dashboard"
	"github.com/apitokens/apitokens/pkg/token"
)

// refreshJS clicks Refresh and resolves, once the list has rendered again, with the duration of
// that render as the page measures it (performance.measure "apitokens:list-render", taken around
// building and inserting the rows) and the time from the click to the rendered list (the request,
// the answer parsed, the render). It waits with a MutationObserver rather than by polling, so
// that no script of the benchmark's own runs meanwhile.
//
// Not Chromium's ScriptDuration (Performance.getMetrics): it leaves out script run as a promise's
// continuation, where the render runs (after the fetch), and reports a fraction of a millisecond.
const refreshJS = `new Promise((resolve) => {
	const rows = document.getElementById('token-rows');
	const before = rows.dataset.renders;
	const obs = new MutationObserver(() => {
		if (rows.dataset.renders === before) return;
		obs.disconnect();
		resolve([performance.getEntriesByName('apitokens:list-render').at(-1).duration, performance.now() - start]);
	});
	obs.observe(rows, { attributes: true, attributeFilter: ['data-renders'] });
	const start = performance.now();
	document.querySelector('#filters button[type=submit]').click();
})`

// BenchmarkDashboardList100 renders a page of 100 tokens in headless Chromium, once per
// iteration (Refresh), and reports the medians per refresh of: render-ms, the script time of
// building and inserting the rows (the page's own performance.measure around it); refresh-ms,
// from the click to the rendered list, through the local server; max-render-ms, the slowest
// render; and once, first-load-KiB, what the first visit transferred (Resource Timing's
// transferSize of the document and every file it loaded, headers included).
//
//	go test ./pkg/dashboard/ -run '^$' -bench DashboardList100 -benchtime 20x
func BenchmarkDashboardList100(b *testing.B) {
	s := newSite(b, dashboard.Config{}, token.Config{})
	for i := range 99 {
		s.mint(b, token.CreateInput{Owner: "admin", Name: fmt.Sprintf("token %03d", i), Permissions: []string{"read", "upload", "list"},
			Env: "live", Limits: token.LimitsInput{AllowedCIDRs: &[]string{"203.0.113.0/24"}}})
	}
	p := s.open(b)
	firstLoad := eval[float64](p, `performance.getEntriesByType('navigation')[0].transferSize +
		performance.getEntriesByType('resource').reduce((n, r) => n + r.transferSize, 0)`)
	// Signed in and set to 100 a page through the DOM, as the accessibility tree would turn
	// Chromium's accessibility on (and its cost) for the tab: most people run without it.
	eval[bool](p, fmt.Sprintf(`(() => {
		document.getElementById('sign-in-token').value = %q;
		document.querySelector('#token-sign-in button[type=submit]').click();
		return true;
	})()`, s.admin))
	p.waitFor(`document.querySelectorAll('#token-rows tr').length === 20`)
	eval[bool](p, `(() => {
		const limit = document.getElementById('filter-limit');
		limit.value = '100';
		limit.dispatchEvent(new Event('change'));
		return true;
	})()`)
	p.waitFor(`document.querySelectorAll('#token-rows tr').length === 100`)
	render := make([]float64, 0, b.N)
	refresh := make([]float64, 0, b.N)
	b.ResetTimer()
	for range b.N {
		ms := eval[[2]float64](p, refreshJS)
		render, refresh = append(render, ms[0]), append(refresh, ms[1])
	}
	b.StopTimer()
	if n := eval[int](p, `document.querySelectorAll('#token-rows tr').length`); n != 100 {
		b.Fatalf("%d rows rendered, want 100", n)
	}
	// Medians: the machine is shared, and a render that waited for the CPU says little of the page.
	b.ReportMetric(median(render), "render-ms/op")
	b.ReportMetric(median(refresh), "refresh-ms/op")
	b.ReportMetric(slices.Max(render), "max-render-ms")
	b.ReportMetric(firstLoad/1024, "first-load-KiB")
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
