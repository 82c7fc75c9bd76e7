package objectserver_test

// sendMode is how a step's body goes out.
type sendMode int

const (
	modePlain           sendMode = iota // Content-Length and the body at once
	modeChunked                         // Transfer-Encoding: chunked
	modeContinue                        // Expect: 100-continue, the body after the 100
	modeContinueChunked                 // both
	modeFooters                         // the proxy's PUT: chunked, 100-continue, MIME metadata footer
	modeDeclared                        // Expect: 100-continue and a Content-Length, the body never sent
	modeMultiphase                      // the proxy's EC PUT: footer, then the commit phase (backenddiff_ec_test.go)
)

// diffStep is one request of the corpus, sent to both servers in turn.
// path is account/container/object (%-encoded as on the wire) under
// /<device>/<partition>/, or with raw the whole path ({dev} the device).
// hdr are "Name: value" lines added to the proxy's backend headers
// (X-Timestamp, X-Backend-Storage-Policy-Index, container update headers
// pointing at {closed}); a value "-" removes one. Values may use {ts},
// {old} (a timestamp older than the run), {now+N}, {lm} (the last write's
// Last-Modified second) and an "http:" prefix for an HTTP date. body
// "bytes:N" is N bytes of a pattern. footer are the MIME footer's
// entries (modeFooters; Etag is the body's MD5 unless given). ec names
// a fragment archive, "object/index", of the EC corpus's objects (the
// body, and the footer the proxy sends with it), mp how a multiphase PUT
// departs from the proxy's (backenddiff_ec_test.go).
type diffStep struct {
	name   string
	method string
	path   string
	raw    bool
	hdr    []string
	body   string
	mode   sendMode
	footer []string
	ec     string
	mp     mpVariant
}

const (
	obj  = "AUTH_diff/c/obj"
	obj2 = "AUTH_diff/c/obj2"
	obj3 = "AUTH_diff/c/obj3"
)

