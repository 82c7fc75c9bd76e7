package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"opendev.org/x/arca/objectserver/rewrap"
	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
)

// rewrapTarget is issue 10's rate: objects rewrapped per second on one
// node, the job's default checksum delay included.
const rewrapTarget = 2000

// rewrap: n small objects on a node of one device, every one on an older
// project key, rewrapped by the job as an operator runs it; then the same
// job again, which finds them all done (the cost of a resumed run).
func rewrapCmd(args []string) error {
	fs := flag.NewFlagSet("rewrap", flag.ContinueOnError)
	n := fs.Int("n", 10000, "objects to rewrap")
	dir := fs.String("dir", "", "where the node's device is made (default: a temporary directory, removed after)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root := *dir
	if root == "" {
		tmp, err := os.MkdirTemp("", "speedreport-rewrap-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		root = tmp
	}
	m, err := rewraptest.NewNode(root)
	if err != nil {
		return err
	}
	keys := rewraptest.NewKeys()
	keys.Rotate("p1")
	for i := range *n {
		if err := rewraptest.PutObject(m, keys, "p1", fmt.Sprint("o", i), []byte(fmt.Sprint("small object ", i)), nil); err != nil {
			return err
		}
	}
	keys.Rotate("p1")
	return rewrapReport(context.Background(), rewrap.Options{Devices: m.Devices, Project: "p1", Keys: keys}, *n)
}

// rewrapReport runs the job twice and prints the figures; the first line
// is the one tools/bench.sh reads: the rate beside the target, then PASS
// or FAIL.
func rewrapReport(ctx context.Context, o rewrap.Options, n int) error {
	before := procIO()
	// The default checksum delay, as an operator's run has it: the job's
	// last files wait that long for their checksum, and the rate counts it.
	s, err := rewrap.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("rewrap: %w", err)
	}
	if s.Rewrapped != n || s.Failed != 0 {
		return fmt.Errorf("rewrap: %d objects rewrapped and %d failed, want %d and 0: %+v", s.Rewrapped, s.Failed, n, s)
	}
	after := procIO()
	rate := float64(n) / s.Elapsed.Seconds()
	res := "PASS"
	if rate < rewrapTarget {
		res = "FAIL"
	}
	fmt.Printf("rewrap of %d small objects (default %s checksum delay included): %.0f objects/s (target >= %d) %s\n",
		n, rewrap.DefaultChecksumDelay, rate, rewrapTarget, res)
	per := func(v int64) float64 { return float64(v) / float64(n) }
	fmt.Printf("  per object: %.2f dir reads, %.2f opens, %.2f xattr reads, %.2f xattr writes, %.2f partition locks\n",
		per(s.IO.DirReads), per(s.IO.Opens), per(s.IO.XattrReads), per(s.IO.XattrWrites), per(s.IO.Locks))
	fmt.Printf("  process I/O during the run: rchar %d, wchar %d, syscr %d, syscw %d, read_bytes %d, write_bytes %d\n",
		after["rchar"]-before["rchar"], after["wchar"]-before["wchar"], after["syscr"]-before["syscr"],
		after["syscw"]-before["syscw"], after["read_bytes"]-before["read_bytes"], after["write_bytes"]-before["write_bytes"])
	// the second pass is the cost of a resumed or repeated run: reads only
	s2, err := rewrap.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("rewrap, second pass: %w", err)
	}
	if s2.Already != n {
		return fmt.Errorf("rewrap, second pass: %d objects already rewrapped, want %d: %+v", s2.Already, n, s2)
	}
	fmt.Printf("  already-rewrapped pass: %d objects in %s: %.0f objects/s, %d xattr writes\n",
		n, s2.Elapsed, float64(n)/s2.Elapsed.Seconds(), s2.IO.XattrWrites)
	if rate < rewrapTarget {
		return errMissed
	}
	return nil
}

// procIO reads this process's I/O counters (rchar, wchar, syscr, syscw,
// read_bytes, write_bytes); none where /proc/self/io cannot be read.
func procIO() map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return out
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if ok {
			out[k], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return out
}
