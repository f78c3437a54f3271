// Package example is the API of the worked example: another team's API, protected by an
// apitokens consumer authorizer. GET /whoami answers the caller; POST /upload takes a body, and
// its authorizer's route map requires the upload permission for it. Like any API behind the
// authorizer, it sees only the authorizer's context, never the token, and imports no apitokens
// package. On AWS, functions/example-whoami serves GET /whoami behind the example REST API of
// template.yaml; locally, apitokens serve serves both routes under /example/.
package example

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// RoutePermissions is the route map of the example API's authorizer (ROUTE_PERMISSIONS): any
// valid token may call GET /whoami, only one with upload may call POST /upload, and every other
// route is refused.
const RoutePermissions = `{"GET /whoami":[],"POST /upload":["upload"]}`

// APIName is the example API's name (API_NAME): tokens bound to other APIs are refused there.
const APIName = "example"

// MaxUploadBytes is the largest body POST /upload takes; larger ones answer 413.
const MaxUploadBytes = 1 << 20

// Keys of the authorizer's context read here (pkg/authorizer's Context* constants).
const (
	contextTokenID     = "tokenId"
	contextOwner       = "owner"
	contextPermissions = "permissions" // space-separated
)

// Caller is the token a request was allowed with, as the authorizer's context describes it.
type Caller struct {
	TokenID     string   `json:"tokenId"`
	Owner       string   `json:"owner"`
	Permissions []string `json:"permissions"`
}

// Uploaded is the answer of POST /upload: who uploaded, and how many bytes.
type Uploaded struct {
	Caller
	Bytes int64 `json:"bytes"`
}

// Response is an answer of the example API: a status and its JSON body.
type Response struct {
	Status int
	Body   []byte
}

// CallerOf returns the caller an authorizer context describes (REST: requestContext.authorizer,
// HTTP API: requestContext.authorizer.lambda). ok is false without a token id and an owner, which
// API Gateway never sends to a route behind the authorizer.
func CallerOf(authz map[string]any) (c Caller, ok bool) {
	c.TokenID, _ = authz[contextTokenID].(string)
	c.Owner, _ = authz[contextOwner].(string)
	perms, _ := authz[contextPermissions].(string)
	c.Permissions = strings.Fields(perms)
	return c, c.TokenID != "" && c.Owner != ""
}

// Whoami answers GET /whoami: 200 with the caller, 401 without an authorizer context.
func Whoami(authz map[string]any) Response {
	c, ok := CallerOf(authz)
	if !ok {
		return noContext()
	}
	return respond(http.StatusOK, c)
}

// Upload answers POST /upload: 201 with the caller and the size of the body it read, 401 without
// an authorizer context, 413 for a body over MaxUploadBytes, 400 when the body cannot be read.
// The body is counted, not kept: the example shows who may upload, not storage.
func Upload(authz map[string]any, body io.Reader) Response {
	c, ok := CallerOf(authz)
	if !ok {
		return noContext()
	}
	n, err := io.Copy(io.Discard, io.LimitReader(body, MaxUploadBytes+1))
	switch {
	case n > MaxUploadBytes:
		return respond(http.StatusRequestEntityTooLarge, refusal{Error: "Upload is larger than 1 MiB"})
	case err != nil:
		return respond(http.StatusBadRequest, refusal{Error: "Upload could not be read"})
	}
	return respond(http.StatusCreated, Uploaded{Caller: c, Bytes: n})
}

// refusal is the body of the example's own error answers, shaped like its gateway responses'.
type refusal struct {
	Valid bool   `json:"valid"`
	Error string `json:"error"`
}

func noContext() Response {
	return respond(http.StatusUnauthorized, refusal{Error: "No authorizer context"})
}

func respond(status int, body any) Response {
	b, err := json.Marshal(body)
	if err != nil {
		// Only a programming error gets here: every body is a plain struct.
		return Response{Status: http.StatusInternalServerError, Body: []byte(`{"valid":false,"error":"Internal error"}`)}
	}
	return Response{Status: status, Body: b}
}
