package dashboard_test

import (
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/dashboard"
	"github.com/apitokens/apitokens/pkg/token"
)

// TestRotateUntilFirstUse: the rotate dialog's "Until the new one is first used" rotates with
// gracePeriod untilFirstUse and the maximum chosen beside it (enabled only with that choice): the
// old secret works until the new one is first used, then never again.
func TestRotateUntilFirstUse(t *testing.T) {
	s := newSite(t, dashboard.Config{}, token.Config{})
	tok, old := s.mint(t, token.CreateInput{Owner: "admin", Name: "nightly", Permissions: []string{"read"}})
	p := s.open(t)
	p.signIn(s.admin)

	p.click(p.named("button", "Rotate").in(p.row("nightly")))
	dlg := p.dialog(`Rotate “nightly”`)
	if !eval[bool](p, `document.getElementById('rotate-max').disabled`) {
		t.Error("the maximum is enabled before until-first-use is chosen")
	}
	p.click(p.named("radio", "Until the new one is first used").in(dlg))
	if eval[bool](p, `document.getElementById('rotate-max').disabled`) {
		t.Fatal("the maximum stays disabled with until-first-use chosen")
	}
	p.choose("At most", "24 hours")
	p.click(p.named("button", "Rotate").in(dlg))
	secret := p.dialog("New token")
	rotated := eval[string](p, `document.getElementById('secret-value').textContent`)
	p.click(p.named("button", "Done").in(secret))
	if !strings.HasPrefix(rotated, "tok_") || rotated == old {
		t.Fatalf("the dialog showed %q after a rotation", rotated)
	}

	rec := s.get(t, tok.ID)
	if !rec.PrevUntilFirstUse || !rec.PrevSecretUntil.Equal(rec.UpdatedAt.Add(24*time.Hour)) {
		t.Fatalf("stored grace: untilFirstUse %v until %v (rotated at %v); want true, 24 h after the rotation", rec.PrevUntilFirstUse, rec.PrevSecretUntil, rec.UpdatedAt)
	}
	if v := s.verify(t, old); !v.Valid {
		t.Fatalf("the old secret before the new one's first use: %+v", v)
	}
	if v := s.verify(t, rotated); !v.Valid || v.TokenID != tok.ID {
		t.Fatalf("the new secret: %+v", v)
	}
	if v := s.verify(t, old); v.Valid || v.Code != token.CodeNotFound {
		t.Fatalf("the old secret after the new one's first use: %+v", v)
	}

	// The dialog opens again with the maximum disabled and its default back.
	p.click(p.named("button", "Rotate").in(p.row("nightly")))
	dlg = p.dialog(`Rotate “nightly”`)
	if !eval[bool](p, `document.getElementById('rotate-max').disabled`) || eval[string](p, `document.getElementById('rotate-max').value`) != "604800" {
		t.Error("a reopened rotate dialog keeps the last maximum, or enables it")
	}
	p.click(p.named("button", "Cancel").in(dlg))
}
