package httpapi

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// statuses is the one place where error codes become HTTP statuses.
var statuses = map[string]int{
	token.EINVALID:      http.StatusBadRequest,
	token.EUNAUTHORIZED: http.StatusUnauthorized,
	token.EFORBIDDEN:    http.StatusForbidden,
	token.ENOTFOUND:     http.StatusNotFound,
	codeMethod:          http.StatusMethodNotAllowed,
	token.ECONFLICT:     http.StatusConflict,
	token.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	token.ERATELIMITED:  http.StatusTooManyRequests,
	token.EINTERNAL:     http.StatusInternalServerError,
}

// codeMethod is HTTP's own concern, so it lives here and not among the domain's codes.
const codeMethod = "method_not_allowed"

// errorBody is the JSON of every error answer.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// fail answers err as JSON with its status. Internal errors are logged with their detail and
// answered with "Internal error." only. A rate-limit error carries Retry-After and the
// RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset headers (seconds until the reset).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, message := token.ErrorCode(err), token.ErrorMessage(err)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		code, message = token.ETOOLARGE, "Request body is larger than 64 KiB."
	}
	if code == token.EINTERNAL {
		a.logger().ErrorContext(r.Context(), "internal error", "method", r.Method, "route", r.Pattern, "error", err)
	}
	status, ok := statuses[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="apitokens"`)
	case http.StatusTooManyRequests:
		var e *token.Error
		if errors.As(err, &e) && e.Limit != nil {
			setLimitHeaders(w.Header(), e.Limit, a.now())
		}
	}
	writeJSON(w, status, errorBody{Code: code, Message: message})
}

// setLimitHeaders writes the RateLimit headers (IETF draft) and Retry-After for state at now.
func setLimitHeaders(h http.Header, state *token.LimitState, now time.Time) {
	h.Set("RateLimit-Limit", strconv.FormatInt(state.Limit, 10))
	h.Set("RateLimit-Remaining", strconv.FormatInt(state.Remaining, 10))
	if state.Reset.IsZero() {
		return // an exhausted quota without refill: retrying will not help
	}
	secs := int64(math.Ceil(state.Reset.Sub(now).Seconds()))
	secs = max(secs, 1)
	h.Set("RateLimit-Reset", strconv.FormatInt(secs, 10))
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
}
