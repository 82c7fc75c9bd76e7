package objectserver

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"opendev.org/x/arca/objcrypt"
	"opendev.org/x/arca/objectserver/pickle"
)

// openListing opens a sealed listing value of project p1's keys, failing
// the test for anything that does not open.
func (e *env) openListing(path, field, token string) string {
	e.t.Helper()
	id, ok := objcrypt.ListingTokenKeyID(token)
	if !ok {
		e.t.Fatalf("%s of %s is not sealed: %q", field, path, token)
	}
	e.keys.mu.Lock()
	material := e.keys.keys["p1"][id]
	e.keys.mu.Unlock()
	lk, err := objcrypt.DeriveListingKey(objcrypt.ProjectKey{ID: id, Key: material})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := objcrypt.NewListingCipher(id, lk)
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := c.Open(token, path, field)
	if err != nil {
		e.t.Fatalf("%s of %s: %v", field, path, err)
	}
	return v
}

// openEtag splits a sealed X-Etag into its opened etag and its parameters,
// the sealed ones opened.
func (e *env) openEtag(path, v string) (string, []string) {
	e.t.Helper()
	parts := strings.Split(v, ";")
	etag := e.openListing(path, "etag", strings.TrimSpace(parts[0]))
	var params []string
	for _, p := range parts[1:] {
		name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if sealedListingParams[name] {
			val = e.openListing(path, name, val)
		}
		params = append(params, name+"="+val)
	}
	return etag, params
}

const listPath = "/AUTH_p1/c/o/bj"

// SLO's and a static symlink's overrides: the etag and the MD5 parameters
// sealed, each bound to its field; the symlink's path and size kept as
// they were, for the proxy's middlewares.
func TestContainerUpdateSealsOverrides(t *testing.T) {
	e := newEnv(t)
	const slo = "X-Object-Sysmeta-Container-Update-Override-Etag"
	for _, tc := range []struct {
		name, override string
		etag           string
		params         []string
		clear          []string
	}{
		{"slo", "0123456789abcdef0123456789abcdef; slo_etag=fedcba9876543210fedcba9876543210",
			"0123456789abcdef0123456789abcdef", []string{"slo_etag=fedcba9876543210fedcba9876543210"}, nil},
		{"symlink", "d41d8cd98f00b204e9800998ecf8427e; symlink_target=c2/t%3Bx; symlink_target_etag=00112233445566778899aabbccddeeff; symlink_target_bytes=12",
			"d41d8cd98f00b204e9800998ecf8427e",
			[]string{"symlink_target=c2/t%3Bx", "symlink_target_etag=00112233445566778899aabbccddeeff", "symlink_target_bytes=12"},
			[]string{" symlink_target=c2/t%3Bx", " symlink_target_bytes=12"}},
	} {
		readBody(t, e.put(objPath, "", map[string]string{slo: tc.override}))
		got := e.cont.last().Header.Get("X-Etag")
		for _, md5 := range []string{tc.etag, "fedcba9876543210fedcba9876543210", "00112233445566778899aabbccddeeff"} {
			if strings.Contains(got, md5) {
				t.Errorf("%s: update shows %s in clear: %s", tc.name, md5, got)
			}
		}
		for _, c := range tc.clear {
			if !strings.Contains(got, ";"+c) {
				t.Errorf("%s: parameter %q not kept byte for byte in %s", tc.name, c, got)
			}
		}
		etag, params := e.openEtag(listPath, got)
		if etag != tc.etag || strings.Join(params, "|") != strings.Join(tc.params, "|") {
			t.Errorf("%s: opened %s %v, want %s %v", tc.name, etag, params, tc.etag, tc.params)
		}
	}
}

// A sealed value is bound to its field: slo_etag's token does not open as
// the etag.
func TestSealEtagValueFieldsAndIdempotence(t *testing.T) {
	e := newEnv(t)
	readBody(t, e.put(objPath, "x", map[string]string{
		"X-Object-Sysmeta-Container-Update-Override-Etag": "; slo_etag=0123456789abcdef0123456789abcdef",
	}))
	got := e.cont.last().Header.Get("X-Etag")
	if !strings.HasPrefix(got, "; slo_etag="+objcrypt.ListingTokenPrefix) {
		t.Fatalf("empty etag part with slo_etag: %s", got)
	}
	_, tok, _ := strings.Cut(got, "=")
	if v := e.openListing(listPath, "slo_etag", tok); v != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("slo_etag opened to %q", v)
	}
	id, _ := objcrypt.ListingTokenKeyID(tok)
	lk, _ := objcrypt.DeriveListingKey(objcrypt.ProjectKey{ID: id, Key: e.keys.keys["p1"][id]})
	c, _ := objcrypt.NewListingCipher(id, lk)
	if _, err := c.Open(tok, listPath, "etag"); err == nil {
		t.Fatal("slo_etag's token opened as the etag")
	}
	// Sealed already: kept, not sealed twice.
	again, err := sealEtagValue(c, listPath, got)
	if err != nil || again != got {
		t.Fatalf("resealed: %q, %v", again, err)
	}
}

