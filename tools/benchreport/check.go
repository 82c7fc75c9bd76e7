package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// errMissed: the check printed a FAIL line (exit status 1 as for any error).
var errMissed = errors.New("a target was missed (see the FAIL line; on a shared machine, rerun before concluding)")

// e2eCases are issue 21's end-to-end comparisons: Arca's object path
// (filter, proxy, arca-object-servers) at least as fast as Swift's own
// encryption (keymaster + encryption in the proxy), by req/s.
var e2eCases = []struct {
	op   string
	size int
}{{"PUT", 4 << 10}, {"GET", 4 << 10}, {"PUT", 16 << 20}, {"GET", 16 << 20}}

// e2eTargetLine judges issue 21's end-to-end target on `benchreport obj`'s
// rows: one line, PASS when arca's req/s is at least swift-encryption's
// for every case and no arca request failed, with each ratio, both
// figures and plain Swift's (no encryption) beside them.
func e2eTargetLine(rows []ObjRow) (string, bool) {
	by := map[string]ObjRow{}
	for _, r := range rows {
		by[fmt.Sprintf("%s %s %d", r.Target, r.Op, r.Size)] = r
	}
	ok := true
	var parts, plain []string
	for _, c := range e2eCases {
		label := c.op + " " + humanSize(c.size)
		a, okA := by[fmt.Sprintf("arca %s %d", c.op, c.size)]
		e, okE := by[fmt.Sprintf("swift-encryption %s %d", c.op, c.size)]
		switch {
		case !okA || !okE:
			ok = false
			parts = append(parts, label+" not measured")
			continue
		case a.Errors > 0 || e.Errors > 0:
			ok = false
			parts = append(parts, fmt.Sprintf("%s errors: arca %d, swift-encryption %d", label, a.Errors, e.Errors))
			continue
		case e.RPS <= 0:
			ok = false
			parts = append(parts, label+" swift-encryption measured no request")
			continue
		}
		if a.RPS < e.RPS {
			ok = false
		}
		parts = append(parts, fmt.Sprintf("%s %.2fx (%s vs %s)", label, a.RPS/e.RPS, rateStr(a), rateStr(e)))
		if s, found := by[fmt.Sprintf("swift %s %d", c.op, c.size)]; found && s.Errors == 0 {
			plain = append(plain, label+" "+rateStr(s))
		}
	}
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	line := fmt.Sprintf("%s end to end through the Swift proxy, arca / swift-encryption req/s: %s (target >= 1x each)",
		verdict, strings.Join(parts, ", "))
	if len(plain) > 0 {
		line += "; beside: swift without encryption " + strings.Join(plain, ", ")
	}
	return line, ok
}

// rateStr is a row's req/s, with MB/s for large objects.
func rateStr(r ObjRow) string {
	if r.Size >= 1<<20 {
		return fmt.Sprintf("%.1f req/s %.0f MB/s", r.RPS, r.MBps)
	}
	return fmt.Sprintf("%.0f req/s", r.RPS)
}

// checkCmd: benchreport check -obj obj.json prints issue 21's end-to-end
// target line; errMissed when it is missed.
func checkCmd(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	objPath := fs.String("obj", "", "benchreport obj's -out file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *objPath == "" {
		return errors.New("check: want -obj FILE")
	}
	var rows []ObjRow
	if err := readJSON(*objPath, &rows); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	line, ok := e2eTargetLine(rows)
	fmt.Fprintln(os.Stdout, line)
	if !ok {
		return errMissed
	}
	return nil
}
