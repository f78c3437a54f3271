package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode"
)

// refusedRune reports whether r may not appear in a name or in meta: C0 and C1 controls and DEL,
// bidi controls (Unicode's Bidi_Control: U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069),
// zero-width characters (U+200B-U+200D, U+2060, U+FEFF) and the line and paragraph separators
// U+2028 and U+2029. Each is invisible, or reorders or breaks the text around it, so a dashboard
// that shows it would show something other than what is stored.
func refusedRune(r rune) bool {
	if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
		return true
	}
	switch r {
	case '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u2028', '\u2029':
		return true
	}
	return false
}

// checkText returns EINVALID naming path and the first refused character of s, or nil.
func checkText(path, s string) error {
	for _, r := range s {
		if refusedRune(r) {
			return Errorf(EINVALID, "%s: must not contain U+%04X (control, bidi, zero-width, line and paragraph separator characters are refused)", path, r)
		}
	}
	return nil
}

// FieldPath returns how error messages name the member key of the JSON object at parent ("" for
// the request body): parent.key, or parent["key"], quoted, when the key is not a plain name of
// ASCII letters, digits, _ and - (so that a dot, a space or an invisible character in a key can
// neither hide nor pass for a level).
func FieldPath(parent, key string) string {
	if !plainKey(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func plainKey(k string) bool {
	for _, c := range []byte(k) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return k != ""
}

// checkMeta walks meta, one valid JSON object, and returns EINVALID naming the path of the first
// repeated key, or of the first key or string value holding a refused character.
func checkMeta(meta []byte) error {
	if plainMeta(meta) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(meta))
	dec.UseNumber()
	return checkMetaValue(dec, "meta")
}

func checkMetaValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return Errorf(EINVALID, "meta: must be a JSON object")
	}
	switch tok {
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := checkMetaValue(dec, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case json.Delim('{'):
		seen := make(map[string]bool)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return Errorf(EINVALID, "meta: must be a JSON object")
			}
			key, _ := tok.(string)
			p := FieldPath(path, key)
			if seen[key] {
				return Errorf(EINVALID, "%s: duplicate key", p)
			}
			seen[key] = true
			if err := checkText(p, key); err != nil {
				return err
			}
			if err := checkMetaValue(dec, p); err != nil {
				return err
			}
		}
	default:
		if s, ok := tok.(string); ok {
			return checkText(path, s)
		}
		return nil
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return Errorf(EINVALID, "meta: must be a JSON object")
	}
	return nil
}

// plainMeta reports whether compact JSON (as json.Compact writes it) certainly passes checkMeta,
// without decoding it: every byte printable ASCII, so no refused character and no escape that
// could hide one, and no object with a key twice. false means "check it fully", which then names
// the fault; most metadata takes this path and costs no allocation beyond the key lists.
func plainMeta(meta []byte) bool {
	for _, c := range meta {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	// The keys of the open objects, innermost last, each with its object's depth; a small
	// metadata object keeps them on the stack.
	type key struct {
		depth int
		name  []byte
	}
	var stack [16]key
	keys, depth := stack[:0], 0
	for i := 0; i < len(meta); i++ {
		switch meta[i] {
		case '{':
			depth++
		case '}':
			for len(keys) > 0 && keys[len(keys)-1].depth == depth {
				keys = keys[:len(keys)-1]
			}
			depth--
		case '"':
			end := i + 1 + bytes.IndexByte(meta[i+1:], '"') // no escapes: the next quote ends it
			if end+1 < len(meta) && meta[end+1] == ':' {    // in compact JSON only a key is followed by ':'
				name := meta[i+1 : end]
				for j := len(keys) - 1; j >= 0 && keys[j].depth == depth; j-- {
					if bytes.Equal(keys[j].name, name) {
						return false
					}
				}
				keys = append(keys, key{depth, name})
			}
			i = end
		}
	}
	return true
}