// The async pending of a failed update carries the sealed ETag: no
// plaintext MD5 in async_pending.
func TestAsyncPendingSealed(t *testing.T) {
	e := newEnv(t)
	e.cont.code = 503
	readBody(t, e.put(objPath, "hello", nil))
	e.srv.Wait()
	n := 0
	for _, f := range e.files() {
		data, _ := os.ReadFile(f)
		if bytes.Contains(data, []byte(md5hex("hello"))) {
			t.Errorf("plaintext MD5 in %s", f)
		}
		if !strings.Contains(f, "/async_pending/") {
			continue
		}
		n++
		v, err := pickle.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		h := v.(map[string]any)["headers"].(map[string]any)
		if etag, _ := e.openEtag(listPath, h["x-etag"].(string)); etag != md5hex("hello") {
			t.Fatalf("async pending etag opened to %s", etag)
		}
	}
	if n == 0 {
		t.Fatal("no async_pending written")
	}
}

// A POST's update is sealed under the key the object was written with;
// when that key cannot be had, no update goes (never a plaintext ETag).
func TestPostUpdateSealed(t *testing.T) {
	e := newEnv(t)
	readBody(t, e.put(objPath, "hello", nil))
	readBody(t, e.do("POST", objPath, nil, map[string]string{
		"X-Timestamp": e.next(), "X-Container-Host": e.contURL, "X-Container-Device": "cd", "X-Container-Partition": "9",
	}))
	cu := e.cont.last()
	if cu.Header.Get("X-Meta-Timestamp") == "" {
		t.Fatalf("last update is not the POST's: %v", cu.Header)
	}
	if etag, _ := e.openEtag(listPath, cu.Header.Get("X-Etag")); etag != md5hex("hello") {
		t.Fatalf("POST update etag opened to %s", etag)
	}
	before := len(e.cont.reqs)
	id := e.keys.active["p1"]
	e.keys.mu.Lock()
	e.keys.destroy[id] = true
	e.keys.mu.Unlock()
	resp := e.do("POST", objPath, nil, map[string]string{
		"X-Timestamp": e.next(), "X-Container-Host": e.contURL, "X-Container-Device": "cd", "X-Container-Partition": "9",
	})
	readBody(t, resp)
	e.srv.Wait()
	e.cont.mu.Lock()
	after := len(e.cont.reqs)
	e.cont.mu.Unlock()
	if resp.StatusCode/100 == 2 && after != before {
		t.Fatalf("POST %d with its key destroyed sent %d updates", resp.StatusCode, after-before)
	}
}

// A PUT or POST that names no container server seals nothing: no listing
// key is derived for an update that does not go out; one that names one
// sends it sealed.
func TestListingSealedOnlyWhenSent(t *testing.T) {
	e := newEnv(t)
	for _, method := range []string{"PUT", "POST"} {
		var body io.Reader
		if method == "PUT" {
			body = strings.NewReader("hello")
		}
		resp := e.do(method, objPath, body, map[string]string{"X-Timestamp": e.next(), "Content-Type": "text/plain"})
		readBody(t, resp)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s: %d", method, resp.StatusCode)
		}
	}
	e.srv.Wait()
	if n := e.srv.listingKeys.len(); n != 0 || e.cont.last() != nil {
		t.Fatalf("without X-Container-Host: %d listing keys derived, update sent %v", n, e.cont.last() != nil)
	}
	readBody(t, e.put(objPath, "hello", nil))
	e.srv.Wait()
	cu := e.cont.last()
	if cu == nil || e.srv.listingKeys.len() != 1 {
		t.Fatalf("with X-Container-Host: update %v, %d listing keys", cu != nil, e.srv.listingKeys.len())
	}
	if etag, _ := e.openEtag(listPath, cu.Header.Get("X-Etag")); etag != md5hex("hello") {
		t.Fatalf("update etag opened to %s", etag)
	}
}
