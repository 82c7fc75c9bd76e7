// Package keyclient resolves Arca project keys for the Swift-side parts
// (arca-swift-filter and arca-object-server): which key is a project's
// active one, what the bytes of a given key are (the object servers), and a
// key's listing key, which opens listing ETags only (the filter: never the
// key itself; listing.go). It talks to arca-api's
// /v1/project-keys resource as a Keystone service user and caches answers
// briefly, so object traffic does not become key-service traffic.
package keyclient
