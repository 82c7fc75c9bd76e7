package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeSwift is a Swift API that keeps objects in memory; it answers 503 to
// PUTs of objects larger than maxPut (when set), as a broken path would.
func fakeSwift(t *testing.T, maxPut int64) *httptest.Server {
	var mu sync.Mutex
	objs := map[string][]byte{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") != "tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		isObject := strings.Count(r.URL.Path, "/") >= 4 // /v1/AUTH_p/cont/obj
		switch r.Method {
		case http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			if maxPut > 0 && int64(len(b)) > maxPut {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			mu.Lock()
			objs[r.URL.Path] = b
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
		case http.MethodGet:
			mu.Lock()
			b, ok := objs[r.URL.Path]
			mu.Unlock()
			if !ok || !isObject {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			_, _ = w.Write(b)
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// TestObjOneTargetFails: a target whose large PUTs fail gets rows that
// say so; the other targets' figures are still written.
func TestObjOneTargetFails(t *testing.T) {
	ks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v3/auth/tokens" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("X-Subject-Token", "tok")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"token":{"project":{"id":"p"}}}`)
	}))
	defer ks.Close()
	for k, v := range map[string]string{"KEYSTONE_URL": ks.URL, "DEMO_USER": "demo", "DEMO_PASSWORD": "x",
		"DEMO_PROJECT": "demo", "USER_DOMAIN": "Default", "PROJECT_DOMAIN": "Default"} {
		t.Setenv("ARCA_TEST_"+k, v)
	}
	good, bad := fakeSwift(t, 0), fakeSwift(t, 1<<20)
	out := filepath.Join(t.TempDir(), "obj.json")
	err := objCmd([]string{"-target", "good=" + good.URL, "-target", "bad=" + bad.URL,
		"-sizes", "4096,2097152", "-duration", "100ms", "-n-large", "2", "-c-small", "2", "-c-large", "1", "-out", out})
	if err == nil || !strings.Contains(err.Error(), "bad PUT 2097152") {
		t.Errorf("objCmd: %v, want the bad target's large PUT named", err)
	}
	var rows []ObjRow
	if err := readJSON(out, &rows); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(rows, "", " ")
	got := map[string]ObjRow{}
	for _, r := range rows {
		got[r.Target+" "+r.Op+" "+humanSize(r.Size)] = r
	}
	for _, tc := range []struct {
		row    string
		errors bool
		sample string
	}{
		{"good PUT 4 KiB", false, ""}, {"good GET 4 KiB", false, ""},
		{"good PUT 2 MiB", false, ""}, {"good GET 2 MiB", false, ""},
		{"bad PUT 4 KiB", false, ""}, {"bad GET 4 KiB", false, ""},
		{"bad PUT 2 MiB", true, "warm-up PUT: 503"},
		{"bad GET 2 MiB", true, "no 2097152-byte objects to GET"},
	} {
		r, ok := got[tc.row]
		switch {
		case !ok:
			t.Errorf("no row %q in\n%s", tc.row, b)
		case tc.errors != (r.Errors > 0) || !strings.HasPrefix(r.ErrorSample, tc.sample):
			t.Errorf("%s: %d errors (%q), want errors %v (%q)", tc.row, r.Errors, r.ErrorSample, tc.errors, tc.sample)
		case !tc.errors && (r.Requests == 0 || r.RPS <= 0):
			t.Errorf("%s: %d requests, %.1f req/s", tc.row, r.Requests, r.RPS)
		}
	}
	if len(rows) != 8 {
		t.Errorf("%d rows, want 8:\n%s", len(rows), b)
	}
}
