// Package rawhttp is a lean HTTP/1.1 client for load generators: one
// keep-alive connection per Conn, each request written in one system call
// and each answer parsed in place, on the caller's goroutine.
//
// A load generator shares the CPUs with the servers it measures, and
// net/http's Transport costs two goroutines per connection and a channel
// hand-off each way per request; on a small machine that cost shows up in
// the servers' figures. Conn does the same exchange without them, so that
// what a benchmark reports is the server's work.
//
// It speaks only what the measured servers need: plain http (no TLS, no
// proxies, no redirects), request bodies of a known length, and answers
// with a Content-Length, chunked, or delimited by the server closing the
// connection. An idle connection the server dropped is reopened and the
// request sent again when that is safe, as net/http does. Set-up,
// clean-up and anything else should use net/http.
//
// It is used by tools/loadgen (make bench's key-service part) and by the
// object-server comparison (tools/speedreport objectserver).
package rawhttp
