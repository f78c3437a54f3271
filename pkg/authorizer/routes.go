package authorizer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// DefaultRoute is the route key of an HTTP API's catch-all route, and the route-map key for it.
const DefaultRoute = "$default"

// RouteMap maps routes to the permissions they require, e.g.
//
//	{"POST /upload": ["upload"], "DELETE /files/{id}": ["delete"], "GET /*": ["list"], "$default": ["admin"]}
//
// A route is "METHOD /path" as the API's routes or resources are written in API Gateway, or
// "$default" for an HTTP API's $default route (any method); METHOD may be ANY; in the path, "*"
// and "{param}" match any run of characters, slashes included. Requests are matched on the route
// API Gateway matched (Request.Route), never on the raw path. That is exactly how API Gateway matches the method-ARN patterns
// of an IAM policy, so the policy a token gets (Allow for the routes it satisfies, Deny for the
// others) decides every request the same way this map does, even when API Gateway reuses a cached
// policy for another route. A request needs every permission of every route it matches; a request
// that matches no route is refused.
type RouteMap struct {
	routes []route
}

type route struct {
	key      string // as configured
	method   string // upper case, or "*" for ANY
	path     string // glob over request paths: "{param}" replaced by "*"
	template string // glob over route templates: "{param}" replaced by "{}" (see templateOf)
	requires []string
}

// ParseRouteMap parses the JSON form of a RouteMap. An empty string is no map: any valid token
// may call every route. Returns an error naming the bad entry.
func ParseRouteMap(s string) (*RouteMap, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var raw map[string][]string
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("route permissions: want a JSON object of \"METHOD /path\": [permissions]: %v", err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("route permissions: the map is empty; leave it unset to allow every route")
	}
	m := &RouteMap{}
	for key, perms := range raw {
		method, path, ok := strings.Cut(key, " ")
		if key == DefaultRoute {
			method, path, ok = "ANY", DefaultRoute, true
		} else if !ok || !validMethod(method) || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " ?#") {
			return nil, fmt.Errorf("route permissions: %q: want \"METHOD /path\" with METHOD one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY, or \"$default\"", key)
		}
		for _, p := range perms {
			if p == "" || strings.ContainsAny(p, " \t") {
				return nil, fmt.Errorf("route permissions: %q: bad permission %q", key, p)
			}
		}
		if method == "ANY" {
			method = "*" // matches every method here; expanded to each one in policies
		}
		m.routes = append(m.routes, route{key: key, method: method, path: globPath(path), template: templateOf(path), requires: perms})
	}
	slices.SortFunc(m.routes, func(a, b route) int { return strings.Compare(a.key, b.key) })
	return m, nil
}

func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY":
		return true
	}
	return false
}

// globPath turns "{param}" segments into "*", as API Gateway's resource ARNs express them.
func globPath(path string) string { return replaceParams(path, "*") }

// templateOf writes every path parameter of a route as "{}", so that routes compare whatever
// their parameters are named: /files/{id} is /files/{fileId}, but not /files/{id}/versions.
func templateOf(path string) string { return replaceParams(path, "{}") }

// replaceParams writes each "{param}" of path as with; a path without parameters is returned as
// it is, without allocating.
func replaceParams(path, with string) string {
	if strings.IndexByte(path, '{') < 0 {
		return path
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(path, '{')
		j := strings.IndexByte(path, '}')
		if i < 0 || j < i {
			b.WriteString(path)
			return b.String()
		}
		b.WriteString(path[:i])
		b.WriteString(with)
		path = path[j+1:]
	}
}

// match reports whether r matches a request: a route template as API Gateway matched it, written
// by templateOf (one parameter stands for one parameter; only a "*" of the key spans more), or a
// request path (a parameter of the key spans any characters, as in IAM's patterns).
func (r *route) match(method, route string, template bool) bool {
	if !glob(r.method, method) {
		return false
	}
	if template {
		return glob(r.template, route)
	}
	return glob(r.path, route)
}

// allows reports whether a token with the permissions granted may call method on route (a
// template when template is set, else a path).
func (m *RouteMap) allows(granted func(string) bool, method, route string, template bool) bool {
	if template {
		route = templateOf(route)
	}
	matched := false
	for i := range m.routes {
		r := &m.routes[i]
		if !r.match(method, route, template) {
			continue
		}
		matched = true
		for _, p := range r.requires {
			if !granted(p) {
				return false
			}
		}
	}
	return matched
}

// methods are what an ANY route stands for in a policy: a "*" there would also match across the
// slash into the path, which the route map does not.
var methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// resources splits the routes into the method-ARN patterns a token may call and those it may not.
func (m *RouteMap) resources(base string, granted func(string) bool) (allow, deny []string) {
	for _, r := range m.routes {
		ok := true
		for _, p := range r.requires {
			ok = ok && granted(p)
		}
		if r.path == DefaultRoute {
			// The $default route serves whatever no other route does, so its ARN is any path.
			// Allowed: the whole API, less the other routes' explicit Denies. Refused: nothing
			// is allowed for it, and an explicit Deny of everything would override the rest.
			if ok {
				allow = append(allow, base+"/*")
			}
			continue
		}
		ms := []string{r.method}
		if r.method == "*" {
			ms = methods
		}
		for _, method := range ms {
			arn := base + "/" + method + r.path
			if ok {
				allow = append(allow, arn)
			} else {
				deny = append(deny, arn)
			}
		}
	}
	return allow, deny
}

// matched returns the method-ARN patterns of the routes that match method and route: what an
// allowed request's route may call (the whole API for $default).
func (m *RouteMap) matched(base, method, route string) []string {
	route = templateOf(route)
	var out []string
	for i := range m.routes {
		r := &m.routes[i]
		if !r.match(method, route, true) {
			continue
		}
		if r.path == DefaultRoute {
			return []string{base + "/*"}
		}
		ms := []string{r.method}
		if r.method == "*" {
			ms = methods // the route serves every method under one cache key
		}
		for _, m := range ms {
			out = append(out, base+"/"+m+r.path)
		}
	}
	return out
}

// glob matches s against a pattern in which "*" matches any run of characters, as IAM does.
func glob(pattern, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && pattern[px] == '*':
			starPx, starSx = px, sx
			px++
		case px < len(pattern) && pattern[px] == s[sx]:
			px++
			sx++
		case starPx >= 0:
			starSx++
			px, sx = starPx+1, starSx
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// splitARN takes an execute-api ARN apart:
// arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH -> base "arn:...:API/STAGE", method,
// path "/PATH". ok is false for anything else.
func splitARN(arn string) (base, method, path string, ok bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "execute-api" {
		return "", "", "", false
	}
	res := strings.SplitN(parts[5], "/", 4)
	if len(res) < 3 || res[0] == "" || res[1] == "" || res[2] == "" {
		return "", "", "", false
	}
	base = strings.Join(parts[:5], ":") + ":" + res[0] + "/" + res[1]
	path = "/"
	if len(res) == 4 {
		path += res[3]
	}
	return base, res[2], path, true
}
