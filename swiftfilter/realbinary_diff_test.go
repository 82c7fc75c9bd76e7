package swiftfilter

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

// rawCase is one request of a differential corpus, sent byte for byte to
// the filter and to the Swift proxy behind it. In req (and body), {acct} is
// the demo account's path, {tok} demo's token, {cont} the test's container
// and {side} "p" or "f" (the proxy's or the filter's copy of an object, so
// that one write does not change what the other sees).
type rawCase struct {
	name   string
	method string
	req    string
	// limit bounds the wait for the final response (default 10 s): where
	// Swift answers early, what the filter adds must stay well inside it.
	limit time.Duration
}

// presenceOnly are headers whose values differ per request or per write
// (ids, clocks): their presence is compared, not their value.
var presenceOnly = map[string]bool{
	"X-Trans-Id": true, "X-Openstack-Request-Id": true, "Date": true,
	"Last-Modified": true, "X-Timestamp": true, "X-Put-Timestamp": true,
	"Etag": true, // a PUT's ETag is the body's MD5, the same on both; a
	// container listing's is not (object names differ by {side})
}

// rawTargets are the two answers to one case.
type rawTargets struct{ proxy, filter rawResult }

// runRaw sends c to the proxy, then the same bytes (with {side} changed) to
// the filter.
func (e *binEnv) runRaw(t *testing.T, c rawCase, cont string) rawTargets {
	t.Helper()
	limit := c.limit
	if limit == 0 {
		limit = 10 * time.Second
	}
	return rawTargets{
		proxy:  rawRequest(t, e.proxy, c.method, fillRaw(e, cont, "p", c.req), limit),
		filter: rawRequest(t, e.filter, c.method, fillRaw(e, cont, "f", c.req), limit),
	}
}

// fieldDiff is one field that differs between the two answers.
type fieldDiff struct {
	field, proxy, filter string
}

// compareRaw lists what differs between the proxy's and the filter's
// answers: the status line (its protocol apart, for a request in HTTP/1.0), every header (by value, or by presence for
// presenceOnly), the body, and whether the connection stays open. It also
// returns how many fields were compared.
func compareRaw(r rawTargets, http10 bool) (diffs []fieldDiff, compared int) {
	p, f := r.proxy, r.filter
	add := func(field, pv, fv string) {
		compared++
		if pv != fv {
			diffs = append(diffs, fieldDiff{field, pv, fv})
		}
	}
	proto := "protocol"
	if http10 {
		proto = "protocol to HTTP/1.0"
	}
	add(proto, p.resp.Proto, f.resp.Proto)
	add("status", p.resp.Status, f.resp.Status)
	add("interim", fmt.Sprint(p.interim), fmt.Sprint(f.interim))
	names := map[string]bool{}
	for k := range p.resp.Header {
		names[k] = true
	}
	for k := range f.resp.Header {
		names[k] = true
	}
	sorted := make([]string, 0, len(names))
	for k := range names {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		pv, fv := strings.Join(p.resp.Header[k], " | "), strings.Join(f.resp.Header[k], " | ")
		switch {
		case k == "Content-Type" && boundary(p.resp) != "" && boundary(f.resp) != "":
			pv, fv = strings.ReplaceAll(pv, boundary(p.resp), "BOUNDARY"), strings.ReplaceAll(fv, boundary(f.resp), "BOUNDARY")
		case k == "Connection":
			continue // compared as sent, below
		case presenceOnly[k]:
			pv, fv = presence(p.resp.Header, k), presence(f.resp.Header, k)
		}
		add("header "+k, pv, fv)
	}
	add("header Connection", p.connection, f.connection)
	pb, fb := string(p.body), string(f.body)
	if pbd, fbd := boundary(p.resp), boundary(f.resp); pbd != "" && fbd != "" {
		// Each answer draws its own multipart boundary.
		pb, fb = strings.ReplaceAll(pb, pbd, "BOUNDARY"), strings.ReplaceAll(fb, fbd, "BOUNDARY")
	}
	if bytes.Contains(p.body, []byte("AUTH_")) {
		// Listings name the {side} objects; compare their shape only.
		pb, fb = fmt.Sprintf("%d lines", bytes.Count(p.body, []byte("\n"))), fmt.Sprintf("%d lines", bytes.Count(f.body, []byte("\n")))
	}
	add("body", pb, fb)
	add("connection closed", fmt.Sprint(p.closed), fmt.Sprint(f.closed))
	return diffs, compared
}

// boundary is the multipart boundary of a response, if it has one.
func boundary(r *http.Response) string {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return params["boundary"]
}

func presence(h http.Header, k string) string {
	if _, ok := h[k]; ok {
		return "present"
	}
	return "absent"
}

// explainedKey names a difference kept on purpose: a case and a field.
type explainedKey struct{ caseName, field string }

// everywhere are the differences explained for every request
// (docs/compatibility.md, "The filter").
var everywhere = map[string]string{
	// net/http answers an HTTP/1.0 request with an HTTP/1.0 status line;
	// eventlet always says HTTP/1.1. Both are valid answers to a 1.0
	// client, and nothing else of the answer depends on it.
	"protocol to HTTP/1.0": "net/http's status line for HTTP/1.0 requests",
}

// checkDifferential runs the corpus through both targets, logs the counts
// and fails on every difference that explained does not list.
func checkDifferential(t *testing.T, e *binEnv, cont string, corpus []rawCase, explained map[explainedKey]string) {
	t.Helper()
	var requests, compared, unexplained int
	byClass := map[string]int{}
	for _, c := range corpus {
		r := e.runRaw(t, c, cont)
		requests += 2
		diffs, n := compareRaw(r, strings.HasSuffix(firstLine(c.req), " HTTP/1.0"))
		compared += n
		for _, d := range diffs {
			class := strings.SplitN(d.field, " ", 2)[0]
			why, ok := explained[explainedKey{c.name, d.field}]
			if !ok {
				why, ok = everywhere[d.field]
			}
			if ok {
				byClass["explained "+class]++
				t.Logf("%s: %s differs on purpose (%s): proxy %q, filter %q", c.name, d.field, why, d.proxy, d.filter)
				continue
			}
			byClass[class]++
			unexplained++
			t.Errorf("%s: %s: proxy %q, filter %q", c.name, d.field, d.proxy, d.filter)
		}
	}
	t.Logf("differential: %d cases, %d requests, %d fields compared, %d unexplained differences; by class %v",
		len(corpus), requests, compared, unexplained, byClass)
}
