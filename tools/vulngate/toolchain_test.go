package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeDB lays out an offline database as vulndb's indexdb writes it:
// index/modules.json naming each module's advisories, ID/<id>.json the
// OSV records.
func writeDB(t *testing.T, records map[string]string, stdlibIDs ...string) string {
	t.Helper()
	db := t.TempDir()
	for _, d := range []string{"index", "ID"} {
		if err := os.Mkdir(filepath.Join(db, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var vulns []string
	for _, id := range stdlibIDs {
		vulns = append(vulns, `{"id":"`+id+`"}`)
	}
	modules := `[{"path":"github.com/x/y","vulns":[{"id":"GO-9"}]},{"path":"stdlib","vulns":[` + strings.Join(vulns, ",") + `]}]`
	if err := os.WriteFile(filepath.Join(db, "index", "modules.json"), []byte(modules), 0o644); err != nil {
		t.Fatal(err)
	}
	for id, rec := range records {
		if err := os.WriteFile(filepath.Join(db, "ID", id+".json"), []byte(rec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// record is an OSV record of the standard library with one SEMVER range
// of the given events and, when goos is set, one import limited to it.
func record(id, events, goos string) string {
	imports := `[{"path":"net/http"}]`
	if goos != "" {
		imports = `[{"path":"os","goos":["` + goos + `"]}]`
	}
	return `{"id":"` + id + `","summary":"bad ` + id + `","affected":[{"package":{"name":"stdlib","ecosystem":"Go"},` +
		`"ranges":[{"type":"SEMVER","events":` + events + `}],"ecosystem_specific":{"imports":` + imports + `}}]}`
}

func TestToolchainAdvisories(t *testing.T) {
	// The shapes of the real database: one branch fixed, two branches
	// fixed, a pre-release bound, an unfixed one, a Windows-only one.
	records := map[string]string{
		"GO-1": record("GO-1", `[{"introduced":"0"},{"fixed":"1.26.9"},{"introduced":"1.27.0-0"},{"fixed":"1.27.2"}]`, ""),
		"GO-2": record("GO-2", `[{"introduced":"0"},{"fixed":"1.26.10"},{"introduced":"1.27.0-0"},{"fixed":"1.27.3"}]`, ""),
		"GO-3": record("GO-3", `[{"introduced":"1.27.0-0"},{"fixed":"1.27.0-rc.3"}]`, ""),
		"GO-4": record("GO-4", `[{"introduced":"1.28.0-0"}]`, ""),
		"GO-5": record("GO-5", `[{"introduced":"0"}]`, "windows"),
	}
	db := writeDB(t, records, "GO-1", "GO-2", "GO-3", "GO-4", "GO-5")
	for _, tc := range []struct {
		version, goos string
		want          []string // ids
		wantFixed     string   // of the first
	}{
		{"go1.26.8", "linux", []string{"GO-1", "GO-2"}, "1.26.9"},
		{"go1.26.9", "linux", []string{"GO-2"}, "1.26.10"},
		{"go1.26.10", "linux", nil, ""},
		{"go1.27.0-rc.2", "linux", []string{"GO-1", "GO-2", "GO-3"}, "1.27.2"},
		{"go1.27.0", "linux", []string{"GO-1", "GO-2"}, "1.27.2"},
		{"go1.27.2", "linux", []string{"GO-2"}, "1.27.3"},
		{"go1.27.3", "linux", nil, ""},
		{"go1.27.3", "windows", []string{"GO-5"}, ""},
		{"go1.28.1", "linux", []string{"GO-4"}, ""},
	} {
		t.Run(tc.version+"/"+tc.goos, func(t *testing.T) {
			found, err := toolchainAdvisories(db, tc.version, tc.goos)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, a := range found {
				ids = append(ids, a.id)
			}
			if !slices.Equal(ids, tc.want) {
				t.Fatalf("advisories %v, want %v", ids, tc.want)
			}
			if len(found) > 0 && found[0].fixed != tc.wantFixed {
				t.Errorf("%s fixed in %q, want %q", found[0].id, found[0].fixed, tc.wantFixed)
			}
			var out strings.Builder
			if failed := printToolchain(&out, tc.version, found); failed != (len(tc.want) > 0) {
				t.Errorf("failed = %v with %d advisories:\n%s", failed, len(tc.want), out.String())
			}
		})
	}
}

func TestToolchainRefusesBadInput(t *testing.T) {
	good := writeDB(t, map[string]string{"GO-1": record("GO-1", `[{"introduced":"0"}]`, "")}, "GO-1")
	for _, tc := range []struct{ name, db, version, want string }{
		{"no go prefix", good, "1.27.3", "not a Go release"},
		{"not a version", good, "golatest", "not a Go release"},
		{"no database", filepath.Join(t.TempDir(), "missing"), "go1.27.3", "index"},
		// An index without standard-library advisories is broken, not clean.
		{"empty index", writeDB(t, nil), "go1.27.3", "no standard-library advisory"},
		{"missing record", writeDB(t, nil, "GO-7"), "go1.27.3", "GO-7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := toolchainAdvisories(tc.db, tc.version, "linux")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	// Each is below the next.
	ordered := []string{"0", "1.26.0-0", "1.26.0-rc.1", "1.26.0-rc.2", "1.26.0-rc.10", "1.26.0", "1.26.9", "1.26.10", "1.27.0-0", "1.27.0"}
	for i := range ordered {
		for j := range ordered {
			if got, want := compareVersions(ordered[i], ordered[j]), cmpInt(i, j); got != want {
				t.Errorf("compareVersions(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}