// backendCorpus is the requests, in order: later steps read what earlier
// ones wrote.
var backendCorpus = []diffStep{
	// PUT, GET, HEAD, POST, DELETE
	{name: "get missing", method: "GET", path: obj},
	{name: "head missing", method: "HEAD", path: obj},
	{name: "put", method: "PUT", path: obj, body: "bytes:1000", hdr: []string{"Content-Type: text/plain", "X-Object-Meta-Color: blue", "X-Object-Sysmeta-Test: sys", "Content-Disposition: inline", "X-Object-Transient-Sysmeta-T: t"}},
	{name: "get", method: "GET", path: obj},
	{name: "head", method: "HEAD", path: obj},
	{name: "put same timestamp", method: "PUT", path: obj, body: "x", hdr: []string{"X-Timestamp: {ts-3}"}},
	{name: "put stale", method: "PUT", path: obj, body: "x", hdr: []string{"X-Timestamp: {old}"}},
	{name: "post", method: "POST", path: obj, hdr: []string{"X-Object-Meta-Shape: round", "Content-Type: -"}},
	{name: "get after post", method: "GET", path: obj},
	{name: "post content-type", method: "POST", path: obj, hdr: []string{"Content-Type: image/png", "X-Object-Meta-Shape: square"}},
	{name: "head after content-type post", method: "HEAD", path: obj},
	{name: "post stale", method: "POST", path: obj, hdr: []string{"X-Timestamp: {old}"}},
	{name: "post missing", method: "POST", path: obj2},
	{name: "post without timestamp", method: "POST", path: obj, hdr: []string{"X-Timestamp: -"}},

	// conditionals on an existing object
	{name: "if-match right", method: "GET", path: obj, hdr: []string{`If-Match: "e5b0e5bd2eb7c72a4e3de4e7a1ab2a74", "d38365ddfe58a9bc1d2298f5bb17af48"`}},
	{name: "if-match wrong", method: "GET", path: obj, hdr: []string{`If-Match: "nope"`}},
	{name: "if-match wrong head", method: "HEAD", path: obj, hdr: []string{`If-Match: "nope"`}},
	{name: "if-match star", method: "GET", path: obj, hdr: []string{"If-Match: *"}},
	{name: "if-none-match star", method: "GET", path: obj, hdr: []string{"If-None-Match: *"}},
	{name: "if-none-match wrong", method: "GET", path: obj, hdr: []string{`If-None-Match: "nope", "other"`}},
	{name: "if-modified-since past", method: "GET", path: obj, hdr: []string{"If-Modified-Since: {http:old}"}},
	{name: "if-modified-since lm", method: "GET", path: obj, hdr: []string{"If-Modified-Since: {http:lm}"}},
	{name: "if-modified-since head", method: "HEAD", path: obj, hdr: []string{"If-Modified-Since: {http:now+100}"}},
	{name: "if-unmodified-since past", method: "GET", path: obj, hdr: []string{"If-Unmodified-Since: {http:old}"}},
	{name: "if-unmodified-since future", method: "GET", path: obj, hdr: []string{"If-Unmodified-Since: {http:now+100}"}},
	{name: "if-unmodified-since bad date", method: "GET", path: obj, hdr: []string{"If-Unmodified-Since: yesterday"}},
	// swob's order of the conditionals, which the object server decides
	{name: "if-none-match wrong, if-modified-since future", method: "GET", path: obj, hdr: []string{`If-None-Match: "nope"`, "If-Modified-Since: {http:now+100}"}},
	{name: "if-none-match wrong, if-modified-since past", method: "HEAD", path: obj, hdr: []string{`If-None-Match: "nope"`, "If-Modified-Since: {http:old}"}},
	{name: "if-match wrong, if-none-match star", method: "GET", path: obj, hdr: []string{`If-Match: "nope"`, "If-None-Match: *"}},
	{name: "if-modified-since future, if-unmodified-since past", method: "GET", path: obj, hdr: []string{"If-Modified-Since: {http:now+100}", "If-Unmodified-Since: {http:old}"}},
	{name: "if-match right, if-modified-since future", method: "HEAD", path: obj, hdr: []string{"If-Match: *", "If-Modified-Since: {http:now+100}"}},
	{name: "if-match star missing", method: "GET", path: obj2, hdr: []string{"If-Match: *"}},
	{name: "if-none-match star missing", method: "GET", path: obj2, hdr: []string{"If-None-Match: *"}},
	{name: "put if-none-match star exists", method: "PUT", path: obj, body: "y", hdr: []string{"If-None-Match: *"}},
	{name: "put if-none-match etag", method: "PUT", path: "AUTH_diff/c/inm", body: "y", hdr: []string{`If-None-Match: "abc"`}},

	// ranges
	{name: "range single", method: "GET", path: obj, hdr: []string{"Range: bytes=10-19"}},
	{name: "range open", method: "GET", path: obj, hdr: []string{"Range: bytes=990-"}},
	{name: "range suffix", method: "GET", path: obj, hdr: []string{"Range: bytes=-5"}},
	{name: "range suffix beyond", method: "GET", path: obj, hdr: []string{"Range: bytes=-5000"}},
	{name: "range multiple", method: "GET", path: obj, hdr: []string{"Range: bytes=0-1,5-9,-3"}},
	{name: "range overlapping", method: "GET", path: obj, hdr: []string{"Range: bytes=0-100,50-150"}},
	{name: "range unsatisfiable", method: "GET", path: obj, hdr: []string{"Range: bytes=1000-1010"}},
	{name: "range unsatisfiable head", method: "HEAD", path: obj, hdr: []string{"Range: bytes=5000-"}},
	{name: "range some unsatisfiable", method: "GET", path: obj, hdr: []string{"Range: bytes=0-1,2000-3000"}},
	{name: "range invalid", method: "GET", path: obj, hdr: []string{"Range: bytes=9-1"}},
	{name: "range not bytes", method: "GET", path: obj, hdr: []string{"Range: lines=1-2"}},
	{name: "range many", method: "GET", path: obj, hdr: []string{"Range: bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16,18-18,20-20,22-22,24-24,26-26,28-28,30-30,32-32,34-34,36-36,38-38,40-40,42-42,44-44,46-46,48-48,50-50,52-52,54-54,56-56,58-58,60-60,62-62,64-64,66-66,68-68,70-70,72-72,74-74,76-76,78-78,80-80,82-82,84-84,86-86,88-88,90-90,92-92,94-94,96-96,98-98,100-100,102-102,104-104,106-106,108-108,110-110,112-112,114-114,116-116,118-118,120-120,122-122,124-124,126-126,128-128,130-130,132-132,134-134,136-136,138-138,140-140,142-142,144-144,146-146,148-148,150-150,152-152,154-154,156-156,158-158,160-160,162-162,164-164,166-166,168-168,170-170,172-172,174-174,176-176,178-178,180-180,182-182,184-184,186-186,188-188,190-190,192-192,194-194,196-196,198-198,200-200"}},
	{name: "etag-is-at match", method: "GET", path: obj, hdr: []string{"X-Backend-Etag-Is-At: X-Object-Sysmeta-Test,X-Object-Sysmeta-None", `If-Match: "sys"`}},
	{name: "etag-is-at no match", method: "GET", path: obj, hdr: []string{"X-Backend-Etag-Is-At: X-Object-Sysmeta-Test", `If-None-Match: "sys"`}},
	{name: "ignore range if metadata", method: "GET", path: obj, hdr: []string{"X-Backend-Ignore-Range-If-Metadata-Present: X-Object-Sysmeta-Test", "Range: bytes=0-3"}},
	{name: "range with if-match wrong", method: "GET", path: obj, hdr: []string{"Range: bytes=0-1", `If-Match: "nope"`}},
	// several ranges of an object larger than the first window an
	// encrypted GET reads before its status: the part that crosses it
	// goes on from where the window ended
	{name: "put large", method: "PUT", path: obj3, body: "bytes:600000"},
	{name: "range multiple across the first window", method: "GET", path: obj3, hdr: []string{"Range: bytes=100-199,262000-270000,599990-"}},
	{name: "range multiple beyond the first window", method: "GET", path: obj3, hdr: []string{"Range: bytes=0-299999,300000-300009"}},
	// SLO's conditional GET: Arca keeps the manifest's ETag sysmeta sealed
	// and compares the opened value, as Swift compares what it stores
	{name: "put slo manifest sysmeta", method: "PUT", path: obj3, body: "[]", hdr: []string{"X-Object-Sysmeta-Slo-Etag: 0123456789abcdef0123456789abcdef", "X-Object-Sysmeta-Slo-Size: 10"}},
	{name: "slo etag-is-at if-none-match", method: "GET", path: obj3, hdr: []string{"X-Backend-Etag-Is-At: X-Object-Sysmeta-Slo-Etag", `If-None-Match: "0123456789abcdef0123456789abcdef"`}},
	{name: "slo etag-is-at if-match", method: "GET", path: obj3, hdr: []string{"X-Backend-Etag-Is-At: X-Object-Sysmeta-Slo-Etag", `If-Match: "0123456789abcdef0123456789abcdef"`}},
	{name: "slo etag-is-at if-match other", method: "GET", path: obj3, hdr: []string{"X-Backend-Etag-Is-At: X-Object-Sysmeta-Slo-Etag", `If-Match: "ffffffffffffffffffffffffffffffff"`}},

	// uploads: chunked, 100-continue, the proxy's footers, early refusals
	{name: "put chunked", method: "PUT", path: obj2, body: "bytes:2500", mode: modeChunked},
	{name: "get chunked", method: "GET", path: obj2},
	{name: "put continue", method: "PUT", path: obj2, body: "bytes:300", mode: modeContinue},
	{name: "put continue chunked", method: "PUT", path: obj2, body: "bytes:3000", mode: modeContinueChunked},
	{name: "put footers", method: "PUT", path: obj2, body: "bytes:4096", mode: modeFooters, footer: []string{"X-Object-Sysmeta-Container-Update-Override-Etag: abc", "X-Object-Sysmeta-Crypto-Test: v"}},
	{name: "get footers", method: "GET", path: obj2},
	{name: "put footers bad etag", method: "PUT", path: obj2, body: "bytes:10", mode: modeFooters, footer: []string{"Etag: 00000000000000000000000000000000"}},
	{name: "put etag mismatch", method: "PUT", path: obj2, body: "abc", hdr: []string{"Etag: 00000000000000000000000000000000"}},
	{name: "put etag right", method: "PUT", path: obj2, body: "abc", hdr: []string{"Etag: 900150983cd24fb0d6963f7d28e17f72"}},
	{name: "put no length", method: "PUT", path: obj2, body: "", hdr: []string{"Content-Length: -"}},
	{name: "put no content-type", method: "PUT", path: obj2, body: "abc", hdr: []string{"Content-Type: -"}},
	{name: "put declared too large", method: "PUT", path: obj2, mode: modeDeclared, hdr: []string{"Content-Length: 5368709123"}},
	{name: "put declared max", method: "PUT", path: obj2, mode: modeDeclared, hdr: []string{"Content-Length: 5368709122"}},
	{name: "put declared tiny", method: "PUT", path: obj2, mode: modeDeclared, hdr: []string{"Content-Length: 1"}},
	{name: "put declared stale", method: "PUT", path: obj2, mode: modeDeclared, hdr: []string{"Content-Length: 10", "X-Timestamp: {old}"}},
	{name: "put continue no timestamp", method: "PUT", path: obj2, mode: modeDeclared, hdr: []string{"Content-Length: 10", "X-Timestamp: -"}},
	{name: "put empty", method: "PUT", path: obj2, body: ""},
	{name: "get empty", method: "GET", path: obj2},
	{name: "get empty suffix range", method: "GET", path: obj2, hdr: []string{"Range: bytes=-1"}},
	{name: "get empty range", method: "GET", path: obj2, hdr: []string{"Range: bytes=0-0"}},
	{name: "put bad content-length", method: "PUT", path: obj2, body: "", hdr: []string{"Content-Length: ten"}},

	// metadata limits: count 90, name 128, value 256, overall 4096
	{name: "meta name at limit", method: "PUT", path: obj2, body: "m", hdr: []string{"X-Object-Meta-" + repeatS("n", 128) + ": v"}},
	{name: "meta name too long", method: "PUT", path: obj2, body: "m", hdr: []string{"X-Object-Meta-" + repeatS("n", 129) + ": v"}},
	{name: "meta value at limit", method: "PUT", path: obj2, body: "m", hdr: []string{"X-Object-Meta-V: " + repeatS("v", 256)}},
	{name: "meta value too long", method: "PUT", path: obj2, body: "m", hdr: []string{"X-Object-Meta-V: " + repeatS("v", 257)}},
	{name: "meta count too many", method: "PUT", path: obj2, body: "m", hdr: metaHeaders(91, 1)},
	{name: "meta overall too large", method: "PUT", path: obj2, body: "m", hdr: metaHeaders(20, 250)},
	{name: "meta empty name", method: "PUT", path: obj2, body: "m", hdr: []string{"X-Object-Meta-: v"}},
	{name: "post meta too long", method: "POST", path: obj, hdr: []string{"X-Object-Meta-V: " + repeatS("v", 257)}},
	{name: "post meta count", method: "POST", path: obj, hdr: metaHeaders(91, 1)},
	{name: "put arca sysmeta", method: "PUT", path: obj2, body: "s", hdr: []string{"X-Object-Sysmeta-Arca-Key-Id: forged"}},
	{name: "get arca sysmeta", method: "GET", path: obj2},

	// names at Swift's limits
	{name: "name 1024 bytes", method: "PUT", path: "AUTH_diff/c/" + repeatS("l", 1024), body: "n"},
	{name: "name 1025 bytes", method: "PUT", path: "AUTH_diff/c/" + repeatS("l", 1025), body: "n"},
	{name: "name utf-8", method: "PUT", path: "AUTH_diff/c/%E2%98%83%20snow%C3%A9", body: "u"},
	{name: "get utf-8", method: "GET", path: "AUTH_diff/c/%E2%98%83%20snow%C3%A9"},
	{name: "name slashes", method: "PUT", path: "AUTH_diff/c/a//b/", body: "s"},
	{name: "get slashes", method: "GET", path: "AUTH_diff/c/a//b/"},
	{name: "name percent literal", method: "PUT", path: "AUTH_diff/c/100%25", body: "p"},
	{name: "name nul", method: "PUT", path: "/{dev}/1/AUTH_diff/c/a%00b", raw: true, body: "z"},
	{name: "name invalid utf-8", method: "PUT", path: "/{dev}/1/AUTH_diff/c/a%FFb", raw: true, body: "z"},
	{name: "name reserved", method: "PUT", path: "AUTH_diff/%00versions/%00v1", body: "r"},
	{name: "get reserved", method: "GET", path: "AUTH_diff/%00versions/%00v1"},
	{name: "name reserved object in user container", method: "PUT", path: "AUTH_diff/c/%00v1", body: "r"},
	{name: "name user object in reserved container", method: "PUT", path: "AUTH_diff/%00versions/v1", body: "r"},
	{name: "name reserved container not first", method: "PUT", path: "AUTH_diff/c%00/v1", body: "r"},
	{name: "name bad escape", method: "GET", path: "/{dev}/1/AUTH_diff/c/a%zzb", raw: true},

	// X-Delete-At and expiry
	{name: "put delete-at past", method: "PUT", path: "AUTH_diff/c/exp", body: "e", hdr: []string{"X-Delete-At: {now-100}"}},
	{name: "put delete-at invalid", method: "PUT", path: "AUTH_diff/c/exp", body: "e", hdr: []string{"X-Delete-At: soon"}},
	{name: "put delete-at future", method: "PUT", path: "AUTH_diff/c/exp", body: "e", hdr: []string{"X-Delete-At: {now+4000}", "X-Delete-At-Container: {now+0}", "X-Delete-At-Host: {closed}", "X-Delete-At-Partition: 1", "X-Delete-At-Device: edev"}},
	{name: "head delete-at", method: "HEAD", path: "AUTH_diff/c/exp"},
	{name: "get expired", method: "GET", path: "AUTH_diff/c/exp", hdr: []string{"X-Timestamp: {now+5000}.00000"}},
	{name: "head expired", method: "HEAD", path: "AUTH_diff/c/exp", hdr: []string{"X-Timestamp: {now+5000}.00000"}},
	{name: "get expired for replication", method: "GET", path: "AUTH_diff/c/exp", hdr: []string{"X-Timestamp: {now+5000}.00000", "X-Backend-Replication: True"}},
	{name: "delete if-delete-at wrong", method: "DELETE", path: "AUTH_diff/c/exp", hdr: []string{"X-If-Delete-At: 12345"}},
	{name: "delete if-delete-at invalid", method: "DELETE", path: "AUTH_diff/c/exp", hdr: []string{"X-If-Delete-At: x"}},
	{name: "post delete-at past", method: "POST", path: "AUTH_diff/c/exp", hdr: []string{"X-Delete-At: {now-100}"}},
	{name: "post delete-at removed", method: "POST", path: "AUTH_diff/c/exp", hdr: []string{"X-Object-Meta-A: b"}},
	{name: "head after delete-at removed", method: "HEAD", path: "AUTH_diff/c/exp"},
	{name: "put for empty delete-at", method: "PUT", path: "AUTH_diff/c/exp3", body: "e"},
	{name: "post delete-at empty", method: "POST", path: "AUTH_diff/c/exp3", hdr: []string{"X-Delete-At: "}},
	{name: "head after empty delete-at", method: "HEAD", path: "AUTH_diff/c/exp3"},
	{name: "delete if-delete-at none", method: "DELETE", path: "AUTH_diff/c/exp", hdr: []string{"X-If-Delete-At: {now+4000}"}},
	{name: "put delete-at soon", method: "PUT", path: "AUTH_diff/c/exp2", body: "e", hdr: []string{"X-Delete-At: {now+4000}"}},
	{name: "delete if-delete-at right", method: "DELETE", path: "AUTH_diff/c/exp2", hdr: []string{"X-If-Delete-At: {now+4000}"}},

	// X-Delete-After, the expirer's updates on POST and DELETE
	{name: "put delete-after", method: "PUT", path: "AUTH_diff/c/after", body: "a", hdr: []string{"X-Delete-After: 7200"}},
	{name: "head delete-after", method: "HEAD", path: "AUTH_diff/c/after"},
	{name: "put delete-after invalid", method: "PUT", path: "AUTH_diff/c/after", body: "a", hdr: []string{"X-Delete-After: -1"}},
	{name: "post delete-at with expirer", method: "POST", path: "AUTH_diff/c/after", hdr: []string{"X-Delete-At: {now+8000}", "X-Delete-At-Container: {now+0}", "X-Delete-At-Host: {closed}", "X-Delete-At-Partition: 1", "X-Delete-At-Device: edev"}},
	{name: "delete with expirer", method: "DELETE", path: "AUTH_diff/c/after", hdr: []string{"X-Delete-At-Container: {now+0}", "X-Delete-At-Host: {closed}", "X-Delete-At-Partition: 1", "X-Delete-At-Device: edev"}},

	// allowed headers, overrides, timestamps with offsets, big objects
	{name: "put allowed headers", method: "PUT", path: "AUTH_diff/c/allowed", body: "bytes:300000", hdr: []string{"Content-Encoding: gzip", "Cache-Control: no-cache", "Content-Language: en", "Expires: Thu, 01 Dec 1994 16:00:00 GMT", "X-Robots-Tag: none", "X-Object-Manifest: c/seg", "X-Static-Large-Object: True", "X-Unknown: dropped", "X-Object-Sysmeta-Container-Update-Override-Etag: over", "X-Object-Sysmeta-Container-Update-Override-Size: 7", "X-Object-Sysmeta-Container-Update-Override-Content-Type: x/over"}},
	{name: "get allowed headers", method: "GET", path: "AUTH_diff/c/allowed", hdr: []string{"Range: bytes=262140-262150,299990-"}},
	{name: "get across windows", method: "GET", path: "AUTH_diff/c/allowed", hdr: []string{"Range: bytes=1000-280000"}},
	{name: "get slo range ignored", method: "GET", path: "AUTH_diff/c/allowed", hdr: []string{"X-Backend-Ignore-Range-If-Metadata-Present: X-Static-Large-Object", "Range: bytes=0-9"}},
	{name: "post drops allowed headers", method: "POST", path: "AUTH_diff/c/allowed", hdr: []string{"Cache-Control: max-age=1", "X-Object-Transient-Sysmeta-Crypto: t"}},
	{name: "head after post drops", method: "HEAD", path: "AUTH_diff/c/allowed"},
	{name: "post same timestamp as data", method: "POST", path: "AUTH_diff/c/allowed", hdr: []string{"X-Timestamp: {ts-5}"}},
	{name: "put offset timestamp", method: "PUT", path: "AUTH_diff/c/offset", body: "o", hdr: []string{"X-Timestamp: {ts}_0000000000000001"}},
	{name: "put offset timestamp older", method: "PUT", path: "AUTH_diff/c/offset", body: "o", hdr: []string{"X-Timestamp: {ts-1}"}},
	{name: "head offset", method: "HEAD", path: "AUTH_diff/c/offset"},
	{name: "put if-none-match star missing", method: "PUT", path: "AUTH_diff/c/inm2", body: "n", hdr: []string{"If-None-Match: *"}},
	{name: "put quoted etag", method: "PUT", path: "AUTH_diff/c/inm2", body: "abc", hdr: []string{`Etag: "900150983cd24fb0d6963f7d28e17f72"`}},
	{name: "if-match weak", method: "GET", path: "AUTH_diff/c/inm2", hdr: []string{`If-Match: W/"900150983cd24fb0d6963f7d28e17f72"`}},
	{name: "if-match unquoted", method: "GET", path: "AUTH_diff/c/inm2", hdr: []string{`If-Match: 900150983cd24fb0d6963f7d28e17f72`}},
	{name: "if-range match", method: "GET", path: "AUTH_diff/c/inm2", hdr: []string{`If-Range: "900150983cd24fb0d6963f7d28e17f72"`, "Range: bytes=1-1"}},
	{name: "if-range other", method: "GET", path: "AUTH_diff/c/inm2", hdr: []string{`If-Range: "nope"`, "Range: bytes=1-1"}},
	{name: "put footers without etag", method: "PUT", path: "AUTH_diff/c/inm2", body: "bytes:10", mode: modeFooters, footer: []string{"Etag: -"}},

	// ranges swob refuses or answers whole
	{name: "put ranges object", method: "PUT", path: "AUTH_diff/c/ranges", body: "bytes:100"},
	{name: "range three overlapping", method: "GET", path: "AUTH_diff/c/ranges", hdr: []string{"Range: bytes=0-10,1-11,2-12"}},
	{name: "range nine descending", method: "GET", path: "AUTH_diff/c/ranges", hdr: []string{"Range: bytes=90-90,80-80,70-70,60-60,50-50,40-40,30-30,20-20,10-10"}},
	{name: "range suffix zero", method: "GET", path: "AUTH_diff/c/ranges", hdr: []string{"Range: bytes=-0"}},
	{name: "range spaces", method: "GET", path: "AUTH_diff/c/ranges", hdr: []string{"Range: bytes= 0-1 , 3-4"}},
	{name: "range start beyond end", method: "GET", path: "AUTH_diff/c/ranges", hdr: []string{"Range: bytes=50-"}},
	{name: "range end beyond length", method: "GET", path: "AUTH_diff/c/ranges", hdr: []string{"Range: bytes=95-200"}},
	{name: "head if-none-match missing", method: "HEAD", path: "AUTH_diff/c/nothing", hdr: []string{"If-None-Match: *"}},

	// timestamps of the data and of a POST's .meta
	{name: "put for meta times", method: "PUT", path: "AUTH_diff/c/times", body: "t"},
	{name: "post for meta times", method: "POST", path: "AUTH_diff/c/times", hdr: []string{"X-Object-Meta-T: 1"}},
	{name: "post between data and meta", method: "POST", path: "AUTH_diff/c/times", hdr: []string{"X-Timestamp: {ts-1}"}},
	{name: "delete between data and meta", method: "DELETE", path: "AUTH_diff/c/times", hdr: []string{"X-Timestamp: {ts-2}"}},
	{name: "head after delete between", method: "HEAD", path: "AUTH_diff/c/times"},

	// header values at and past Swift's limits, odd content types
	{name: "meta utf-8 value too long", method: "PUT", path: "AUTH_diff/c/hdr", body: "h", hdr: []string{"X-Object-Meta-Snow: " + repeatS("\u2603", 86)}},
	{name: "meta utf-8 value", method: "PUT", path: "AUTH_diff/c/hdr", body: "h", hdr: []string{"X-Object-Meta-Snow: " + repeatS("\u2603", 85)}},
	{name: "get utf-8 value", method: "GET", path: "AUTH_diff/c/hdr"},
	{name: "header value too long", method: "PUT", path: "AUTH_diff/c/hdr", body: "h", hdr: []string{"X-Object-Meta-Big: " + repeatS("b", 8193)}},
	{name: "content-type invalid utf-8", method: "PUT", path: "AUTH_diff/c/hdr", body: "h", hdr: []string{"Content-Type: a\xffb"}},
	{name: "content-type swift_bytes", method: "PUT", path: "AUTH_diff/c/hdr", body: "h", hdr: []string{"Content-Type: text/plain;swift_bytes=12"}},
	{name: "get swift_bytes", method: "GET", path: "AUTH_diff/c/hdr"},
	{name: "put unsupported transfer-encoding", method: "PUT", path: "AUTH_diff/c/hdr", body: "h", hdr: []string{"Transfer-Encoding: gzip"}},
	{name: "replicated put past delete-at", method: "PUT", path: "AUTH_diff/c/hdr", body: "h", hdr: []string{"X-Delete-At: 1000", "X-Backend-Replication: True"}},
	{name: "get replicated past delete-at", method: "GET", path: "AUTH_diff/c/hdr"},

	// container updates: several hosts, overrides from headers
	{name: "put two container hosts", method: "PUT", path: "AUTH_diff/c/hosts", body: "h", hdr: []string{"X-Container-Host: {closed},127.0.0.1:1", "X-Container-Device: cdev,cdev2"}},
	{name: "put container update overrides", method: "PUT", path: "AUTH_diff/c/hosts", body: "h", hdr: []string{"X-Backend-Container-Update-Override-Etag: oe", "X-Backend-Container-Update-Override-Size: 5", "X-Backend-Container-Update-Override-Content-Type: x/y"}},
	{name: "post container update overrides", method: "POST", path: "AUTH_diff/c/hosts", hdr: []string{"Content-Type: a/b", "X-Backend-Container-Update-Override-Etag: pe"}},
	{name: "delete two container hosts", method: "DELETE", path: "AUTH_diff/c/hosts", hdr: []string{"X-Container-Host: {closed},127.0.0.1:1", "X-Container-Device: cdev,cdev2"}},

	// DELETE
	{name: "delete stale", method: "DELETE", path: obj, hdr: []string{"X-Timestamp: {old}"}},
	{name: "delete", method: "DELETE", path: obj},
	{name: "get deleted", method: "GET", path: obj},
	{name: "head deleted", method: "HEAD", path: obj},
	{name: "delete again", method: "DELETE", path: obj},
	{name: "delete missing", method: "DELETE", path: "AUTH_diff/c/never"},
	{name: "post deleted", method: "POST", path: obj},
	{name: "put over tombstone stale", method: "PUT", path: obj, body: "t", hdr: []string{"X-Timestamp: {old}"}},

	// replication verbs and bad requests
	{name: "replicate", method: "REPLICATE", path: "/{dev}/1", raw: true},
	{name: "ssync", method: "SSYNC", path: "/{dev}/1", raw: true, hdr: []string{"Content-Length: 0"}},
	{name: "unknown method", method: "BREW", path: obj},
	{name: "bad path short", method: "GET", path: "/{dev}/1/AUTH_diff/c", raw: true},
	{name: "bad partition", method: "GET", path: "/{dev}/x/AUTH_diff/c/o", raw: true},
	{name: "missing device", method: "GET", path: "/nodev/1/AUTH_diff/c/o", raw: true},
	{name: "bad policy", method: "GET", path: obj, hdr: []string{"X-Backend-Storage-Policy-Index: 7"}},
	{name: "policy not a number", method: "GET", path: obj, hdr: []string{"X-Backend-Storage-Policy-Index: x"}},
	{name: "device dot-dot", method: "GET", path: "/../1/AUTH_diff/c/o", raw: true},
	{name: "account path", method: "GET", path: "/{dev}/1/AUTH_diff", raw: true},
	{name: "options", method: "OPTIONS", path: "/", raw: true},
	{name: "bad timestamp", method: "PUT", path: obj2, body: "b", hdr: []string{"X-Timestamp: never"}},
	{name: "put missing timestamp", method: "PUT", path: obj2, body: "b", hdr: []string{"X-Timestamp: -"}},
	{name: "delete missing timestamp", method: "DELETE", path: obj2, hdr: []string{"X-Timestamp: -"}},
}

