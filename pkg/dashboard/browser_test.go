package dashboard_test

// The dashboard in a real browser (headless Chromium), against the real server: what a person
// does, found by the names a screen reader announces. Each test is one person's session in a tab
// of its own; the harness is browser_helpers_test.go. Tests of features other branches bring
// (the usage chart, live limit state, OIDC sign-in) go in files of their own next to this one,
// with the same harness: site.open, tab.signIn, tab.click(tab.named(role, name)), ...

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/apitokens/apitokens/pkg/dashboard"
	"github.com/apitokens/apitokens/pkg/token"
)

// TestSignInWithToken: a token that cannot manage tokens is refused with the reason, a manage or
// admin token signs in and shows its owner's list; the pasted token is kept in memory only, and
// signing out forgets it.
func TestSignInWithToken(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{})
	_, reader := s.mint(t, token.CreateInput{Owner: "alice", Name: "reader", Permissions: []string{"read"}})
	p := s.open(t)

	p.fill("Token", "tok_live_not-a-token")
	p.click(p.named("button", "Sign in"))
	p.waitFor(`document.getElementById('alert-text').textContent !== ''`)
	if got := p.alertText(); got != "Token is malformed." {
		t.Errorf("a malformed token: alert %q, want the API's message", got)
	}

	p.fill("Token", reader)
	p.click(p.named("button", "Sign in"))
	p.waitFor(`document.getElementById('alert-text').textContent.includes('neither the manage nor the admin permission')`)

	p.signIn(s.admin)
	p.waitFor(`document.getElementById('session-owner').textContent === 'admin'`)
	p.row("admin (test)")
	if everything := p.everything(); strings.Contains(everything, s.admin) || strings.Contains(everything, s.admin[len(s.admin)-20:]) {
		t.Error("the signed-in token is in the page or its storage")
	}

	p.click(p.named("button", "Sign out"))
	p.waitVisible(p.named("button", "Sign in"))
	if n := eval[int](p, `document.querySelectorAll('#token-rows tr').length`); n != 0 {
		t.Errorf("after sign-out the page still shows %d rows", n)
	}
}

// TestCreateAndCopyOnce: a token made in the create form appears once, in a dialog named
// "New token" that says it will not be shown again; Copy puts it on the clipboard, and it is the
// token: POST /verify accepts it. After Done, it is nowhere: not in the DOM, not in a field,
// not in sessionStorage or localStorage.
func TestCreateAndCopyOnce(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{})
	p := s.open(t)
	p.signIn(s.admin)

	p.click(p.named("DisclosureTriangle", "Create a token"))
	p.fill("Name", "ci deploy")
	p.fill("Permissions", "upload, list")
	p.choose("Expires", "In 7 days")
	p.fill("Environment", "live")
	p.click(p.named("button", "Create token"))

	dlg := p.dialog("New token")
	if text := eval[string](p, `document.getElementById('secret-dialog').textContent`); !strings.Contains(text, "will not be shown again") {
		t.Errorf("the new-token dialog does not say it will not be shown again: %q", text)
	}
	p.click(p.named("button", "Copy").in(dlg))
	p.waitFor(`document.getElementById('copy-status').textContent === 'Copied to the clipboard.'`)
	copied := eval[string](p, `navigator.clipboard.readText()`)
	if !strings.HasPrefix(copied, "tok_live_") {
		t.Fatalf("clipboard holds %q, want the new token", copied)
	}
	if shown := eval[string](p, `document.getElementById('secret-value').textContent`); shown != copied {
		t.Errorf("the dialog shows %q, the clipboard holds %q", shown, copied)
	}
	v := s.verify(t, copied)
	if !v.Valid || v.Name != "ci deploy" || strings.Join(v.Permissions, ",") != "upload,list" {
		t.Errorf("POST /verify of the copied token: %+v", v)
	}
	if v.ExpiresAt == nil || v.ExpiresAt.Sub(time.Now()) > 7*24*time.Hour+time.Minute || v.ExpiresAt.Sub(time.Now()) < 7*24*time.Hour-time.Minute {
		t.Errorf("expires %v, want in 7 days", v.ExpiresAt)
	}

	p.click(p.named("button", "Done").in(dlg))
	p.waitFor(secretClosed)
	p.row("ci deploy")
	everything := p.everything()
	for _, part := range []string{copied, copied[len(copied)-30:]} {
		if strings.Contains(everything, part) {
			t.Fatalf("after Done, the page or its storage still holds the token (%q)", part)
		}
	}
	if logs := s.logs.String(); strings.Contains(logs, copied[len(copied)-30:]) || strings.Contains(logs, s.admin[len(s.admin)-30:]) {
		t.Error("the server's log shows a token")
	}
	if !strings.Contains(s.logs.String(), `route="POST /tokens" status=201`) {
		t.Errorf("the server's log does not show the create: the check above looked at nothing:\n%s", s.logs.String())
	}
	if got := p.rowText("ci deploy", ".badge"); got != "active" {
		t.Errorf("new token's badge %q", got)
	}
	if got := p.rowText("ci deploy", ".perms"); got != "uploadlist" {
		t.Errorf("new token's permissions cell %q", got)
	}
}

