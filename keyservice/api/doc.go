// Package api is arca-api's HTTP edge: the Barbican v1 wire protocol on
// echo. It decodes and validates requests, authenticates the caller,
// enforces the policy rule each route names, calls the keyservice.Service
// and renders Barbican's exact response shapes, status codes and error
// bodies ({"code","title","description"}).
//
// Every route is declared once, in routes.go, with its policy rule and body
// limit, so the whole API surface and its authorisation read at a glance.
// Nothing here touches SQL or key material beyond passing it through.
package api