func repeatS(s string, n int) string {
	out := make([]byte, 0, n*len(s))
	for range n {
		out = append(out, s...)
	}
	return string(out)
}

// metaHeaders is n X-Object-Meta-* headers with values of size bytes.
func metaHeaders(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "X-Object-Meta-M" + itoa(i) + ": " + repeatS("v", size)
	}
	return out
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// explainedDiffs are the differences kept on purpose, each described in
// docs/compatibility.md, "The object server (backend protocol)".
var explainedDiffs = []explainedDiff{
	{
		steps:  []string{"delete", "delete if-delete-at right", "delete with expirer", "delete between data and meta", "delete two container hosts"},
		fields: []string{"header:Content-Length"},
		doc:    "204 without Content-Length",
	},
	{
		steps: []string{"put bad content-length", "name bad escape", "put unsupported transfer-encoding"},
		// Go's server closes the connection after such a refusal, so the
		// harness may read a reset where it was still sending the body.
		fields: []string{"status", "header:Content-Type", "header:Content-Length", "body", "header:X-Diff-Body-Error"},
		doc:    "Requests Go's HTTP server refuses",
	},
	{
		steps:  []string{"header value too long"},
		fields: []string{"header:Content-Type", "header:Content-Length", "body"},
		doc:    "Header lines over 8192 bytes",
	},
	{
		steps:  []string{"get arca sysmeta"},
		fields: []string{"header:X-Object-Sysmeta-Arca-Key-Id"},
		doc:    "Arca's own sysmeta",
	},
	{
		steps:  []string{"head after empty delete-at"},
		fields: []string{"*"},
		doc:    "An empty X-Delete-At",
	},
	{
		steps:  []string{"replicate"},
		fields: []string{"header:Content-Length"},
		doc:    "REPLICATE's pickle",
	},
	{
		steps:  []string{"ssync"},
		fields: []string{"header:X-Diff-Body-Error"},
		doc:    "SSYNC",
	},
	{
		steps:  []string{"options"},
		fields: []string{"header:Server"},
		doc:    "Server names Arca",
	},
}
