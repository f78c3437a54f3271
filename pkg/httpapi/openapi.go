package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/apitokens/apitokens"
)

// openAPICacheControl lets clients keep the document five minutes, then revalidate it by ETag:
// it changes only with a deployment.
const openAPICacheControl = "public, max-age=300"

// openAPIDocument is openapi.yaml as JSON with its ETag, rendered on first use rather than at
// init, which every Lambda cold start would pay.
var openAPIDocument = sync.OnceValues(func() (openAPIJSON, error) {
	body, err := yamlToJSON([]byte(apitokens.OpenAPI))
	if err != nil {
		return openAPIJSON{}, fmt.Errorf("httpapi: render openapi.yaml as JSON: %w", err)
	}
	sum := sha256.Sum256(body)
	return openAPIJSON{body: body, etag: `"` + hex.EncodeToString(sum[:]) + `"`}, nil
})

type openAPIJSON struct {
	body []byte
	etag string
}

// openAPI answers the OpenAPI document as JSON, cacheable, and 304 to a request that holds the
// current version (If-None-Match).
func (a *API) openAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := openAPIDocument()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", openAPICacheControl)
	h.Set("ETag", doc.etag)
	if etagMatches(r.Header.Get("If-None-Match"), doc.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc.body)
}

// etagMatches reports whether an If-None-Match header names etag, or is "*" (RFC 9110 13.1.2,
// weak comparison).
func etagMatches(header, etag string) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			return true
		}
	}
	return false
}

// yamlToJSON renders a YAML document as JSON, keeping the order of its keys.
func yamlToJSON(doc []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeYAMLAsJSON(&buf, &root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeYAMLAsJSON(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("line %d: want one YAML document", n.Line)
		}
		return writeYAMLAsJSON(buf, n.Content[0])
	case yaml.AliasNode:
		return writeYAMLAsJSON(buf, n.Alias)
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSONValue(buf, n.Content[i].Value); err != nil { // JSON keys are strings
				return err
			}
			buf.WriteByte(':')
			if err := writeYAMLAsJSON(buf, n.Content[i+1]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeYAMLAsJSON(buf, c); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		var v any = n.Value // strings, and timestamps, which JSON has only as strings
		switch n.ShortTag() {
		case "!!int", "!!float", "!!bool", "!!null":
			if err := n.Decode(&v); err != nil {
				return err
			}
		}
		return writeJSONValue(buf, v)
	default:
		return fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	return nil
}

// writeJSONValue writes v as JSON without escaping <, > and &, which descriptions use.
func writeJSONValue(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode ends with a newline
	return nil
}
