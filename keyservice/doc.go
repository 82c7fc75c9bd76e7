// Package keyservice is the heart of arca-api: the domain model of the
// Barbican v1 resources (secrets, orders, and later containers, ACLs and
// project keys), the service layer that enforces their rules, and the Store
// interface the service layer persists through.
//
// The package knows nothing of HTTP: the api subpackage maps requests onto
// Service methods and Service errors onto statuses. It knows nothing of SQL
// either: sqlstore implements Store for MySQL/MariaDB and SQLite, and
// storetest holds the conformance suite every Store must pass.
//
// Key material never leaves this package in the clear except as the answer
// to an authorised payload read: payloads are sealed with the owning
// project's key-encryption key (KEK) before they reach the Store, and each
// project's KEK is itself sealed by a master key (see package envelope).
package keyservice