// TestAPIErrorShown: a create the API refuses shows the API's own message, next to the form,
// and creates nothing.
func TestAPIErrorShown(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{})
	p := s.open(t)
	p.signIn(s.admin)
	p.click(p.named("DisclosureTriangle", "Create a token"))
	p.fill("Name", "bad network")
	p.fill("Allowed networks", "10.0.0.0/33")
	p.click(p.named("button", "Create token"))
	p.waitFor(`document.querySelector('#create-form .form-error')?.textContent !== ''`)
	got := eval[string](p, `document.querySelector('#create-form .form-error').textContent`)
	if !strings.HasPrefix(got, "allowedCidrs[0]: ") {
		t.Errorf("the form shows %q, want the API's message about allowedCidrs[0]", got)
	}
	page, err := s.svc.List(context.Background(), admin(), token.ListInput{Owner: "admin", Status: "all"})
	if err != nil || len(page.Tokens) != 1 {
		t.Errorf("after a refused create the owner has %d tokens (%v), want only the admin's", len(page.Tokens), err)
	}
}

// TestRotateWithGrace: Rotate asks for a grace period; with 1 hour, the new token is shown once
// the same way, both it and the old one verify, and after Done the new one is nowhere in the page.
// With none, the old one stops at once.
func TestRotateWithGrace(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{})
	tok, old := s.mint(t, token.CreateInput{Owner: "admin", Name: "nightly", Permissions: []string{"read"}})
	p := s.open(t)
	p.signIn(s.admin)

	p.click(p.named("button", "Rotate").in(p.row("nightly")))
	dlg := p.dialog(`Rotate “nightly”`)
	p.click(p.named("radio", "1 hour").in(dlg))
	p.click(p.named("button", "Rotate").in(dlg))
	secret := p.dialog("New token")
	rotated := eval[string](p, `document.getElementById('secret-value').textContent`)
	if !strings.HasPrefix(rotated, "tok_") || rotated == old {
		t.Fatalf("the dialog shows %q after a rotation", rotated)
	}
	if v := s.verify(t, rotated); !v.Valid || v.TokenID != tok.ID {
		t.Errorf("the new secret: %+v", v)
	}
	if v := s.verify(t, old); !v.Valid {
		t.Errorf("the old secret within its hour of grace: %+v", v)
	}
	p.click(p.named("button", "Done").in(secret))
	p.waitFor(secretClosed)
	if strings.Contains(p.everything(), rotated[len(rotated)-30:]) {
		t.Fatal("after Done, the page or its storage still holds the rotated token")
	}

	p.click(p.named("button", "Rotate").in(p.row("nightly")))
	dlg = p.dialog(`Rotate “nightly”`)
	p.click(p.named("radio", "None: stop it now").in(dlg))
	p.click(p.named("button", "Rotate").in(dlg))
	secret = p.dialog("New token")
	third := eval[string](p, `document.getElementById('secret-value').textContent`)
	p.click(p.named("button", "Done").in(secret))
	if v := s.verify(t, rotated); v.Valid {
		t.Errorf("the second secret still verifies after a rotation without grace: %+v", v)
	}
	if v := s.verify(t, third); !v.Valid {
		t.Errorf("the third secret: %+v", v)
	}
}

