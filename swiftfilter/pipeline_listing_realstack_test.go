package swiftfilter

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

var xmlObjectHash = regexp.MustCompile(`<object><name>([^<]*)</name><hash>([^<]*)</hash>`)

// listingsOpen checks, after writesKeyed, that the shape's JSON and XML
// listings of cont show what Swift shows for the same content: each
// object's MD5, an SLO's slo_etag and a static symlink's target ETag,
// never a sealed value; and that a DLO's ETag, which Swift's dlo computes
// from its segments' listing, is Swift's.
func (e *shapeEnv) listingsOpen(t *testing.T, shape, base, demoAcct, cont string) {
	t.Helper()
	s := e.stack
	demo := base + demoAcct
	parts := [][]byte{bytes.Repeat([]byte("a"), 1<<20), []byte("tail")}
	sloEtag := `"` + md5Hex([]byte(md5Hex(parts[0])+md5Hex(parts[1]))) + `"`
	e.must(t, 201, "PUT", demo+"/"+cont+"/link", s.Token, nil, map[string][]string{
		"X-Symlink-Target": {cont + "/plain"}, "X-Symlink-Target-Etag": {md5Hex([]byte("plain"))}})
	dloParts := []string{"dlo-a", "dlo-b"}
	for _, p := range dloParts {
		e.must(t, 201, "PUT", demo+"/"+cont+"-segs/dlo/"+p, s.Token, []byte(p), nil)
	}
	dloEtag := `"` + md5Hex([]byte(md5Hex([]byte(dloParts[0]))+md5Hex([]byte(dloParts[1])))) + `"`
	e.must(t, 201, "PUT", demo+"/"+cont+"/dlo", s.Token, nil, map[string][]string{"X-Object-Manifest": {cont + "-segs/dlo/"}})

	b := e.must(t, 200, "GET", demo+"/"+cont+"?format=json", s.Token, nil, nil)
	if bytes.Contains(b, []byte("arca1.")) {
		t.Errorf("%s: JSON listing shows sealed values: %s", shape, b)
	}
	var entries []map[string]any
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatalf("%s: JSON listing %q: %v", shape, b, err)
	}
	byName := map[string]map[string]any{}
	for _, en := range entries {
		name, _ := en["name"].(string)
		byName[name] = en
	}
	for name, want := range map[string]string{"plain": md5Hex([]byte("plain")), "copied": md5Hex([]byte("plain")), "by-alt": md5Hex([]byte("acl"))} {
		if got := byName[name]["hash"]; got != want {
			t.Errorf("%s: JSON listing: %s's hash %v, want %s", shape, name, got, want)
		}
	}
	if got := byName["slo"]["slo_etag"]; got != sloEtag {
		t.Errorf("%s: JSON listing: slo_etag %v, want %s", shape, got, sloEtag)
	}
	if h, _ := byName["slo"]["hash"].(string); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(h) {
		t.Errorf("%s: JSON listing: SLO manifest's hash %q, want an MD5", shape, h)
	}
	if got := byName["link"]["symlink_etag"]; got != md5Hex([]byte("plain")) {
		t.Errorf("%s: JSON listing: symlink_etag %v, want %s", shape, got, md5Hex([]byte("plain")))
	}
	if got := byName["link"]["symlink_path"]; got != demoAcct+"/"+cont+"/plain" {
		t.Errorf("%s: JSON listing: symlink_path %v", shape, got)
	}

	x := e.must(t, 200, "GET", demo+"/"+cont+"?format=xml", s.Token, nil, nil)
	if bytes.Contains(x, []byte("arca1.")) {
		t.Errorf("%s: XML listing shows sealed values: %s", shape, x)
	}
	xmlHashes := map[string]string{}
	for _, m := range xmlObjectHash.FindAllSubmatch(x, -1) {
		xmlHashes[string(m[1])] = string(m[2])
	}
	for name, en := range byName {
		if xmlHashes[name] != en["hash"] {
			t.Errorf("%s: XML listing: %s's hash %q, JSON's %v", shape, name, xmlHashes[name], en["hash"])
		}
	}
	if len(xmlHashes) != len(byName) {
		t.Errorf("%s: XML listing has %d objects, JSON %d:\n%s", shape, len(xmlHashes), len(byName), x)
	}

	// Swift's dlo: the MD5 of the segments' listing hashes, quoted.
	for _, method := range []string{"HEAD", "GET"} {
		req, err := http.NewRequestWithContext(t.Context(), method, demo+"/"+cont+"/dlo", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", s.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Etag"); resp.StatusCode != 200 || !strings.EqualFold(got, dloEtag) {
			t.Errorf("%s: %s DLO: %d, ETag %s, want Swift's %s", shape, method, resp.StatusCode, got, dloEtag)
		}
	}
}
