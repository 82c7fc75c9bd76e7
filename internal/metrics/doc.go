// Package metrics is the Prometheus instrumentation shared by arca-api,
// arca-swift-filter and arca-object-server.
//
// Each service makes one Registry (never the process-wide default
// registry) and exposes it on /metrics of its own listener, or on a
// separate listener when [metrics] bind is set (Listener, which the
// service runs beside its own with serve.Run, so both drain and stop
// together). The Registry owns every
// Arca metric (docs/operations.md lists them with their meaning) and
// offers small, typed recording methods so that callers never build label
// values themselves.
//
// Cardinality and secrecy rules, enforced here rather than at each call
// site: HTTP requests are labelled by route template ("/v1/secrets/:id"),
// never by raw path; methods outside the known set count as "OTHER"; no
// label ever carries a key id or a token; a project_id label exists only
// when [metrics] project_labels = true (Config.ProjectLabels).
//
// What it is not: a tracing or logging library, nor a place for business
// logic. Collectors read counters the instrumented packages already keep
// (keystone.Validator, keyclient.Client, sql.DBStats) at scrape time.
package metrics