// TestDisableEnableRevoke: the row's buttons change the token and its badge at once; Revoke
// asks first, naming the token, and Cancel changes nothing.
func TestDisableEnableRevoke(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{})
	tok, plaintext := s.mint(t, token.CreateInput{Owner: "admin", Name: "uploader", Permissions: []string{"upload"}})
	s.mint(t, token.CreateInput{Owner: "admin", Name: "bystander", Permissions: []string{"read"}})
	p := s.open(t)
	p.signIn(s.admin)

	p.click(p.named("button", "Disable").in(p.row("uploader")))
	p.waitBadge("uploader", "disabled")
	if v := s.verify(t, plaintext); v.Code != "DISABLED" {
		t.Errorf("after Disable, verify says %s", v.Code)
	}
	p.click(p.named("button", "Enable").in(p.row("uploader")))
	p.waitBadge("uploader", "active")
	if v := s.verify(t, plaintext); !v.Valid {
		t.Errorf("after Enable, verify says %s", v.Code)
	}

	p.click(p.named("button", "Revoke").in(p.row("uploader")))
	confirm := p.dialog("Revoke “uploader”?")
	if text := eval[string](p, `document.getElementById('confirm-text').textContent`); !strings.Contains(text, "“uploader”") || !strings.Contains(text, tok.Hint) {
		t.Errorf("the confirmation does not name the token: %q", text)
	}
	p.click(p.named("button", "Cancel").in(confirm))
	p.waitFor(`!document.getElementById('confirm-dialog').open`)
	if st := s.get(t, tok.ID).Status(time.Now()); st != token.StatusActive {
		t.Fatalf("Cancel revoked the token: %s", st)
	}

	p.click(p.named("button", "Revoke").in(p.row("uploader")))
	p.click(p.named("button", "Revoke").in(p.dialog("Revoke “uploader”?")))
	p.waitBadge("uploader", "revoked")
	if st := s.get(t, tok.ID).Status(time.Now()); st != token.StatusRevoked {
		t.Errorf("after Revoke the token is %s", st)
	}
	if v := s.verify(t, plaintext); v.Code != "REVOKED" {
		t.Errorf("after Revoke, verify says %s", v.Code)
	}
	if got := p.rowText("bystander", ".badge"); got != "active" {
		t.Errorf("another token's badge changed to %q", got)
	}
	if n := eval[int](p, rowJS("uploader")+`.querySelectorAll('.actions button:not([hidden])').length`); n != 0 {
		t.Errorf("a revoked token still offers %d actions", n)
	}
}

