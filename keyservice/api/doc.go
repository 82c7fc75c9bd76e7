// Package api is arca-api's HTTP edge: the Barbican v1 wire protocol on
// echo. It decodes and validates requests, authenticates the caller,
// enforces the policy rule each route names, calls the keyservice.Service
// and renders Barbican's exact response shapes, status codes and error
// bodies ({"code","title","description"}).
//
// Every route is declared once, in routes.go, with its policy rule, the
// token scopes it admits and its body limit, so the whole API surface and
// its authorisation read at a glance. Authorisation is structural: one
// PolicyAuthorizer in every mode (no-auth identities meet the production
// rules); the route wrapper refuses tokens of a scope the route does not
// admit (every project resource needs a project-scoped token) and checks
// the rule of collection routes itself; resource routes check theirs
// against the stored row; and a route with a rule cannot answer 2xx unless
// a check passed (the wrapper turns such an answer into a 500). The
// deny-all route walk and the policy matrix (docs/policy.md) test all of it.
// Nothing here touches SQL or key material beyond passing it through.
package api
