package functional_test

import (
	"encoding/json"
	"fmt"
	"mime"
	"slices"
	"sort"
	"sync"

	"net/url"
	"regexp"
	"strings"
)

// view is an exchange as compared: values that differ by nature between
// two deployments (times, transaction ids, multipart boundaries, the
// target's container prefix) normalized to placeholders.
type view struct {
	status string
	header map[string]string
	body   string
}

// Values that differ from one request to the next whatever answers.
var (
	txIDs     = regexp.MustCompile(`tx[0-9a-f]{21}-[0-9a-f]{10}`)
	swiftTS   = regexp.MustCompile(`\b\d{10}\.\d{5}(_[0-9a-f]{16})?\b`)
	isoTimes  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?`)
	httpDates = regexp.MustCompile(`[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT`)
)

// presenceOnly are headers whose value is this request's or the shared
// account's (both targets use the stack's accounts, which other tests
// change too): only whether they are there is compared.
var presenceOnly = map[string]bool{
	"Date": true, "X-Trans-Id": true, "X-Openstack-Request-Id": true,
	"X-Account-Object-Count": true, "X-Account-Bytes-Used": true, "X-Account-Container-Count": true,
}

// presenceOnlyPrefixes are such headers by prefix.
var presenceOnlyPrefixes = []string{"X-Account-Storage-Policy-", "X-Account-Project-Domain-Id"}

// ignoredPrefixes are headers left out: the account's metadata, which both
// targets (and other tests) set and remove on the one shared account.
var ignoredPrefixes = []string{"X-Account-Meta-"}

// view normalizes x, an answer of target ti.
func (d *diffTargets) view(ti int, x exchange) view {
	target := d.targets[ti]
	v := view{status: fmt.Sprint(x.status), header: map[string]string{}}
	switch {
	case x.status == 0 && x.interim != 0:
		// the 1xx counts: a 100 Continue sent or not is a difference
		v.status = fmt.Sprintf("no answer after %d: %s", x.interim, x.err)
	case x.status == 0:
		v.status = "no answer: " + x.err
	case x.interim != 0:
		v.status = fmt.Sprintf("%d after %d", x.status, x.interim)
	}
	volatile := d.volatileValues(ti)
	norm := func(s string) string {
		s = strings.ReplaceAll(s, target.prefix, "{T}")
		for _, v := range volatile {
			s = strings.ReplaceAll(s, v, "{manifest-etag}")
		}
		s = txIDs.ReplaceAllString(s, "{txid}")
		s = swiftTS.ReplaceAllString(s, "{ts}")
		s = isoTimes.ReplaceAllString(s, "{iso}")
		return httpDates.ReplaceAllString(s, "{date}")
	}
	boundary := ""
	if _, params, err := mime.ParseMediaType(x.header.Get("Content-Type")); err == nil {
		boundary = params["boundary"]
	}
	for name, values := range x.header {
		if hasAnyPrefix(name, ignoredPrefixes) {
			continue
		}
		val := strings.Join(values, ", ")
		if boundary != "" {
			val = strings.ReplaceAll(val, boundary, "{boundary}")
		}
		if name == "Allow" {
			// Swift lists the methods of a Python set, in an order that
			// changes with each process.
			methods := strings.Split(val, ", ")
			sort.Strings(methods)
			val = strings.Join(methods, ", ")
		}
		if presenceOnly[name] || hasAnyPrefix(name, presenceOnlyPrefixes) {
			val = "(present)"
		}
		v.header[name] = norm(val)
	}
	body := string(x.body)
	if boundary != "" {
		body = strings.ReplaceAll(body, boundary, "{boundary}")
	}
	v.body = norm(body)
	if x.err != "" && x.status != 0 {
		v.body += " [" + x.err + "]"
	}
	return v
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// pathEscape %-encodes an object name for a path, keeping its slashes.
func pathEscape(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// explainedDiff is a difference kept (or being fixed elsewhere). It
// matches a difference when the shape compared is one of its shapes and
// every one of its other set fields does: the case,
// the step indexes, the method, the field ("status", "body",
// "header:Name"), and regular expressions that the whole arca and swift
// values, and the "arca/swift" statuses, must match.
type explainedDiff struct {
	// shapes are the arca shapes (shapeProxy, shapePipeline) it holds
	// for; required: a difference that one shape's HTTP server makes is
	// no excuse for the other shape.
	shapes   []string
	caseName string
	steps    []int
	method   string
	field    string
	arca     string
	swift    string
	statuses string
	// class counts it: "kept" are differences docs/compatibility.md
	// explains (classKept).
	class string
	why   string
	// sometimes marks a difference the environment makes appear only now
	// and then, so that its absence is no failure.
	sometimes bool
}

// diffSeen is one field that differs.
type diffSeen struct {
	shape    string
	caseName string
	step     int
	method   string
	field    string
	arca     string
	swift    string
	statuses string
}

var (
	explainMu sync.Mutex
	explainRE = map[string]*regexp.Regexp{}
)

// fullMatch reports whether pattern ("" matches anything) matches all of s.
func fullMatch(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	explainMu.Lock()
	re, ok := explainRE[pattern]
	if !ok {
		re = regexp.MustCompile(`^(?s:` + pattern + `)$`)
		explainRE[pattern] = re
	}
	explainMu.Unlock()
	return re.MatchString(s)
}

// explain returns the index in explainedDiffs of the first entry matching
// d, or -1.
func explain(d diffSeen) int {
	for k, e := range explainedDiffs {
		if !slices.Contains(e.shapes, d.shape) ||
			e.caseName != "" && e.caseName != d.caseName || e.steps != nil && !slices.Contains(e.steps, d.step) ||
			e.method != "" && e.method != d.method || e.field != "" && e.field != d.field {
			continue
		}
		if fullMatch(e.arca, d.arca) && fullMatch(e.swift, d.swift) && fullMatch(e.statuses, d.statuses) {
			return k
		}
	}
	return -1
}