// TestListPagination: pages of the chosen size, Next and Previous through them, every token on
// exactly one page, and the filter by status.
func TestListPagination(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{})
	want := map[string]bool{"admin (test)": true}
	for i := range 24 {
		name := fmt.Sprintf("token %02d", i)
		want[name] = true
		s.mint(t, token.CreateInput{Owner: "admin", Name: name, Permissions: []string{"read"}})
	}
	revoked, _ := s.mint(t, token.CreateInput{Owner: "admin", Name: "gone", Permissions: []string{"read"}})
	if _, err := s.svc.Revoke(context.Background(), admin(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	want["gone"] = true
	p := s.open(t)
	p.signIn(s.admin)
	p.waitFor(`document.querySelectorAll('#token-rows tr').length === 20`)
	p.choose("Per page", "10")

	names := func() []string {
		return eval[[]string](p, `[...document.querySelectorAll('#token-rows .details-toggle')].map((b) => b.textContent)`)
	}
	renders := func() int { return eval[int](p, `Number(document.getElementById('token-rows').dataset.renders)`) }
	next := func(button string) []string {
		t.Helper()
		before := renders()
		p.click(p.named("button", button))
		p.waitFor(fmt.Sprintf(`Number(document.getElementById('token-rows').dataset.renders) > %d`, before))
		return names()
	}
	p.waitFor(`document.querySelectorAll('#token-rows tr').length === 10`)
	pages := [][]string{names(), next("Next page"), next("Next page")}
	if got := []int{len(pages[0]), len(pages[1]), len(pages[2])}; got[0] != 10 || got[1] != 10 || got[2] != 6 {
		t.Fatalf("page sizes %v, want [10 10 6]", got)
	}
	if !eval[bool](p, `document.getElementById('page-next').disabled`) {
		t.Error("Next page is enabled on the last page")
	}
	seen := map[string]int{}
	for _, page := range pages {
		for _, n := range page {
			seen[n]++
		}
	}
	for n := range want {
		if seen[n] != 1 {
			t.Errorf("token %q is on %d pages, want 1", n, seen[n])
		}
	}
	if back := next("Previous page"); strings.Join(back, ",") != strings.Join(pages[1], ",") {
		t.Errorf("Previous page shows %v, want the second page %v", back, pages[1])
	}
	if got := eval[string](p, `document.getElementById('page-info').textContent`); got != "Page 2" {
		t.Errorf("page info %q", got)
	}

	before := renders()
	p.choose("Status", "Revoked")
	p.waitFor(fmt.Sprintf(`Number(document.getElementById('token-rows').dataset.renders) > %d`, before))
	if got := names(); len(got) != 1 || got[0] != "gone" {
		t.Errorf("status Revoked lists %v", got)
	}
}

// TestEditAndDetails: Edit changes what it shows and nothing else; the details show the
// token's settings and limits, and its audit events, newest first.
func TestEditAndDetails(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{})
	tok, _ := s.mint(t, token.CreateInput{Owner: "admin", Name: "metered", Permissions: []string{"read", "list"}})
	p := s.open(t)
	p.signIn(s.admin)

	p.click(p.named("button", "Edit").in(p.row("metered")))
	dlg := p.dialog("Edit “metered”")
	p.fill("Name", "metered api")
	p.fill("Requests", "100")
	p.choose("Window", "per minute")
	p.fill("Uses left", "1000")
	p.fill("Refill to", "1000")
	p.choose("Refill every", "day")
	p.fill("Allowed networks", "203.0.113.0/24, 2001:db8::/32")
	p.click(p.named("button", "Save changes").in(dlg))
	p.waitFor(`!document.getElementById('edit-dialog').open`)
	p.row("metered api")

	got := s.get(t, tok.ID)
	if got.Name != "metered api" || got.RateLimit == nil || got.RateLimit.Limit != 100 || got.RateLimit.Window != time.Minute ||
		got.Remaining == nil || *got.Remaining != 1000 || got.Refill == nil || got.Refill.Amount != 1000 || got.Refill.Interval != 24*time.Hour ||
		len(got.AllowedCIDRs) != 2 || strings.Join(got.Permissions, ",") != "read,list" {
		t.Fatalf("after Edit the token is %+v", got)
	}

	p.click(p.named("button", "metered api"))
	p.waitFor(`document.querySelector('.details-row .audit-table tbody tr') !== null`)
	facts := eval[string](p, `document.querySelector('.details-row .facts-list').textContent`)
	for _, want := range []string{"100 per minute", "1,000 uses left", "refilled to 1,000 every 1 day", "203.0.113.0/24, 2001:db8::/32"} {
		if !strings.Contains(facts, want) {
			t.Errorf("details lack %q: %s", want, facts)
		}
	}
	actions := eval[[]string](p, `[...document.querySelectorAll('.details-row .audit-table tbody tr td:nth-child(2)')].map((td) => td.textContent)`)
	if strings.Join(actions, ",") != "update,create" {
		t.Errorf("audit events %v, want update then create", actions)
	}
	if changes := eval[string](p, `document.querySelector('.details-row .audit-table tbody tr td.changes').textContent`); !strings.Contains(changes, "name: metered → metered api") {
		t.Errorf("the update's changes: %q", changes)
	}
	if got := eval[string](p, `document.querySelector('[aria-controls^="details-"]').getAttribute('aria-expanded')`); got != "true" {
		t.Errorf("the name button's aria-expanded is %q while the details are open", got)
	}
}

// namedRoles are the roles of controls: each must have an accessible name.
var namedRoles = []string{"button", "textbox", "spinbutton", "combobox", "checkbox", "radio", "link", "DisclosureTriangle", "dialog", "table"}

