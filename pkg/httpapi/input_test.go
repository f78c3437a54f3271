package httpapi_test

import (
	"testing"

	"github.com/apitokens/apitokens/pkg/token"
)

// refused is the tail of the message that refuses a character in a name or in meta.
const refused = " (control, bidi, zero-width, line and paragraph separator characters are refused)"

// TestStrictInput: every body that breaks an input rule answers 400 with the exact message,
// naming the field as a client writes it, and changes nothing.
func TestStrictInput(t *testing.T) {
	e := newEnv(t, nil)
	id := e.must(201, "POST", "/tokens", e.admin, `{"name":"target","remaining":5}`).str("id")
	tests := []struct {
		name, method, path, body, message string
	}{
		// Keys match exactly, case included, and appear once.
		{"key in another case", "POST", "/tokens", `{"name":"a","clientID":"X"}`, "clientID: unknown field"},
		{"key in upper case beside its own", "POST", "/tokens", `{"name":"a","NAME":"b"}`, "NAME: unknown field"},
		{"capitalised key alone", "POST", "/tokens", `{"Name":"a"}`, "Name: unknown field"},
		{"nested key in another case", "POST", "/tokens", `{"name":"a","rateLimit":{"Limit":5,"windowSeconds":60}}`, "rateLimit.Limit: unknown field"},
		{"nested unknown key", "POST", "/tokens", `{"name":"a","remaining":5,"refill":{"amount":5,"interval":60}}`, "refill.interval: unknown field"},
		{"unknown key that is not a plain name", "POST", "/tokens", `{"name":"a","team name":"x"}`, `["team name"]: unknown field`},
		{"repeated key", "POST", "/tokens", `{"name":"a","name":"b"}`, "name: duplicate key"},
		{"repeated key, escaped", "POST", "/tokens", `{"name":"a","n\u0061me":"b"}`, "name: duplicate key"},
		{"repeated nested key", "POST", "/tokens", `{"name":"a","rateLimit":{"limit":5,"limit":6,"windowSeconds":60}}`, "rateLimit.limit: duplicate key"},
		{"update key in another case", "PATCH", "/tokens/" + id, `{"Remaining":0}`, "Remaining: unknown field"},
		{"update repeated key", "PATCH", "/tokens/" + id, `{"remaining":0,"remaining":9}`, "remaining: duplicate key"},
		{"rotate key in another case", "POST", "/tokens/" + id + "/rotate", `{"GracePeriodSeconds":60}`, "GracePeriodSeconds: unknown field"},
		{"verify key in another case", "POST", "/verify", `{"Token":"x"}`, "Token: unknown field"},

		// Types are named by the JSON path, never by Go's.
		{"embedded field type", "POST", "/tokens", `{"name":"a","remaining":"5"}`, "remaining: must be a whole number"},
		{"fraction", "POST", "/tokens", `{"name":"a","remaining":1.5}`, "remaining: must be a whole number"},
		{"exponent", "POST", "/tokens", `{"name":"a","remaining":1e3}`, "remaining: must be a whole number"},
		{"out of int64", "POST", "/tokens", `{"name":"a","remaining":9223372036854775808}`, "remaining: must be a whole number"},
		{"nested field type", "POST", "/tokens", `{"name":"a","rateLimit":{"limit":"5","windowSeconds":60}}`, "rateLimit.limit: must be a whole number"},
		{"nested bool for number", "POST", "/tokens", `{"name":"a","remaining":1,"refill":{"amount":1,"intervalSeconds":true}}`, "refill.intervalSeconds: must be a whole number"},
		{"object for number", "POST", "/tokens", `{"name":"a","rateLimit":{"limit":{},"windowSeconds":60}}`, "rateLimit.limit: must be a whole number"},
		{"number for object", "POST", "/tokens", `{"name":"a","rateLimit":[5]}`, "rateLimit: must be a JSON object"},
		{"string for array", "POST", "/tokens", `{"name":"a","permissions":"read"}`, "permissions: must be an array of strings"},
		{"array element type", "POST", "/tokens", `{"name":"a","permissions":["read",1]}`, "permissions[1]: must be a string"},
		{"null array element", "POST", "/tokens", `{"name":"a","allowedCidrs":["10.0.0.0/8",null]}`, "allowedCidrs[1]: must be a string"},
		{"string for bool", "POST", "/tokens", `{"name":"a","autoDelete":"true"}`, "autoDelete: must be true or false"},
		{"update embedded field type", "PATCH", "/tokens/" + id, `{"rateLimit":{"limit":5,"windowSeconds":"60"}}`, "rateLimit.windowSeconds: must be a whole number"},
		{"verify element type", "POST", "/verify", `{"token":"x","permissions":[true]}`, "permissions[0]: must be a string"},

		// The body is one JSON object.
		{"null body", "POST", "/tokens", `null`, "Request body must be a JSON object."},
		{"array body", "POST", "/tokens", `[{"name":"a"}]`, "Request body must be a JSON object."},
		{"string body", "POST", "/tokens", `"name"`, "Request body must be a JSON object."},
		{"number body", "POST", "/tokens", `5`, "Request body must be a JSON object."},
		{"null update", "PATCH", "/tokens/" + id, `null`, "Request body must be a JSON object."},
		{"null rotate", "POST", "/tokens/" + id + "/rotate", `null`, "Request body must be a JSON object."},
		{"array rotate", "POST", "/tokens/" + id + "/rotate", `[]`, "Request body must be a JSON object."},
		{"null verify", "POST", "/verify", ` null `, "Request body must be a JSON object."},
		{"object then more", "POST", "/tokens", `{"name":"a"} 5`, "Request body must hold a single JSON object."},

		// Names refuse invisible and reordering characters, escaped or not.
		{"name with U+202E", "POST", "/tokens", `{"name":"invoice\u202Efdp.exe"}`, "name: must not contain U+202E" + refused},
		{"name with raw U+202E", "POST", "/tokens", "{\"name\":\"invoice\u202efdp.exe\"}", "name: must not contain U+202E" + refused},
		{"name with U+2066", "POST", "/tokens", `{"name":"a\u2066b"}`, "name: must not contain U+2066" + refused},
		{"name with U+200B", "POST", "/tokens", `{"name":"ad\u200bmin"}`, "name: must not contain U+200B" + refused},
		{"name with U+200D", "POST", "/tokens", `{"name":"a\u200db"}`, "name: must not contain U+200D" + refused},
		{"name with U+FEFF", "POST", "/tokens", `{"name":"\ufeffadmin"}`, "name: must not contain U+FEFF" + refused},
		{"name with U+2028", "POST", "/tokens", `{"name":"a\u2028b"}`, "name: must not contain U+2028" + refused},
		{"name with U+2029", "POST", "/tokens", `{"name":"a\u2029b"}`, "name: must not contain U+2029" + refused},
		{"name with C0 control", "POST", "/tokens", `{"name":"a\u0007b"}`, "name: must not contain U+0007" + refused},
		{"name with C1 control", "POST", "/tokens", `{"name":"a\u0085b"}`, "name: must not contain U+0085" + refused},
		{"name with DEL", "POST", "/tokens", `{"name":"a\u007fb"}`, "name: must not contain U+007F" + refused},
		{"renamed with U+202D", "PATCH", "/tokens/" + id, `{"name":"a\u202db"}`, "name: must not contain U+202D" + refused},

		// So does meta, in every key and string value, at any depth; its keys appear once.
		{"meta value", "POST", "/tokens", `{"name":"a","meta":{"team":"ops\u202e"}}`, "meta.team: must not contain U+202E" + refused},
		{"meta nested value", "POST", "/tokens", `{"name":"a","meta":{"a":{"b":["x","\u200b"]}}}`, "meta.a.b[1]: must not contain U+200B" + refused},
		{"meta key", "POST", "/tokens", `{"name":"a","meta":{"te\u2028am":1}}`, `meta["te\u2028am"]: must not contain U+2028` + refused},
		{"meta key that is not a plain name", "POST", "/tokens", `{"name":"a","meta":{"a.b":"\u0000"}}`, `meta["a.b"]: must not contain U+0000` + refused},
		{"meta repeated key", "POST", "/tokens", `{"name":"a","meta":{"k":1,"k":2}}`, "meta.k: duplicate key"},
		{"meta nested repeated key", "POST", "/tokens", `{"name":"a","meta":{"k":[{"x":1,"x":1}]}}`, "meta.k[0].x: duplicate key"},
		{"update meta value", "PATCH", "/tokens/" + id, `{"meta":{"by":"\ufeff"}}`, "meta.by: must not contain U+FEFF" + refused},

		// Invalid UTF-8 is refused where it is, never replaced.
		{"name not UTF-8", "POST", "/tokens", "{\"name\":\"a\xffb\"}", "name: must be valid UTF-8"},
		{"name truncated UTF-8", "POST", "/tokens", "{\"name\":\"a\xe2\x80\"}", "name: must be valid UTF-8"},
		{"name unpaired surrogate", "POST", "/tokens", `{"name":"a\ud800b"}`, "name: must be valid UTF-8"},
		{"name unpaired low surrogate", "POST", "/tokens", `{"name":"a\udc00"}`, "name: must be valid UTF-8"},
		{"meta value not UTF-8", "POST", "/tokens", "{\"name\":\"a\",\"meta\":{\"k\":[\"\xc0\xaf\"]}}", "meta.k[0]: must be valid UTF-8"},
		{"key not UTF-8", "POST", "/tokens", "{\"na\xffme\":\"a\"}", "Request body: keys must be valid UTF-8"},
		{"nested key not UTF-8", "POST", "/tokens", "{\"name\":\"a\",\"meta\":{\"\xff\":1}}", "meta: keys must be valid UTF-8"},
		{"verify token not UTF-8", "POST", "/verify", "{\"token\":\"tok_\xff\"}", "token: must be valid UTF-8"},

		// Allowlist entries are named by index; a zone is refused, not dropped.
		{"CIDR with zone", "POST", "/tokens", `{"name":"a","allowedCidrs":["10.0.0.0/8","192.0.2.1","fe80::1%eth0"]}`, `allowedCidrs[2]: "fe80::1%eth0" has an IPv6 zone (%name): zones are not allowed`},
		{"prefix with zone", "POST", "/tokens", `{"name":"a","allowedCidrs":["fe80::/64%eth0"]}`, `allowedCidrs[0]: "fe80::/64%eth0" has an IPv6 zone (%name): zones are not allowed`},
		{"prefix with zone before the length", "PATCH", "/tokens/" + id, `{"allowedCidrs":["fe80::1%1/64"]}`, `allowedCidrs[0]: "fe80::1%1/64" has an IPv6 zone (%name): zones are not allowed`},
		{"bad CIDR", "POST", "/tokens", `{"name":"a","allowedCidrs":["10.0.0.0/8","nope"]}`, `allowedCidrs[1]: "nope" is not an IPv4 or IPv6 CIDR such as 203.0.113.0/24 or 2001:db8::/32`},
		{"short mapped prefix", "POST", "/tokens", `{"name":"a","allowedCidrs":["::ffff:1.2.3.4/64"]}`, `allowedCidrs[0]: "::ffff:1.2.3.4/64" is an IPv4-mapped prefix shorter than /96`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			before := e.snapshot()
			resp := e.must(400, tt.method, tt.path, e.admin, tt.body)
			if resp.str("code") != token.EINVALID || resp.str("message") != tt.message {
				t.Fatalf("answer %s; want code %q and message %q", resp.raw, token.EINVALID, tt.message)
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("a rejected request changed the store:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestStrictInputAccepts: what the rules leave alone still works.
func TestStrictInputAccepts(t *testing.T) {
	e := newEnv(t, nil)
	created := e.must(201, "POST", "/tokens", e.admin,
		`{"name":" \t🔑 Déploiement \n","meta":{"Team":"a","team":"b","note":"ok \ufffd","n":[1,null,{"x":true}]}}`)
	if got := created.str("name"); got != "🔑 Déploiement" {
		t.Errorf("name = %q; want the trimmed name", got)
	}
	if got, want := fmtAny(created.body["meta"]), `{"Team":"a","n":[1,null,{"x":true}],"note":"ok �","team":"b"}`; got != want {
		t.Errorf("meta = %s; want %s (keys differing in case are different keys)", got, want)
	}
	e.must(200, "PATCH", "/tokens/"+created.str("id"), e.admin, `{"name":"renamed","rateLimit":null,"allowedCidrs":null}`)
	e.must(200, "POST", "/tokens/"+created.str("id")+"/rotate", e.admin, ``)

	// /verify trims the token as the Authorization header parser does.
	verified := e.must(201, "POST", "/tokens", e.admin, `{"name":"verified"}`).str("token")
	for _, body := range []string{`{"token":" ` + verified + ` "}`, `{"token":"\t` + verified + `\r\n"}`} {
		if v := e.must(200, "POST", "/verify", "", body); v.str("code") != token.CodeValid {
			t.Errorf("verify %s: %s; want VALID", body, v.raw)
		}
	}
	if resp := e.must(400, "POST", "/verify", "", `{"token":" \n "}`); resp.str("message") != "token: required" {
		t.Errorf("verify of white space: %s", resp.raw)
	}
}
