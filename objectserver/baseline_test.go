package objectserver

import (
	"crypto/md5" //nolint:gosec // Swift's ETag
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

// TestMinimalServerBaseline: the object server benchmark's baseline
// (testdata/minimalserver, beside arca-object-server in
// tools/bench-objectserver.sh) does the disk work it is said to do, so
// that what it costs is a durable Swift write and a read: a PUT leaves
// exactly one <timestamp>.data with the body and the metadata xattr in the
// object's directory (the older one unlinked) and the suffix in
// hashes.invalid; a GET answers the newest body and its MD5; an unknown
// object is a 404.
func TestMinimalServerBaseline(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "minimalserver")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/minimalserver").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	devices := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	p := testenv.StartProc(t, nil, bin, devices, addr)
	p.WaitHealthy(t, "http://"+addr+"/healthcheck")
	const path = "/sda/1/AUTH_a/c/o"
	url := "http://" + addr + path

	for i, body := range []string{"first body", "the second, newer body"} {
		ts := "1700000000.0000" + strconv.Itoa(i)
		status, _ := testenv.Do(t, http.MethodPut, url, body, map[string]string{"X-Timestamp": ts})
		if status != http.StatusCreated {
			t.Fatalf("PUT %d: status %d, want 201", i, status)
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sum := md5.Sum([]byte("the second, newer body")) //nolint:gosec // Swift's ETag
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Etag") != hex.EncodeToString(sum[:]) || resp.Header.Get("X-Timestamp") != "1700000000.00001" {
		t.Errorf("GET: %d, ETag %q, X-Timestamp %q; want 200, the second body's MD5 and timestamp", resp.StatusCode, resp.Header.Get("Etag"), resp.Header.Get("X-Timestamp"))
	}
	if status, _ := testenv.Do(t, http.MethodGet, url+"-missing", "", nil); status != http.StatusNotFound {
		t.Errorf("GET of an unknown object: %d, want 404", status)
	}

	pathSum := md5.Sum([]byte(path)) //nolint:gosec // the baseline's directory name
	hash := hex.EncodeToString(pathSum[:])
	part := filepath.Join(devices, "sda", "objects", "1")
	dir := filepath.Join(part, hash[29:], hash)
	names, err := os.ReadDir(dir)
	if err != nil || len(names) != 1 || names[0].Name() != "1700000000.00001.data" {
		t.Fatalf("object dir %s: %v, %v; want the newer .data alone", dir, names, err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, names[0].Name()))
	if string(data) != "the second, newer body" {
		t.Errorf(".data holds %q", data)
	}
	if xs := testenv.XattrNames(t, filepath.Join(dir, names[0].Name())); len(xs) != 1 || xs[0] != "user.swift.metadata" {
		t.Errorf(".data xattrs %v, want user.swift.metadata", xs)
	}
	inv, _ := os.ReadFile(filepath.Join(part, "hashes.invalid"))
	if strings.Count(string(inv), hash[29:]+"\n") != 2 {
		t.Errorf("hashes.invalid %q: want the suffix %s once per PUT", inv, hash[29:])
	}
}