// checkNames fails the test for every control of the page, as the accessibility tree has it,
// that has no name, and for every name of want no control has.
func checkNames(t *testing.T, p *tab, want map[string][]string) {
	t.Helper()
	res, err := chromedp.Call(p.ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string][]string{}
	for _, ax := range res.Nodes {
		role := roleOf(ax)
		if ax.Ignored || !slices.Contains(namedRoles, role) {
			continue
		}
		var name string
		if ax.Name != nil {
			_ = json.Unmarshal(ax.Name.Value, &name)
		}
		if strings.TrimSpace(name) == "" {
			t.Errorf("a %s has no accessible name (backend node %d)", role, ax.BackendDOMNodeID)
		}
		have[role] = append(have[role], name)
	}
	for role, names := range want {
		for _, n := range names {
			if !slices.Contains(have[role], n) {
				t.Errorf("no %s named %q; the %ss are %q", role, n, role, have[role])
			}
		}
	}
}

// TestEveryControlHasAName: on the sign-in page and on the signed-in page (create form open,
// details open, a dialog open), every control has an accessible name, and the names the tests
// and screen readers rely on are there.
func TestEveryControlHasAName(t *testing.T) {
	s := newSite(t, dashboard.Config{AllowedPermissions: []string{"read", "upload"}}, token.Config{AllowedPermissions: []string{"read", "upload"}})
	tok, _ := s.mint(t, token.CreateInput{Owner: "admin", Name: "paused", Permissions: []string{"read"}})
	enabled := false
	if _, err := s.svc.Update(context.Background(), admin(), tok.ID, token.UpdateInput{Enabled: &enabled}); err != nil {
		t.Fatal(err)
	}
	p := s.open(t)
	checkNames(t, p, map[string][]string{"button": {"Sign in"}, "textbox": {"Token"}})

	p.signIn(s.admin)
	p.row("paused")
	p.click(p.named("DisclosureTriangle", "Create a token"))
	p.click(p.named("button", "paused"))
	p.waitFor(`document.querySelector('.details-row .audit-table') !== null`)
	checkNames(t, p, map[string][]string{
		"button":   {"Create token", "Rotate", "Revoke", "Disable", "Enable", "Edit", "Sign out", "Refresh"},
		"textbox":  {"Name", "Environment", "Owner", "Allowed networks"},
		"combobox": {"Expires", "Status", "Per page"},
		"checkbox": {"read", "upload", "manage", "admin"},
		"table":    {"Tokens"},
	})
	if got := eval[string](p, `document.querySelector('#create-form fieldset legend').textContent`); got != "Permissions" {
		t.Errorf("the permission chips are in a group named %q, want Permissions", got)
	}

	p.click(p.named("button", "Revoke").in(p.row("paused")))
	p.dialog("Revoke “paused”?")
	checkNames(t, p, map[string][]string{"button": {"Cancel", "Revoke"}, "dialog": {"Revoke “paused”?"}})
}

// TestKeyboardOnly: a person without a mouse signs in, creates a token and closes the one-time
// box with the keyboard alone; Escape closes it as Done does, and empties it.
func TestKeyboardOnly(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{})
	p := s.open(t)
	press := func(keys string) {
		t.Helper()
		p.do(chromedp.KeyEvent(keys))
	}
	// tabTo presses Tab until the focus is on the element the expression finds.
	tabTo := func(expr string) {
		t.Helper()
		for range 40 {
			if eval[bool](p, `document.activeElement === `+expr) {
				return
			}
			press(kb.Tab)
		}
		t.Fatalf("Tab never reaches %s", expr)
	}

	tabTo(`document.getElementById('sign-in-token')`)
	press(s.admin + kb.Enter)
	p.waitVisible(p.named("button", "Sign out"))
	p.row("admin (test)")

	tabTo(`document.querySelector('#create-box summary')`)
	press(kb.Enter)
	tabTo(`document.querySelector('#create-form input')`)
	press("by keyboard" + kb.Enter)
	p.dialog("New token")
	if !eval[bool](p, `document.activeElement === document.getElementById('secret-copy')`) {
		t.Error("the new-token dialog does not put the focus on Copy")
	}
	secret := eval[string](p, `document.getElementById('secret-value').textContent`)
	press(kb.Escape)
	p.waitFor(secretClosed)
	if strings.Contains(p.everything(), secret[len(secret)-30:]) {
		t.Error("Escape left the token in the page")
	}
	if v := s.verify(t, secret); !v.Valid || v.Name != "by keyboard" {
		t.Errorf("the token created with the keyboard: %+v", v)
	}
	if !eval[bool](p, `document.activeElement === `+rowJS("by keyboard")+`.querySelector('.details-toggle')`) {
		t.Error("after the dialog, the focus is not on the new token's row")
	}
}

