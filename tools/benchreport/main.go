// Command benchreport is the Go half of `make bench-report`
// (tools/bench-report.sh):
//
//	benchreport obj -target NAME=URL ... -out obj.json   PUT/GET through Swift proxies
//	benchreport mem -out mem.json NAME=PID ...           RSS of services (process trees, /proc)
//	benchreport check -obj obj.json                      issue 21's end-to-end target line (PASS/FAIL)
//	benchreport render -keys a.json,b.json -obj obj.json -mem mem.json \
//	    -md docs/bench-report.md -png docs/bench-report.png
//
// render reads the load generator's -json output (key service), obj's and
// mem's, and writes the Markdown report with ratios and target verdicts and
// a bar chart PNG (drawn with image/png and a built-in pixel font).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchreport obj|mem|check|render [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "obj":
		err = objCmd(os.Args[2:])
	case "mem":
		err = memCmd(os.Args[2:])
	case "check":
		err = checkCmd(os.Args[2:])
	case "render":
		err = renderCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}
