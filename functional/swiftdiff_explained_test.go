package functional_test

// classKept is the class of the differences kept on purpose:
// docs/compatibility.md, "Through the proxy (whole path)". A fault found
// and not fixed yet would be listed under a class of its own ("open-...",
// naming the code it comes from) until its fix removes the entry.
const classKept = "kept"

// proxyOnly are the differences of the reverse-proxy shape's own HTTP
// server (Go's net/http), which the pipeline shape does not have: Swift's
// proxy answers its clients there.
var proxyOnly = []string{shapeProxy}

// (The pipeline shape has no difference of its own today. Until the object
// server wrote its 304s itself, with Content-Length: 0 and Content-Type, it
// had three, and a HEAD's 304 ended with a chunk a keep-alive client read
// as its next answer: objectserver/multiphase.go answerRaw.)

// explainedDiffs are the whole path's known differences (see
// explainedDiff for how one matches).
var explainedDiffs = []explainedDiff{
	// Kept (docs/compatibility.md).
	{shapes: proxyOnly, class: classKept, why: "Go's HTTP server answers malformed framing itself (Content-Length not a number or negative or over 2^63, Transfer-Encoding other than chunked, a space in the request line)",
		caseName: "uploads", steps: []int{21, 22, 23}},
	{shapes: proxyOnly, class: classKept, why: "Go's HTTP server answers malformed framing itself: a Content-Length over 2^63",
		caseName: "lengths", steps: []int{10}},
	{shapes: proxyOnly, class: classKept, why: "Go's HTTP server refuses a request line with a space, a raw control character (NUL: Swift 412; tab: Swift stores it) or a bare % (not a %-escape: Swift stores it, and the GETs of its %-encoded name find it)",
		caseName: "names-malformed", steps: []int{1, 2, 3, 4, 5, 6, 7}},
	{shapes: proxyOnly, class: classKept, why: "Go's HTTP server sends no Content-Length on a 204 or 304 (RFC 9110 §8.6)",
		field: "header:Content-Length", arca: "", swift: "0", statuses: "(204|304)/(204|304)"},
	{shapes: proxyOnly, class: classKept, why: "the filter answers /healthcheck itself",
		caseName: "auth", steps: []int{15}},
	{shapes: proxyOnly, class: classKept, why: "the filter's Go HTTP server sends no Content-Type on a 304 (RFC 9110 §15.4.5)",
		field: "header:Content-Type", arca: "", statuses: "304/304"},
	{shapes: proxyOnly, class: classKept, why: "Go's HTTP server writes no Transfer-Encoding on an answer to HEAD; eventlet announces chunked on a HEAD answer without a length (the filter's own 401 here)",
		method: "HEAD", field: "header:Transfer-Encoding", arca: "", swift: "chunked"},
}
