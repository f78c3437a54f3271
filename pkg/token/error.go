package token

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status in pkg/httpapi; the domain only says what went wrong.
const (
	EINVALID      = "invalid"      // the request breaks a rule; nothing was changed
	EUNAUTHORIZED = "unauthorized" // no usable credentials
	EFORBIDDEN    = "forbidden"    // credentials are valid but lack a permission
	ENOTFOUND     = "not_found"    // no such token for this caller (also another owner's token)
	ECONFLICT     = "conflict"     // a concurrent change, a duplicate clientId, or a state that forbids the call
	ETOOLARGE     = "too_large"    // a request body over the limit
	ERATELIMITED  = "rate_limited" // too many requests
	EINTERNAL     = "internal"     // anything else; details are logged, never shown
)

// Error is an application error whose Message is safe to show to the caller.
type Error struct {
	Code    string
	Message string
	Limit   *LimitState // with ERATELIMITED: the limit, for Retry-After and RateLimit-* headers
}

func (e *Error) Error() string {
	return fmt.Sprintf("apitokens error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message for the caller.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other non-nil
// error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of the first *Error in err's chain, and
// "Internal error." for any other error, so internal details never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
