package swiftfilter

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// early is the bound on an answer Swift gives before reading the body: the
// proxy answers in milliseconds, so the filter must too, never only when
// the client gives up.
const early = 3 * time.Second

// TestRealBinaryFidelity sends the same raw requests to the
// arca-swift-filter binary and to the stack's Swift proxy behind it, and
// requires the same answers: status line, headers, body, connection.
// Each subtest is one fault the filter had.
func TestRealBinaryFidelity(t *testing.T) {
	e := startBinary(t)
	cont := "fid-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	mustRaw(t, e.proxy, "PUT", head("PUT {acct}/{cont} HTTP/1.1", "Host: x", "X-Auth-Token: {tok}", "Content-Length: 0"), e, cont, http.StatusCreated)
	mustRaw(t, e.proxy, "PUT", head("PUT {acct}/{cont}/src HTTP/1.1", "Host: x", "X-Auth-Token: {tok}", "Content-Length: 4")+"data", e, cont, http.StatusCreated)

	t.Run("invalid UTF-8 or NUL in the path answers Swift's 412", func(t *testing.T) {
		corpus := []rawCase{
			{name: "GET %FF", method: "GET", req: head("GET {acct}/{cont}/%FF HTTP/1.1", "Host: x", "X-Auth-Token: {tok}")},
			{name: "GET raw 0xFF", method: "GET", req: head("GET {acct}/{cont}/\xff HTTP/1.1", "Host: x", "X-Auth-Token: {tok}")},
			{name: "GET %00", method: "GET", req: head("GET {acct}/{cont}/a%00b HTTP/1.1", "Host: x", "X-Auth-Token: {tok}")},
			{name: "HEAD %00", method: "HEAD", req: head("HEAD {acct}/{cont}/%00 HTTP/1.1", "Host: x")},
			{name: "GET %C0%80 HTTP/1.0", method: "GET", req: head("GET {acct}/%C0%80 HTTP/1.0", "Host: x")},
			{name: "invalid token and NUL", method: "GET", req: head("GET {acct}/%00 HTTP/1.1", "Host: x", "X-Auth-Token: bogus")},
			{name: "PUT %FF body withheld", method: "PUT", req: head("PUT {acct}/{cont}/%FF HTTP/1.1", "Host: x", "X-Auth-Token: {tok}", "Content-Length: 5"), limit: early},
		}
		checkDifferential(t, e, cont, corpus, nil)
	})

	t.Run("PUT without Content-Length or Transfer-Encoding answers 411 and stores nothing", func(t *testing.T) {
		corpus := []rawCase{
			{name: "PUT HTTP/1.1", method: "PUT", req: head("PUT {acct}/{cont}/nolen-{side} HTTP/1.1", "Host: x", "X-Auth-Token: {tok}")},
			{name: "PUT HTTP/1.0", method: "PUT", req: head("PUT {acct}/{cont}/nolen-{side} HTTP/1.0", "Host: x", "X-Auth-Token: {tok}")},
			{name: "PUT keep-alive", method: "PUT", req: head("PUT {acct}/{cont}/nolen-{side} HTTP/1.1", "Host: x", "X-Auth-Token: {tok}", "Connection: keep-alive")},
			{name: "PUT Expect", method: "PUT", req: head("PUT {acct}/{cont}/nolen-{side} HTTP/1.1", "Host: x", "X-Auth-Token: {tok}", "Expect: 100-continue")},
			{name: "PUT no token", method: "PUT", req: head("PUT {acct}/{cont}/nolen-{side} HTTP/1.1", "Host: x")},
			{name: "PUT missing container", method: "PUT", req: head("PUT {acct}/{cont}-none/o HTTP/1.1", "Host: x", "X-Auth-Token: {tok}")},
			// A server-side copy needs no length: Swift copies, and so
			// must the filter.
			{name: "PUT X-Copy-From", method: "PUT", req: head("PUT {acct}/{cont}/copy-{side} HTTP/1.1", "Host: x", "X-Auth-Token: {tok}", "X-Copy-From: {cont}/src")},
			{name: "HEAD the copy", method: "HEAD", req: head("HEAD {acct}/{cont}/copy-{side} HTTP/1.1", "Host: x", "X-Auth-Token: {tok}")},
			{name: "HEAD after the refused PUT", method: "HEAD", req: head("HEAD {acct}/{cont}/nolen-{side} HTTP/1.1", "Host: x", "X-Auth-Token: {tok}")},
		}
		checkDifferential(t, e, cont, corpus, map[explainedKey]string{
			{"PUT Expect", "header Connection"}: announcedClose,
		})
		r := rawRequest(t, e.filter, "HEAD", fillRaw(e, cont, "f", head("HEAD {acct}/{cont}/nolen-f HTTP/1.1", "Host: x", "X-Auth-Token: {tok}")), early)
		if r.resp.StatusCode != http.StatusNotFound {
			t.Errorf("after a PUT without a length through the filter, HEAD answers %s: an object was stored", r.resp.Status)
		}
	})

	t.Run("early answers reach a client that holds back its body", func(t *testing.T) {
		var corpus []rawCase
		for _, expect := range []string{"", "Expect: 100-continue"} {
			for _, c := range []struct{ name, line, token, length string }{
				{"413 too large", "PUT {acct}/{cont}/big HTTP/1.1", "X-Auth-Token: {tok}", "Content-Length: 6000000000"},
				{"401 no token", "PUT {acct}/{cont}/anon HTTP/1.1", "", "Content-Length: 100"},
				{"401 no token large", "PUT {acct}/{cont}/anon HTTP/1.1", "", "Content-Length: 1000000"},
				{"403 another project's token", "PUT {acct}/{cont}/alt HTTP/1.1", "X-Auth-Token: {alttok}", "Content-Length: 100"},
				{"404 no container", "PUT {acct}/{cont}-none/o HTTP/1.1", "X-Auth-Token: {tok}", "Content-Length: 100"},
				{"404 no container POST", "POST {acct}/{cont}-none/o HTTP/1.1", "X-Auth-Token: {tok}", "Content-Length: 100"},
			} {
				lines := []string{"Host: x", c.length}
				if c.token != "" {
					lines = append(lines, c.token)
				}
				name := c.name
				if expect != "" {
					lines, name = append(lines, expect), name+" with Expect"
				}
				method, _, _ := strings.Cut(c.line, " ")
				corpus = append(corpus, rawCase{name: name, method: method, req: head(c.line, lines...), limit: early})
			}
		}
		explained := map[explainedKey]string{
			{"413 too large", "connection closed"}:      unreadBodyClosed,
			{"401 no token large", "connection closed"}: unreadBodyClosed,
		}
		for _, c := range corpus {
			if strings.HasSuffix(c.name, " with Expect") {
				explained[explainedKey{c.name, "header Connection"}] = announcedClose
			}
		}
		checkDifferential(t, e, cont, corpus, explained)
	})

	t.Run("Connection keep-alive is echoed as Swift does", func(t *testing.T) {
		var corpus []rawCase
		for _, proto := range []string{"HTTP/1.0", "HTTP/1.1"} {
			for _, conn := range []string{"", "keep-alive", "Keep-Alive", "close", "keep-alive, x-other"} {
				lines := []string{"Host: x", "X-Auth-Token: {tok}"}
				if conn != "" {
					lines = append(lines, "Connection: "+conn)
				}
				for _, m := range []string{"GET", "HEAD"} {
					corpus = append(corpus, rawCase{name: m + " " + proto + " Connection: " + conn, method: m,
						req: head(m+" {acct}/{cont}/src "+proto, lines...)})
				}
			}
		}
		checkDifferential(t, e, cont, corpus, nil)
	})
}

