package objectserver_test

import (
	"net/http"
	"strings"
	"testing"
)

// The sysmeta Swift's SLO and symlink middleware set whose values hold
// MD5s are sealed at rest under the object's ETag key and answered to the
// proxy as sent (objcrypt/SPEC.md, "Middleware sysmeta"); a sealed value
// moved to another object or another name is refused, never shown. The
// whole-path disk scan (functional TestDiskScanWholePath) found them in
// the clear in an SLO manifest's .data before they were sealed.
func TestMiddlewareSysmetaAtRest(t *testing.T) {
	n := newObjNode(t, t.TempDir())
	slo, manifest, target, s3 := md5Hex("slo etag"), md5Hex("manifest body"), md5Hex("symlink target"), md5Hex("s3 parts")+"-1"
	hdr := map[string]string{
		"X-Object-Sysmeta-S3api-Etag":                     s3,
		"X-Object-Sysmeta-Slo-Etag":                       slo,
		"X-Object-Sysmeta-Slo-Size":                       "12345",
		"X-Object-Sysmeta-Container-Update-Override-Etag": manifest + "; slo_etag=" + slo,
		"X-Object-Sysmeta-Symlink-Target-Etag":            target,
	}
	for _, o := range []string{"m", "other"} {
		if r := n.send(t, http.MethodPut, o, "manifest "+o, hdr); r.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %d", o, r.StatusCode)
		}
	}
	md := readXattrMeta(t, n.dataFile(t, "m"))
	for _, k := range []string{"X-Object-Sysmeta-Slo-Etag", "X-Object-Sysmeta-Container-Update-Override-Etag", "X-Object-Sysmeta-Symlink-Target-Etag", "X-Object-Sysmeta-S3Api-Etag"} {
		if !strings.HasPrefix(md[k], "arca1:") {
			t.Errorf("%s stored as %q", k, md[k])
		}
	}
	if md["X-Object-Sysmeta-Slo-Size"] != "12345" {
		t.Errorf("a size is not sealed: %q", md["X-Object-Sysmeta-Slo-Size"])
	}
	scanXattrs(t, n.devices, []string{slo, manifest, target, s3})
	head := n.send(t, http.MethodHead, "m", "", nil)
	for k, v := range hdr {
		if got := head.Header.Get(k); got != v {
			t.Errorf("HEAD %s: %q, want %q", k, got, v)
		}
	}
	if r := n.send(t, http.MethodPost, "m", "", map[string]string{"X-Object-Meta-A": "b"}); r.StatusCode != http.StatusAccepted ||
		r.Header.Get("X-Object-Sysmeta-Slo-Etag") != slo {
		t.Errorf("POST: %d, Slo-Etag %q", r.StatusCode, r.Header.Get("X-Object-Sysmeta-Slo-Etag"))
	}

	mm := readXattrMeta(t, n.dataFile(t, "m"))
	for _, c := range []struct {
		what  string
		alter func(md map[string]string)
	}{
		{"moved from another object", func(md map[string]string) {
			md["X-Object-Sysmeta-Slo-Etag"] = mm["X-Object-Sysmeta-Slo-Etag"]
		}},
		{"moved to another name", func(md map[string]string) {
			md["X-Object-Sysmeta-Symlink-Target-Etag"] = md["X-Object-Sysmeta-Slo-Etag"]
		}},
	} {
		path := n.dataFile(t, "other")
		md := readXattrMeta(t, path)
		c.alter(md)
		writeXattrMeta(t, path, md)
		for _, v := range verbs {
			if code, b := n.request(t, v.method, "other", v.hdr); code != http.StatusNotFound || strings.Contains(string(b), slo) {
				t.Errorf("%s: %s answered %d %q", c.what, v.name, code, b)
			}
		}
		if !n.quarantined("other") {
			t.Errorf("%s: not quarantined", c.what)
		}
		if r := n.send(t, http.MethodPut, "other", "manifest other", hdr); r.StatusCode != http.StatusCreated {
			t.Fatalf("PUT other again: %d", r.StatusCode)
		}
	}
}
