package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/apitokens/apitokens/pkg/token"
)

// MaxBodyBytes is the largest request body accepted; larger ones answer 413.
const MaxBodyBytes = 64 << 10

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a programming error gets here: every answer is a plain struct.
		http.Error(w, `{"code":"internal","message":"Internal error."}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// decodeBody decodes the request body, a single JSON object, into dst. An empty body is the
// empty object when emptyOK. Errors are *token.Error (EINVALID naming the field) or
// *http.MaxBytesError (answered 413).
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, emptyOK bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return token.Errorf(token.EINVALID, "Request body could not be read.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return token.Errorf(token.EINVALID, "Request body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return token.Errorf(token.EINVALID, "Request body must hold a single JSON object.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return token.Errorf(token.EINVALID, "Request body must hold a single JSON object.")
	}
	return nil
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return token.Errorf(token.EINVALID, "Request body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return token.Errorf(token.EINVALID, "Request body must be a JSON object.")
	case errors.As(err, &typ):
		return token.Errorf(token.EINVALID, "%s: must be %s", typ.Field, jsonTypeName(typ.Type))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return token.Errorf(token.EINVALID, "Request body is not valid JSON (truncated).")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return token.Errorf(token.EINVALID, "%s: unknown field", strings.Trim(name, `"`))
	}
	return token.Errorf(token.EINVALID, "Request body is not valid JSON.")
}

func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a JSON object"
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonTypeName(t.Elem()), "a "), "an ") + "s"
	case reflect.Map, reflect.Struct:
		return "a JSON object"
	}
	return fmt.Sprintf("a %s", t.Kind())
}

// optional is a JSON field that tells "absent" from "null" from a value.
type optional[T any] struct {
	Set   bool // the field was present
	Null  bool // its value was null
	Value T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	*o = optional[T]{Set: true} // a repeated key replaces, as encoding/json does for plain fields
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o.Value); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return err
		}
		// Returned as a type error so that the decoder adds the field's name.
		return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeFor[T]()}
	}
	return nil
}

func (o *optional[T]) null() bool { return o.Null }
