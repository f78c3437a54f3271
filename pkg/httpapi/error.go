package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

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

// writeError answers err as JSON with its status. Internal errors are logged with their detail
// and answered with "Internal error." only.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	code, message := token.ErrorCode(err), token.ErrorMessage(err)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		code, message = token.ETOOLARGE, "Request body is larger than 64 KiB."
	}
	if code == token.EINTERNAL {
		logger.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	status, ok := statuses[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="apitokens"`)
	}
	writeJSON(w, status, errorBody{Code: code, Message: message})
}
