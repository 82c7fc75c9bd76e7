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

// fakeKeystone answers every login with token "tok" for project "p", and
// points the stack account's settings at it.
func fakeKeystone(t *testing.T) {
	ks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v3/auth/tokens" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("X-Subject-Token", "tok")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"token":{"project":{"id":"p"}}}`)
	}))
	t.Cleanup(ks.Close)
	for k, v := range map[string]string{"KEYSTONE_URL": ks.URL, "DEMO_USER": "demo", "DEMO_PASSWORD": "x",
		"DEMO_PROJECT": "demo", "USER_DOMAIN": "Default", "PROJECT_DOMAIN": "Default"} {
		t.Setenv("ARCA_TEST_"+k, v)
	}
}

// TestObjRounds: with -rounds, each round of a phase starts with the next
// target, every round writes new objects, and each target gets one row
// over all its rounds.
func TestObjRounds(t *testing.T) {
	fakeKeystone(t)
	var mu sync.Mutex
	var order []string       // the target of each round's first warm-up PUT
	puts := map[string]int{} // object names PUT, by name
	logging := func(name string, next http.Handler) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/s4096-") {
				mu.Lock()
				if strings.HasSuffix(r.URL.Path, "-0") && strings.Contains(r.URL.Path, "-warm-") {
					order = append(order, name)
				}
				puts[name+r.URL.Path]++
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	a, b := logging("a", fakeSwift(t, 0).Config.Handler), logging("b", fakeSwift(t, 0).Config.Handler)
	out := filepath.Join(t.TempDir(), "obj.json")
	if err := objCmd([]string{"-target", "a=" + a, "-target", "b=" + b, "-sizes", "4096", "-duration", "50ms",
		"-c-small", "2", "-rounds", "3", "-out", out}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "a,b,b,a,a,b" {
		t.Errorf("rounds' order of targets %s, want a,b,b,a,a,b", got)
	}
	for name, n := range puts {
		if n != 1 {
			t.Errorf("%s PUT %d times, want every round to write its own objects", name, n)
		}
	}
	var rows []ObjRow
	if err := readJSON(out, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4 (a and b, PUT and GET)", len(rows))
	}
	for _, r := range rows {
		if r.Requests == 0 || r.RPS <= 0 || r.Errors != 0 {
			t.Errorf("%s %s: %d requests, %.1f req/s, %d errors", r.Target, r.Op, r.Requests, r.RPS, r.Errors)
		}
	}
	if err := objCmd([]string{"-target", "a=" + a, "-rounds", "0"}); err == nil {
		t.Error("-rounds 0 accepted")
	}
}

// TestObjOneTargetFails: a target whose large PUTs fail gets rows that
// say so; the other targets' figures are still written.
func TestObjOneTargetFails(t *testing.T) {
	fakeKeystone(t)
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
