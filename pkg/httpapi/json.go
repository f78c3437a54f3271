package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

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
// *http.MaxBytesError (answered 413); any other is a defect (answered 500).
//
// The body is checked against dst's JSON shape before it is decoded (checkShape), because
// encoding/json is lenient where this API is strict: it matches keys case-insensitively, lets a
// repeated key win, replaces invalid UTF-8 with U+FFFD and names fields by Go struct paths in
// its errors.
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
		return errNotObject
	}
	if err := checkShape(body, reflect.TypeOf(dst).Elem()); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		// checkShape admits only bodies that decode; this is a defect, not the client's.
		return fmt.Errorf("httpapi: decode a checked body into %T: %w", dst, err)
	}
	return nil
}

var errNotObject = token.Errorf(token.EINVALID, "Request body must be a JSON object.")

// checkShape checks that body is one JSON object that fits the type t as a client reads it
// from the json tags: every key names a field exactly (case included) and appears once per
// object; every value has the field's JSON type (null is accepted for a field, never for an
// array element); the text is valid UTF-8. Errors name the field path as a client writes it:
// rateLimit.limit, permissions[2]. Values of type json.RawMessage, any or a type with its own
// UnmarshalJSON (other than optional) are free-form: only their syntax and UTF-8 are checked.
func checkShape(body []byte, t reflect.Type) error {
	c := &shapeChecker{dec: json.NewDecoder(bytes.NewReader(body)), badText: firstBadText(body)}
	c.dec.UseNumber()
	tok, err := c.token("")
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return errNotObject
	}
	if err := c.object("", t); err != nil {
		return err
	}
	if _, err := c.dec.Token(); err != io.EOF {
		return token.Errorf(token.EINVALID, "Request body must hold a single JSON object.")
	}
	return nil
}

// firstBadText returns the offset of the first byte of b that is not valid UTF-8 or that starts
// an escaped unpaired surrogate (\ud800), both of which encoding/json silently replaces with
// U+FFFD; -1 for none. Outside strings such bytes are syntax errors.
func firstBadText(b []byte) int64 {
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case c == '\\' && i+1 < len(b) && b[i+1] == 'u':
			r := hex4(b[i+2:])
			if !utf16.IsSurrogate(r) {
				i += 2
				continue
			}
			if r >= 0xdc00 || len(b) < i+12 || b[i+6] != '\\' || b[i+7] != 'u' {
				return int64(i)
			}
			if low := hex4(b[i+8:]); low < 0xdc00 || low > 0xdfff {
				return int64(i)
			}
			i += 12
		case c == '\\':
			i += 2 // an escaped character, which may be a backslash
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return int64(i)
			}
			i += n
		}
	}
	return -1
}

// hex4 returns the value of the four hex digits that b starts with, or -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	if err != nil {
		return -1
	}
	return rune(n)
}

type shapeChecker struct {
	dec     *json.Decoder
	badText int64 // firstBadText of the body
}

// next reads the next token and reports whether it held the body's first bad text (see
// firstBadText), which the decoder has replaced with U+FFFD.
func (c *shapeChecker) next() (json.Token, bool, error) {
	tok, err := c.dec.Token()
	if err != nil {
		return nil, false, syntaxError(err)
	}
	return tok, c.badText >= 0 && c.dec.InputOffset() > c.badText, nil
}

// token reads the next token of the value at path.
func (c *shapeChecker) token(path string) (json.Token, error) {
	tok, badUTF8, err := c.next()
	if badUTF8 {
		return nil, token.Errorf(token.EINVALID, "%s: must be valid UTF-8", subject(path))
	}
	return tok, err
}

// key reads the next key of the object at path.
func (c *shapeChecker) key(path string) (string, error) {
	tok, badUTF8, err := c.next()
	if badUTF8 {
		return "", token.Errorf(token.EINVALID, "%s: keys must be valid UTF-8", subject(path))
	}
	key, _ := tok.(string)
	return key, err
}

// subject names the value at path in an error message.
func subject(path string) string {
	if path == "" {
		return "Request body"
	}
	return path
}

// object checks the members of the object at path, whose '{' has been read, against the struct
// (or map) type t; a nil t is free-form.
func (c *shapeChecker) object(path string, t reflect.Type) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	switch {
	case t == nil:
	case t.Kind() == reflect.Map:
		elem = t.Elem()
	default:
		fields = jsonFields(t)
	}
	seen := make(map[string]bool)
	for c.dec.More() {
		key, err := c.key(path)
		if err != nil {
			return err
		}
		p := token.FieldPath(path, key)
		if t == nil {
			if err := c.value(p, nil); err != nil {
				return err
			}
			continue
		}
		if seen[key] {
			return token.Errorf(token.EINVALID, "%s: duplicate key", p)
		}
		seen[key] = true
		ft := elem
		if fields != nil {
			var ok bool
			if ft, ok = fields[key]; !ok {
				return token.Errorf(token.EINVALID, "%s: unknown field", p)
			}
		}
		if err := c.value(p, ft); err != nil {
			return err
		}
	}
	_, err := c.token(path)
	return err
}

