package objectserver_test

import "testing"

// fallocateCorpus is sent to both servers with fallocate_reserve = 100%,
// a reserve no device keeps: a PUT that announces its length is refused
// (507, before any 100 Continue), one of unknown length or of no length
// is not checked, and what was stored reads back. The proxy's PUT (MIME
// footers) gets its 100 Continue first: Swift reads the first MIME
// document's headers before it creates the file.
var fallocateCorpus = []diffStep{
	{name: "reserve: PUT with a length", method: "PUT", path: "AUTH_a/c/full", body: "bytes:4096", hdr: []string{"Content-Type: text/plain"}},
	{name: "reserve: PUT with a length, 100-continue", method: "PUT", path: "AUTH_a/c/full", body: "bytes:65536", mode: modeContinue, hdr: []string{"Content-Type: text/plain"}},
	{name: "reserve: GET the refused object", method: "GET", path: "AUTH_a/c/full"},
	{name: "reserve: PUT chunked", method: "PUT", path: "AUTH_a/c/chunked", body: "bytes:4096", mode: modeContinueChunked, hdr: []string{"Content-Type: text/plain"}},
	{name: "reserve: PUT as the proxy (footers)", method: "PUT", path: "AUTH_a/c/proxied", body: "bytes:5000", mode: modeFooters, hdr: []string{"Content-Type: text/plain"}},
	{name: "reserve: PUT of no bytes", method: "PUT", path: "AUTH_a/c/empty", body: "", hdr: []string{"Content-Type: text/plain"}},
	{name: "reserve: GET chunked", method: "GET", path: "AUTH_a/c/chunked"},
	{name: "reserve: GET proxied", method: "GET", path: "AUTH_a/c/proxied"},
	{name: "reserve: GET empty", method: "GET", path: "AUTH_a/c/empty"},
}

// TestBackendDifferentialFallocateReserve: fallocate_reserve as Swift's
// object server applies it, compared with Debian's swift-object-server
// given the same option.
func TestBackendDifferentialFallocateReserve(t *testing.T) {
	diffReplicated(t, "fallocate_reserve = 100%\n", fallocateCorpus, nil)
}
