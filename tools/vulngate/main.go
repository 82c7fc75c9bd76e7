// Command vulngate turns govulncheck's JSON output into a pass or fail for
// `make test`: it fails on every vulnerability that Arca's code reaches
// (a finding with a called function) unless the advisory is listed, with
// its reason, in the accepted file. Advisories govulncheck reports only for
// imported packages or required modules (code Arca does not call) are
// printed but do not fail the run, as govulncheck itself treats them.
//
//	go run golang.org/x/vuln/cmd/govulncheck@v1.9.0 -format json ./... |
//	    go run ./tools/vulngate -accepted tools/vuln-accepted.txt
//
// The accepted file holds one advisory per line: its id, then the reason.
// Blank lines and lines starting with # are ignored. An accepted advisory
// that is no longer reported is named, so the list shrinks when the
// toolchain or a module is upgraded.
//
// With -toolchain it reads no report: it fails when any standard-library
// advisory of the offline database (-db) affects that Go release, the one
// go.mod's toolchain line pins (toolchain.go says why).
//
//	go run ./tools/vulngate -toolchain go1.27.3 -db ~/.cache/arca/vulndb-VERSION
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

func main() {
	acceptedPath := flag.String("accepted", "", "file of accepted advisory ids with reasons")
	toolchain := flag.String("toolchain", "", "check this Go release (go1.27.3) against -db instead of reading a report")
	db := flag.String("db", "", "offline vulnerability database directory, for -toolchain")
	goos := flag.String("goos", "linux", "system the deployed binaries run on, for -toolchain")
	flag.Parse()
	if *toolchain != "" || *db != "" {
		if *toolchain == "" || *db == "" {
			fmt.Fprintln(os.Stderr, "vulngate: -toolchain and -db go together")
			os.Exit(2)
		}
		found, err := toolchainAdvisories(*db, *toolchain, *goos)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vulngate:", err)
			os.Exit(2)
		}
		if printToolchain(os.Stdout, *toolchain, found) {
			os.Exit(1)
		}
		return
	}
	accepted := map[string]string{}
	if *acceptedPath != "" {
		var err error
		if accepted, err = loadAccepted(*acceptedPath); err != nil {
			fmt.Fprintln(os.Stderr, "vulngate:", err)
			os.Exit(2)
		}
	}
	rep, err := readReport(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulngate:", err)
		os.Exit(2)
	}
	if failed := rep.print(os.Stdout, accepted); failed {
		os.Exit(1)
	}
}

// loadAccepted reads the accepted file: "ID reason..." per line.
func loadAccepted(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("accepted list: %w", err)
	}
	defer f.Close()
	return parseAccepted(f)
}

func parseAccepted(r io.Reader) (map[string]string, error) {
	accepted := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		if reason = strings.TrimSpace(reason); reason == "" {
			return nil, fmt.Errorf("accepted list line %d: %s has no reason", n, id)
		}
		accepted[id] = reason
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("accepted list: %w", err)
	}
	return accepted, nil
}

// message is one value of govulncheck's JSON stream; only the parts the
// gate reads are declared.
type message struct {
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
		} `json:"trace"`
	} `json:"finding"`
}

// advisory is what the gate knows of one reported advisory.
type advisory struct {
	id, summary, module, version, fixed string
	called                              bool
}

type report struct {
	advisories map[string]*advisory
}

func readReport(r io.Reader) (report, error) {
	rep := report{advisories: map[string]*advisory{}}
	get := func(id string) *advisory {
		a := rep.advisories[id]
		if a == nil {
			a = &advisory{id: id}
			rep.advisories[id] = a
		}
		return a
	}
	dec := json.NewDecoder(r)
	seen := 0
	for {
		var m message
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return report{}, fmt.Errorf("reading govulncheck -format json output: %w", err)
		}
		seen++
		switch {
		case m.OSV != nil && m.OSV.ID != "":
			get(m.OSV.ID).summary = m.OSV.Summary
		case m.Finding != nil && m.Finding.OSV != "":
			a := get(m.Finding.OSV)
			a.fixed = m.Finding.FixedVersion
			if len(m.Finding.Trace) > 0 {
				top := m.Finding.Trace[0]
				a.module, a.version = top.Module, top.Version
				if top.Function != "" {
					a.called = true
				}
			}
		}
	}
	if seen == 0 {
		// An empty stream means govulncheck did not run, not that all is well.
		return report{}, errors.New("no govulncheck output")
	}
	return rep, nil
}

// print writes one line per advisory that has a finding and reports
// whether any called advisory is not accepted.
func (rep report) print(w io.Writer, accepted map[string]string) (failed bool) {
	ids := make([]string, 0, len(rep.advisories))
	for id, a := range rep.advisories {
		if a.module != "" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var called, notCalled, acceptedCalled int
	for _, id := range ids {
		a := rep.advisories[id]
		fixed := a.fixed
		if fixed == "" {
			fixed = "no fix"
		}
		where := fmt.Sprintf("%s %s (%s)", a.module, a.version, fixed)
		switch reason, ok := accepted[id]; {
		case !a.called:
			notCalled++
		case ok:
			acceptedCalled++
			fmt.Fprintf(w, "accepted  %s %s: %s\n          reason: %s\n", id, where, a.summary, reason)
		default:
			called++
			failed = true
			fmt.Fprintf(w, "CALLED    %s %s: %s\n", id, where, a.summary)
		}
	}
	stale := make([]string, 0)
	for id := range accepted {
		if a := rep.advisories[id]; a == nil || !a.called {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	for _, id := range stale {
		fmt.Fprintf(w, "stale     %s is accepted but no longer reached: remove it from the list\n", id)
	}
	fmt.Fprintf(w, "vulngate: %d reached and not accepted, %d reached and accepted, %d in code Arca does not call\n",
		called, acceptedCalled, notCalled)
	return failed
}