// value checks the next value, at path, against t; a nil t is free-form.
func (c *shapeChecker) value(path string, t reflect.Type) error {
	tok, err := c.token(path)
	if err != nil {
		return err
	}
	if t == nil {
		return c.freeForm(path, tok)
	}
	if tok == nil {
		return nil // null leaves a plain field as it is; an optional records it
	}
	return c.typed(path, t, tok)
}

// typed checks a value that is not null, whose first token is tok, against t.
func (c *shapeChecker) typed(path string, t reflect.Type, tok json.Token) error {
	t = jsonType(t)
	if t == nil {
		return c.freeForm(path, tok)
	}
	ok := false
	switch t.Kind() {
	case reflect.String:
		_, ok = tok.(string)
	case reflect.Bool:
		_, ok = tok.(bool)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, isNum := tok.(json.Number)
		_, err := strconv.ParseInt(string(n), 10, t.Bits())
		ok = isNum && err == nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, isNum := tok.(json.Number)
		_, err := strconv.ParseUint(string(n), 10, t.Bits())
		ok = isNum && err == nil
	case reflect.Float32, reflect.Float64:
		n, isNum := tok.(json.Number)
		_, err := strconv.ParseFloat(string(n), t.Bits())
		ok = isNum && err == nil
	case reflect.Slice, reflect.Array:
		if tok != json.Delim('[') {
			break
		}
		elem := jsonType(t.Elem())
		for i := 0; c.dec.More(); i++ {
			p := fmt.Sprintf("%s[%d]", path, i)
			tok, err := c.token(p)
			if err != nil {
				return err
			}
			if tok == nil && elem != nil {
				return token.Errorf(token.EINVALID, "%s: must be %s", p, jsonTypeName(elem))
			}
			if err := c.typed(p, t.Elem(), tok); err != nil {
				return err
			}
		}
		_, err := c.token(path)
		return err
	case reflect.Struct, reflect.Map:
		if tok != json.Delim('{') {
			break
		}
		return c.object(path, t)
	}
	if !ok {
		return token.Errorf(token.EINVALID, "%s: must be %s", path, jsonTypeName(t))
	}
	return nil
}

// freeForm reads the rest of a free-form value whose first token is tok.
func (c *shapeChecker) freeForm(path string, tok json.Token) error {
	switch tok {
	case json.Delim('{'):
		return c.object(path, nil)
	case json.Delim('['):
		for i := 0; c.dec.More(); i++ {
			if err := c.value(fmt.Sprintf("%s[%d]", path, i), nil); err != nil {
				return err
			}
		}
		_, err := c.token(path)
		return err
	}
	return nil
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	optionalType    = reflect.TypeFor[interface{ null() bool }]()
)

// jsonType returns the type whose JSON shape a value of type t has: pointers and optional[T]
// stand for their T; nil for a free-form value.
func jsonType(t reflect.Type) reflect.Type {
	for {
		switch {
		case t.Kind() == reflect.Pointer:
			t = t.Elem()
		case reflect.PointerTo(t).Implements(optionalType):
			f, _ := t.FieldByName("Value")
			t = f.Type
		case t == reflect.TypeFor[json.RawMessage](), t.Kind() == reflect.Interface,
			reflect.PointerTo(t).Implements(unmarshalerType):
			return nil
		default:
			return t
		}
	}
}

// jsonFields returns the fields of struct type t by their exact JSON names, as encoding/json
// finds them: a json tag's name or else the Go name, exported fields only, the fields of an
// untagged embedded struct promoted unless a shallower field has the name.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	var embedded []reflect.Type
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if ft := f.Type; ft.Kind() == reflect.Struct || ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
				embedded = append(embedded, f.Type)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	for _, et := range embedded {
		if et.Kind() == reflect.Pointer {
			et = et.Elem()
		}
		for name, ft := range jsonFields(et) {
			if _, ok := fields[name]; !ok {
				fields[name] = ft
			}
		}
	}
	return fields
}

// syntaxError describes an error of the JSON tokenizer.
func syntaxError(err error) error {
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return token.Errorf(token.EINVALID, "Request body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return token.Errorf(token.EINVALID, "Request body is not valid JSON (truncated).")
	}
	return token.Errorf(token.EINVALID, "Request body is not valid JSON.")
}

// jsonTypeName describes the JSON type of values of the Go type t, as in "must be a string".
func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		elem := jsonType(t.Elem())
		if elem == nil {
			return "an array"
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonTypeName(elem), "a "), "an ") + "s"
	}
	return "a JSON object"
}

// optional is a JSON field that tells "absent" from "null" from a value.
type optional[T any] struct {
	Set   bool // the field was present
	Null  bool // its value was null
	Value T
}

// UnmarshalJSON decodes a value that checkShape has checked.
func (o *optional[T]) UnmarshalJSON(b []byte) error {
	*o = optional[T]{Set: true}
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

func (o *optional[T]) null() bool { return o.Null }