// Differences kept on purpose (docs/compatibility.md, "The filter").
const (
	// Both close the connection of a client that waited for 100 Continue
	// and got a final answer; eventlet does it silently, net/http says so.
	announcedClose = "the filter announces the close Swift also makes"
	// Swift reads and discards a refused body of any size to keep the
	// connection; net/http reads up to 256 KiB and closes beyond.
	unreadBodyClosed = "net/http closes rather than drain over 256 KiB of refused body"
)

// fillRaw replaces the corpus placeholders in req for side.
func fillRaw(e *binEnv, cont, side, req string) string {
	return strings.NewReplacer("{acct}", e.account, "{tok}", e.token, "{alttok}", e.altToken, "{cont}", cont, "{side}", side).Replace(req)
}

// mustRaw sends req to addr and requires status.
func mustRaw(t *testing.T, addr, method, req string, e *binEnv, cont string, status int) rawResult {
	t.Helper()
	r := rawRequest(t, addr, method, fillRaw(e, cont, "p", req), 10*time.Second)
	if r.resp.StatusCode != status {
		t.Fatalf("%s: %s, want %d: %s", firstLine(req), r.resp.Status, status, r.body)
	}
	return r
}

// TestRealBinaryDifferential compares the filter's answers with the proxy's
// for what the filter does itself: headers it adds or strips, answers it
// writes, HEAD bodies, status lines, ids and dates, chunked bodies. Every
// difference left is one docs/compatibility.md ("The filter") explains.
func TestRealBinaryDifferential(t *testing.T) {
	e := startBinary(t)
	cont := "diff-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	mustRaw(t, e.proxy, "PUT", head("PUT {acct}/{cont} HTTP/1.1", "Host: x", "X-Auth-Token: {tok}", "Content-Length: 0"), e, cont, http.StatusCreated)
	mustRaw(t, e.proxy, "PUT", head("PUT {acct}/{cont}/src HTTP/1.1", "Host: x", "X-Auth-Token: {tok}", "Content-Length: 10")+"0123456789", e, cont, http.StatusCreated)
	tok, obj := "X-Auth-Token: {tok}", "{acct}/{cont}/src"
	corpus := []rawCase{
		{name: "GET object", method: "GET", req: head("GET "+obj+" HTTP/1.1", "Host: x", tok)},
		{name: "HEAD object", method: "HEAD", req: head("HEAD "+obj+" HTTP/1.1", "Host: x", tok)},
		{name: "GET range", method: "GET", req: head("GET "+obj+" HTTP/1.1", "Host: x", tok, "Range: bytes=2-4")},
		{name: "GET multirange", method: "GET", req: head("GET "+obj+" HTTP/1.1", "Host: x", tok, "Range: bytes=0-1,5-6")},
		{name: "GET unsatisfiable", method: "GET", req: head("GET "+obj+" HTTP/1.1", "Host: x", tok, "Range: bytes=20-30")},
		{name: "GET If-None-Match *", method: "GET", req: head("GET "+obj+" HTTP/1.1", "Host: x", tok, "If-None-Match: *")},
		{name: "GET forged key id", method: "GET", req: head("GET "+obj+" HTTP/1.1", "Host: x", tok, "X-Arca-Key-Id: forged")},
		{name: "GET missing", method: "GET", req: head("GET {acct}/{cont}/none HTTP/1.1", "Host: x", tok)},
		{name: "HEAD missing", method: "HEAD", req: head("HEAD {acct}/{cont}/none HTTP/1.1", "Host: x", tok)},
		{name: "DELETE missing", method: "DELETE", req: head("DELETE {acct}/{cont}/none HTTP/1.1", "Host: x", tok)},
		{name: "GET listing json", method: "GET", req: head("GET {acct}/{cont}?format=json HTTP/1.1", "Host: x", tok)},
		{name: "HEAD account", method: "HEAD", req: head("HEAD {acct} HTTP/1.1", "Host: x", tok)},
		{name: "GET info", method: "GET", req: head("GET /info HTTP/1.1", "Host: x")},
		{name: "GET no token", method: "GET", req: head("GET "+obj+" HTTP/1.1", "Host: x")},
		{name: "GET bad version", method: "GET", req: head("GET /v2/AUTH_x/c HTTP/1.1", "Host: x", tok)},
		{name: "GET unknown path", method: "GET", req: head("GET /nowhere HTTP/1.1", "Host: x")},
		{name: "OPTIONS object", method: "OPTIONS", req: head("OPTIONS "+obj+" HTTP/1.1", "Host: x", "Origin: http://example.com", "Access-Control-Request-Method: GET")},
		{name: "PUT chunked", method: "PUT", req: head("PUT {acct}/{cont}/chunked-{side} HTTP/1.1", "Host: x", tok, "Transfer-Encoding: chunked") + "5\r\nhello\r\n0\r\n\r\n"},
		{name: "PUT Content-Length 0", method: "PUT", req: head("PUT {acct}/{cont}/empty-{side} HTTP/1.1", "Host: x", tok, "Content-Length: 0")},
		{name: "PUT with body and Expect", method: "PUT", req: head("PUT {acct}/{cont}/exp-{side} HTTP/1.1", "Host: x", tok, "Content-Length: 3", "Expect: 100-continue") + "abc"},
		{name: "POST metadata", method: "POST", req: head("POST "+obj+" HTTP/1.1", "Host: x", tok, "X-Object-Meta-Color: blue", "Content-Length: 0")},
		{name: "COPY", method: "COPY", req: head("COPY "+obj+" HTTP/1.1", "Host: x", tok, "Destination: {cont}/copied-{side}")},
		// The filter's own answers.
		{name: "GET invalid token", method: "GET", req: head("GET "+obj+" HTTP/1.1", "Host: x", "X-Auth-Token: bogus")},
		{name: "HEAD invalid token", method: "HEAD", req: head("HEAD "+obj+" HTTP/1.1", "Host: x", "X-Auth-Token: bogus")},
		{name: "GET info invalid token", method: "GET", req: head("GET /info HTTP/1.1", "Host: x", "X-Auth-Token: bogus")},
		{name: "GET folded token header", method: "GET", req: head("GET "+obj+" HTTP/1.1", "Host: x", "X_Auth_Token: {tok}")},
		{name: "GET raw NUL", method: "GET", req: head("GET "+obj+"\x00 HTTP/1.1", "Host: x", tok)},
		{name: "CONNECT", method: "CONNECT", req: head("CONNECT "+obj+" HTTP/1.1", "Host: x", tok)},
		{name: "GET healthcheck", method: "GET", req: head("GET /healthcheck HTTP/1.1", "Host: x")},
		{name: "HEAD healthcheck", method: "HEAD", req: head("HEAD /healthcheck HTTP/1.1", "Host: x")},
	}
	const (
		noBodyStatus = "net/http sends no Content-Length (nor, on 304, Content-Type) with 204 and 304 (RFC 9110)"
		failClosed   = "the filter refuses an invalid token wherever it is sent; Swift ignores it where anonymous access is allowed"
		folded       = "the filter refuses a header name WSGI would fold onto a token or destination header it reads"
		rawNUL       = "net/http refuses a raw NUL in the request line before the filter sees it"
		connect      = "the filter never forwards CONNECT"
		health       = "the filter answers /healthcheck itself (internal/health), with no transaction id"
	)
	explained := map[explainedKey]string{
		{"GET If-None-Match *", "header Content-Length"}: noBodyStatus,
		{"GET If-None-Match *", "header Content-Type"}:   noBodyStatus,
		{"HEAD account", "header Content-Length"}:        noBodyStatus,
	}
	for field, cases := range map[string]map[string]string{
		"status":                        {"GET info invalid token": failClosed, "GET folded token header": folded, "GET raw NUL": rawNUL, "HEAD healthcheck": health},
		"header Content-Length":         {"GET info invalid token": failClosed, "GET folded token header": folded, "GET raw NUL": rawNUL, "CONNECT": connect, "HEAD healthcheck": health},
		"header Content-Type":           {"GET info invalid token": failClosed, "GET folded token header": folded, "GET raw NUL": rawNUL, "CONNECT": connect, "GET healthcheck": health, "HEAD healthcheck": health},
		"header Www-Authenticate":       {"GET info invalid token": failClosed},
		"body":                          {"GET info invalid token": failClosed, "GET folded token header": folded, "GET raw NUL": rawNUL, "CONNECT": connect},
		"header Accept-Ranges":          {"GET folded token header": folded},
		"header Etag":                   {"GET folded token header": folded},
		"header Last-Modified":          {"GET folded token header": folded},
		"header X-Object-Meta-Color":    {"GET folded token header": folded},
		"header X-Timestamp":            {"GET folded token header": folded},
		"header Date":                   {"GET raw NUL": rawNUL},
		"header X-Trans-Id":             {"GET raw NUL": rawNUL, "GET healthcheck": health, "HEAD healthcheck": health},
		"header X-Openstack-Request-Id": {"GET raw NUL": rawNUL, "GET healthcheck": health, "HEAD healthcheck": health},
		"header Connection":             {"GET raw NUL": rawNUL},
		"connection closed":             {"GET raw NUL": rawNUL},
		"header Allow":                  {"CONNECT": connect},
		"header Cache-Control":          {"GET healthcheck": health, "HEAD healthcheck": health},
	} {
		for name, why := range cases {
			explained[explainedKey{name, field}] = why
		}
	}
	checkDifferential(t, e, cont, corpus, explained)
}