// TestOwnerSession: a manage token of alice sees alice's tokens only, with no owner filter;
// revoking the token it is signed in with (the confirmation says so) signs it out.
func TestOwnerSession(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{})
	aliceTok, alice := s.mint(t, token.CreateInput{Owner: "alice", Name: "alice's session", Permissions: []string{token.PermManage, "read"}})
	s.mint(t, token.CreateInput{Owner: "alice", Name: "alice's job", Permissions: []string{"read"}})
	s.mint(t, token.CreateInput{Owner: "bob", Name: "bob's job", Permissions: []string{"read"}})
	p := s.open(t)
	p.signIn(alice)
	p.row("alice's job")
	names := eval[[]string](p, `[...document.querySelectorAll('#token-rows .details-toggle')].map((b) => b.textContent)`)
	slices.Sort(names)
	if strings.Join(names, "|") != "alice's job|alice's session" {
		t.Errorf("alice's page lists %q", names)
	}
	if !eval[bool](p, `document.getElementById('filter-owner-label').hidden`) {
		t.Error("a token that is not an admin's is offered the owner filter")
	}

	p.click(p.named("button", "Revoke").in(p.row("alice's session")))
	p.dialog("Revoke “alice's session”?")
	if text := eval[string](p, `document.getElementById('confirm-text').textContent`); !strings.Contains(text, "You are signed in with it") {
		t.Errorf("the confirmation does not warn that this is the session's token: %q", text)
	}
	p.click(p.named("button", "Revoke").in(p.dialog("Revoke “alice's session”?")))
	p.waitVisible(p.named("button", "Sign in"))
	if got := p.alertText(); got != "You revoked the token you were signed in with." {
		t.Errorf("alert %q", got)
	}
	if st := s.get(t, aliceTok.ID).Status(time.Now()); st != token.StatusRevoked {
		t.Errorf("alice's token is %s", st)
	}
}

// TestEditKeepsWhatItDoesNotChange: with permission chips from ALLOWED_PERMISSIONS, editing the
// name of a token that holds a permission no longer allowed keeps that permission: the page
// sends only the name.
func TestEditKeepsWhatItDoesNotChange(t *testing.T) {
	s := newSite(t, dashboard.Config{AllowedPermissions: []string{"read", "upload"}}, token.Config{})
	tok, _ := s.mint(t, token.CreateInput{Owner: "admin", Name: "old job", Permissions: []string{"upload", "legacy:write"}})
	p := s.open(t)
	p.signIn(s.admin)
	p.click(p.named("button", "Edit").in(p.row("old job")))
	dlg := p.dialog("Edit “old job”")
	p.fill("Name", "renamed job")
	p.click(p.named("button", "Save changes").in(dlg))
	p.row("renamed job")
	got := s.get(t, tok.ID)
	if got.Name != "renamed job" || strings.Join(got.Permissions, ",") != "upload,legacy:write" {
		t.Errorf("after renaming, the token is %q with %v", got.Name, got.Permissions)
	}
	page, err := s.svc.Audit(context.Background(), admin(), token.AuditInput{TokenID: tok.ID})
	if err != nil || len(page.Events) != 2 {
		t.Fatalf("audit events %v (%v), want the create and the edit", page.Events, err)
	}
	if ch := page.Events[0].Changes; len(ch) != 1 || ch[0].Field != "name" {
		t.Errorf("the edit's audit event changes %+v, want the name only", ch)
	}
}
