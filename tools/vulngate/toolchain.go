package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The -toolchain check: govulncheck judges the standard library of the Go
// that runs it, which on the development machines is their own go1.26.8
// (GOTOOLCHAIN=local), not the release go.mod pins with its toolchain line
// for every other build. This check reads the same offline database and
// fails when any standard-library advisory affects the pinned release,
// reachable or not: the pin exists so that the Go which builds deployed
// binaries has none, and when one appears the pin must move, not be argued
// away in tools/vuln-accepted.txt.

// osvEntry is the part of an OSV record the check reads.
type osvEntry struct {
	ID       string `json:"id"`
	Summary  string `json:"summary"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
		Ranges []struct {
			Type   string `json:"type"`
			Events []struct {
				Introduced string `json:"introduced"`
				Fixed      string `json:"fixed"`
			} `json:"events"`
		} `json:"ranges"`
		EcosystemSpecific struct {
			Imports []struct {
				Path string   `json:"path"`
				GOOS []string `json:"goos"`
			} `json:"imports"`
		} `json:"ecosystem_specific"`
	} `json:"affected"`
}

// toolchainAdvisory is one standard-library advisory affecting a release.
type toolchainAdvisory struct{ id, summary, fixed string }

// toolchainAdvisories lists the standard-library advisories of the offline
// database db (the directory govulncheck's -db file:// reads: index/ and
// ID/) that affect the Go release version ("go1.27.3") on goos.
func toolchainAdvisories(db, version, goos string) ([]toolchainAdvisory, error) {
	v, ok := strings.CutPrefix(version, "go")
	if !ok || v == "" || !validVersion(v) {
		return nil, fmt.Errorf("toolchain %q is not a Go release such as go1.27.3", version)
	}
	raw, err := os.ReadFile(filepath.Join(db, "index", "modules.json"))
	if err != nil {
		return nil, fmt.Errorf("vulnerability database index: %w", err)
	}
	var modules []struct {
		Path  string `json:"path"`
		Vulns []struct {
			ID string `json:"id"`
		} `json:"vulns"`
	}
	if err := json.Unmarshal(raw, &modules); err != nil {
		return nil, fmt.Errorf("vulnerability database index: %w", err)
	}
	var ids []string
	for _, m := range modules {
		if m.Path == "stdlib" {
			for _, e := range m.Vulns {
				ids = append(ids, e.ID)
			}
		}
	}
	if len(ids) == 0 {
		// The database has always listed standard-library advisories; none
		// means a broken index, not a clean release.
		return nil, fmt.Errorf("vulnerability database %s lists no standard-library advisory", db)
	}
	slices.Sort(ids)
	var out []toolchainAdvisory
	for _, id := range ids {
		raw, err := os.ReadFile(filepath.Join(db, "ID", id+".json"))
		if err != nil {
			return nil, fmt.Errorf("vulnerability database: %w", err)
		}
		var e osvEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("vulnerability database %s: %w", id, err)
		}
		if fixed, hit := e.affects(v, goos); hit {
			out = append(out, toolchainAdvisory{id: e.ID, summary: e.Summary, fixed: fixed})
		}
	}
	return out, nil
}

// affects reports whether the standard library of Go v (no "go" prefix)
// on goos is in one of e's ranges, and the release that fixes it.
func (e osvEntry) affects(v, goos string) (fixed string, hit bool) {
	for _, a := range e.Affected {
		if a.Package.Name != "stdlib" || !forGOOS(a.EcosystemSpecific.Imports, goos) {
			continue
		}
		for _, r := range a.Ranges {
			if r.Type != "SEMVER" {
				continue
			}
			// Events are ordered: each introduced opens a range, the
			// fixed after it closes it. v is affected when the last
			// event at or below it is an introduced one.
			in, next := false, ""
			for _, ev := range r.Events {
				switch {
				case ev.Introduced != "" && compareVersions(v, ev.Introduced) >= 0:
					in, next = true, ""
				case ev.Fixed != "" && compareVersions(v, ev.Fixed) >= 0:
					in = false
				case ev.Fixed != "" && in && next == "":
					next = ev.Fixed
				}
			}
			if in {
				return next, true
			}
		}
	}
	return "", false
}

// forGOOS reports whether an advisory's imports concern goos: one without
// a goos list concerns every system.
func forGOOS(imports []struct {
	Path string   `json:"path"`
	GOOS []string `json:"goos"`
}, goos string) bool {
	if len(imports) == 0 {
		return true
	}
	for _, im := range imports {
		if len(im.GOOS) == 0 || slices.Contains(im.GOOS, goos) {
			return true
		}
	}
	return false
}

// validVersion accepts the database's version forms: 1.27.3, 1.27.0-rc.2,
// 1.26.0-0, and 0 (every version).
func validVersion(v string) bool {
	core, _, _ := strings.Cut(v, "-")
	for _, p := range strings.Split(core, ".") {
		if _, err := strconv.Atoi(p); err != nil {
			return false
		}
	}
	return true
}

// compareVersions orders semantic versions as the database writes them
// (no "v"): numbers, then a release above its pre-releases, whose
// dot-separated identifiers compare numerically when both are numbers,
// numbers below words, words by bytes, and a shorter list first.
func compareVersions(a, b string) int {
	ac, apre, _ := strings.Cut(a, "-")
	bc, bpre, _ := strings.Cut(b, "-")
	an, bn := strings.Split(ac, "."), strings.Split(bc, ".")
	for i := range max(len(an), len(bn)) {
		if c := compareNumber(part(an, i), part(bn, i)); c != 0 {
			return c
		}
	}
	switch {
	case apre == bpre:
		return 0
	case apre == "":
		return 1
	case bpre == "":
		return -1
	}
	ap, bp := strings.Split(apre, "."), strings.Split(bpre, ".")
	for i := range min(len(ap), len(bp)) {
		x, xerr := strconv.Atoi(ap[i])
		y, yerr := strconv.Atoi(bp[i])
		switch {
		case xerr == nil && yerr == nil:
			if x != y {
				return cmpInt(x, y)
			}
		case xerr == nil:
			return -1
		case yerr == nil:
			return 1
		default:
			if c := strings.Compare(ap[i], bp[i]); c != 0 {
				return c
			}
		}
	}
	return cmpInt(len(ap), len(bp))
}

func part(p []string, i int) string {
	if i < len(p) {
		return p[i]
	}
	return "0"
}

func compareNumber(a, b string) int {
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return cmpInt(x, y)
}

func cmpInt(x, y int) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// printToolchain writes the result of the -toolchain check and reports
// whether it failed.
func printToolchain(w io.Writer, version string, found []toolchainAdvisory) (failed bool) {
	for _, a := range found {
		fixed := a.fixed
		if fixed == "" {
			fixed = "no fix"
		} else {
			fixed = "fixed in go" + fixed
		}
		fmt.Fprintf(w, "TOOLCHAIN %s affects %s (%s): %s\n", a.id, version, fixed, a.summary)
	}
	if len(found) > 0 {
		fmt.Fprintf(w, "vulngate: %d standard-library advisories affect %s, the toolchain go.mod pins: move the pin to a fixed release\n", len(found), version)
		return true
	}
	fmt.Fprintf(w, "vulngate: no standard-library advisory affects %s, the toolchain go.mod pins\n", version)
	return false
}
