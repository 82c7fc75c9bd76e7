// Command speedreport is the Go half of `make bench` for what is measured
// inside one process or against servers the caller started: each
// subcommand measures, prints its figures beside their baselines and
// targets, and exits 1 when a target is missed (2 when it could not
// measure).
//
//	speedreport crypto [-benchtime 1s] [-mem-mib 64]
//	    objcrypt's pipelines beside the standard library's primitives, and
//	    the memory one stream allocates (package objcrypt's entry points)
//	speedreport rewrap [-n 10000] [-dir DIR]
//	    objects rewrapped per second on a local device (target >= 2,000/s)
//	speedreport objectserver -server URL,PID,NAME ... [-scale 1]
//	    PUT and GET of 4 KiB, 1 MiB and 64 MiB objects on running object
//	    servers, with each server's CPU per request (tools/bench-objectserver.sh
//	    starts arca's and Swift's and runs it)
//
// The figures are for a shared machine: a missed target says to rerun
// before concluding, as tools/bench.sh's summary does.
package main

import (
	"errors"
	"fmt"
	"os"
)

// errMissed is a target the figures missed: the report is printed, the
// exit status is 1.
var errMissed = errors.New("a target was missed (see the figures; on a shared machine, rerun before concluding)")

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: speedreport crypto|rewrap|objectserver [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "crypto":
		err = cryptoCmd(os.Args[2:])
	case "rewrap":
		err = rewrapCmd(os.Args[2:])
	case "objectserver":
		err = objectServerCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "speedreport:", err)
		if errors.Is(err, errMissed) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}
