// Package serve is how every Arca server runs and stops: arca-api,
// arca-swift-filter, arca-object-server and their /metrics listeners. Run
// serves until its context ends (SignalContext ends it on SIGTERM or
// SIGINT) or a server fails, then lets in-flight requests finish for one
// grace period, [DEFAULT] shutdown_timeout of each binary's configuration
// (DefaultGrace when unset), and closes what is left.
//
// Not here: building the handlers, TLS (internal/tlsconf wraps the
// listener before Run sees it), what a binary does after its servers stop
// (arca-api writes its queued audit records, the object server waits for
// its container updates).
package serve
