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
// every route's rule before its handler runs: collection routes on the
// caller's project, resource routes on the stored row that the loader the
// route table declares fetches (handlers get that row and never authorize
// themselves); and a route with a rule cannot answer 2xx unless a check
// passed, whichever way the handler writes (the response writer turns such
// an answer into a 500). The deny-all route walk and the policy matrix
// (docs/policy.md) test all of it.
// Nothing here touches SQL or key material beyond passing it through.
package api
