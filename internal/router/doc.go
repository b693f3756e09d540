// Package router normalizes request paths and matches requests to Routes.
//
// The Runtime compiles the configured Routes once with Compile into an
// immutable *Table; Lookup is then safe for concurrent use and allocates
// nothing when it finds a Route.
//
// # Paths
//
// NormalizePath turns the path a client sent into one canonical escaped
// form. The caller normalizes first and passes the result both to Lookup and
// upstream, so a policy keyed on a path cannot be bypassed with "%2e%2e",
// "//", "%2F" or similar spellings. Lookup never normalizes by itself.
//
// # Patterns
//
// A path pattern is a sequence of segments: a literal ("users"), a parameter
// that matches exactly one non-empty segment ("{id}"), or, as the last
// segment only, "**", which matches zero or more remaining segments
// ("/files/**" matches "/files", "/files/" and "/files/a/b"). A pattern ending
// in '/' matches only paths ending in '/'. Host patterns are exact
// ("api.example.com") or wildcards ("*.example.com", which matches one or
// more labels before ".example.com" but not "example.com" itself).
//
// # Precedence
//
// Lookup returns the first Route in this order, independent of the order of
// the configuration wherever specificity differs:
//
//  1. Host: Routes of the exact host first, then Routes of matching wildcard
//     hosts, longest suffix first, then Routes without hosts. When no Route of
//     a more specific host matches, the search falls through to the next.
//  2. Path, segment by segment, depth first: a literal segment beats a
//     parameter, which beats "**"; when a deeper branch yields no match the
//     search backtracks. Hence an exact path beats a longer literal prefix,
//     which beats parameter segments, which beat a wildcard; and "/users"
//     beats "/users/**" for the path "/users".
//  3. Among Routes with the same path pattern: the one with more match
//     conditions wins (a method list counts one, each header and each query
//     condition counts one); then the one listed first in the configuration.
//  4. A Route matching everything but the method is skipped and the search
//     goes on (DELETE /users/5 reaches "/users/**" when "/users/{id}" only
//     allows GET). If nothing matches but such Routes exist, Lookup reports
//     MethodNotAllowed and Match.Allow lists the union of their methods.
//
// A Route allowing GET also allows HEAD. Methods are compared case-sensitively
// (RFC 9110); configured methods are uppercased.
package router
