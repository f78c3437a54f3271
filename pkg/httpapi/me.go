package httpapi

import (
	"net/http"

	"github.com/apitokens/apitokens/pkg/token"
)

// MeResponse is the answer of GET /me: who the caller is, as the authenticator established it.
// The dashboard reads it after sign-in to know whose tokens it shows and whether to offer the
// admin's choices (another owner).
type MeResponse struct {
	Owner       string   `json:"owner"`
	Admin       bool     `json:"admin"`
	Permissions []string `json:"permissions"`
	TokenID     *string  `json:"tokenId"` // null for a caller that presented no token of this API
}

// me answers the authenticated principal. It reads nothing from the store: the authenticator
// has just checked the caller (a revoked or disabled token never gets here).
func (a *API) me(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, MeView(principal(r)))
}

// MeView is p as GET /me shows it.
func MeView(p token.Principal) MeResponse {
	perms := p.Permissions
	if perms == nil {
		perms = []string{}
	}
	return MeResponse{Owner: p.Owner, Admin: p.IsAdmin(), Permissions: perms, TokenID: stringOrNil(p.TokenID)}
}
