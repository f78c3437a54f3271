// Package apitokens holds the files of the repository's root that binaries need: the OpenAPI
// document, openapi.yaml, which lives at the root where readers and tools look for it and which
// go:embed can reach only from a package in its directory. pkg/httpapi serves it.
package apitokens

import _ "embed"

// OpenAPI is openapi.yaml: the OpenAPI 3.1 document of every route of httpapi.Routes.
//
//go:embed openapi.yaml
var OpenAPI string
