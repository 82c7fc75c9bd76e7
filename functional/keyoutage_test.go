package functional_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/health"
	"opendev.org/x/arca/internal/testenv"
)

// TestKeyServiceOutageRealStack is issue 9's "key service unreachable for
// longer than the cache TTLs" on the whole Swift path, through each shape
// of arca (the reverse proxy, the pipeline middleware): the filter (or the
// decision socket's process) and both object servers reach arca-api
// through a testenv.TCPProxy (the URL registered in the catalog) with 2 s
// key caches. The proxy is cut for longer than the
// caches: object GETs answer 503 (never 200 with other bytes, never 500)
// and a PUT answers 503 with nothing written on either device; restored,
// the same processes serve every object byte for byte again.
func TestKeyServiceOutageRealStack(t *testing.T) {
	for _, shape := range []string{shapeProxy, shapePipeline} {
		t.Run(shape, func(t *testing.T) { keyServiceOutage(t, shape) })
	}
}

func keyServiceOutage(t *testing.T, shape string) {
	const ttl = 2 // seconds, every key cache of the filter and object servers
	var kp *testenv.TCPProxy
	e := newEnvWith(t, envOptions{cacheTTL: ttl, shape: shape, keyServiceURL: func(apiAddr string) string {
		kp = testenv.StartTCPProxy(t, apiAddr)
		return "http://" + kp.Addr
	}})
	demo := e.users[testenv.UserDemo]
	acct := "AUTH_" + demo.project
	cont := "outage-" + e.tag
	base := e.storage(demo.project) + "/" + cont
	marker := []byte("ARCA-OUTAGE-PLAINTEXT-" + e.tag)

	if code, b := do(t, "PUT", base, demo.token, nil, nil); code != 201 && code != 202 {
		t.Fatalf("container PUT: %d %s", code, b)
	}
	t.Cleanup(func() {
		for _, name := range []string{"small", "medium", "large", "during-outage"} {
			do(t, "DELETE", base+"/"+name, demo.token, nil, nil)
		}
		do(t, "DELETE", base, demo.token, nil, nil)
	})
	objects := map[string][]byte{}
	for name, size := range map[string]int{"small": 100, "medium": 200 << 10, "large": 1<<20 + 333} {
		b := make([]byte, size)
		_, _ = rand.Read(b)
		copy(b, marker)
		objects[name] = b
		if code, body := do(t, "PUT", base+"/"+name, demo.token, b, nil); code != 201 {
			t.Fatalf("PUT %s: %d %s", name, code, body)
		}
		if code, got := do(t, "GET", base+"/"+name, demo.token, nil, nil); code != 200 || !bytes.Equal(got, b) {
			t.Fatalf("GET %s before the outage: %d, %d bytes, identical %v", name, code, len(got), bytes.Equal(got, b))
		}
	}

	// The outage: longer than every cache TTL (and its error cache).
	kp.Cut()
	cut := time.Now()
	time.Sleep(2*ttl*time.Second + 500*time.Millisecond)

	// Few requests on purpose: Swift's proxy error-limits an object server
	// after 10 errors a minute (error_suppression_limit), which would
	// outlast the outage by a minute.
	bad := func(what string, code int, body []byte) {
		t.Helper()
		s := string(body)
		for _, leak := range []string{string(marker), "goroutine ", "panic", ".go:", "Traceback"} {
			if strings.Contains(s, leak) {
				t.Errorf("%s during the outage: %d body carries %q: %.300s", what, code, leak, s)
			}
		}
	}
	keyServiceHealth(t, e, "during the outage", false, kp.Addr)
	for name := range objects {
		code, body := do(t, "GET", base+"/"+name, demo.token, nil, nil)
		bad("GET "+name, code, body)
		if code != 503 {
			t.Errorf("GET %s %.1fs into the outage: %d (%d bytes), want 503", name, time.Since(cut).Seconds(), code, len(body))
		}
	}
	newObj := append(append([]byte(nil), marker...), []byte("-WRITTEN-DURING-OUTAGE")...)
	code, body := do(t, "PUT", base+"/during-outage", demo.token, newObj, nil)
	bad("PUT", code, body)
	if code != 503 {
		t.Errorf("PUT during the outage: %d %.200s, want 503", code, body)
	}
	if ids := e.keyIDs(acct, cont, "during-outage"); len(ids) != 0 {
		t.Errorf("PUT during the outage left %d .data file(s) on the devices", len(ids))
	}
	if hits := e.grepDevices([]byte("-WRITTEN-DURING-OUTAGE")); len(hits) != 0 {
		t.Errorf("plaintext of the refused PUT on disk: %v", hits)
	}
	t.Logf("outage of %.1fs (key caches %ds): %d GETs and a PUT, all 503", time.Since(cut).Seconds(), ttl, len(objects))

	// Back: no restart. The error cache (ttl) must pass first.
	kp.Restore(t)
	restored := time.Now()
	keyServiceHealth(t, e, "after the restore", true, kp.Addr)
	time.Sleep(ttl*time.Second + 200*time.Millisecond)
	for name, want := range objects {
		var got []byte
		var code int
		for try := 0; try < 5; try++ {
			if code, got = do(t, "GET", base+"/"+name, demo.token, nil, nil); code == 200 {
				break
			}
			time.Sleep(time.Second)
		}
		if code != 200 || !bytes.Equal(got, want) {
			t.Errorf("GET %s after the restore: %d, %d bytes, identical %v", name, code, len(got), bytes.Equal(got, want))
		}
	}
	if code, _ := do(t, "GET", base+"/during-outage", demo.token, nil, nil); code != 404 {
		t.Errorf("the object refused during the outage: GET %d, want 404", code)
	}
	// Writes work again too, and read back.
	after := []byte(fmt.Sprintf("after the outage %s", e.tag))
	if code, b := do(t, "PUT", base+"/during-outage", demo.token, after, nil); code != 201 {
		t.Errorf("PUT after the restore: %d %s", code, b)
	} else if code, got := do(t, "GET", base+"/during-outage", demo.token, nil, nil); code != 200 || !bytes.Equal(got, after) {
		t.Errorf("GET of the PUT after the restore: %d %q", code, got)
	}
	t.Logf("recovered %.1fs after the restore", time.Since(restored).Seconds())

	for name, l := range e.logs {
		if s := l.String(); strings.Contains(s, "panic") || strings.Contains(s, "goroutine ") {
			t.Errorf("%s logged a panic:\n%s", name, testenv.Tail(s, 3000))
		}
	}
}

// keyServiceHealth checks the operators' view of the key service: the
// detailed health check of the filter (in the reverse-proxy shape: the
// pipeline's decision process serves no HTTP) and of every object server reports
// it ok (200), or not ok (503) while it is out of reach, and shows no
// address (not even the key service's, keyAddr) nor any URL.
func keyServiceHealth(t *testing.T, e *env, when string, wantOK bool, keyAddr string) {
	t.Helper()
	services := map[string]string{}
	if e.shape == shapeProxy {
		services["arca-swift-filter"] = e.filter
	}
	for i, u := range e.objURLs {
		services[fmt.Sprintf("arca-object-server %d", i+1)] = u
	}
	wantCode := http.StatusServiceUnavailable
	if wantOK {
		wantCode = http.StatusOK
	}
	for name, base := range services {
		code, body := do(t, "GET", base+"/healthcheck/detailed", "", nil, nil)
		var rep health.Report
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Errorf("%s: detailed health of %s: %d %.300s: %v", when, name, code, body, err)
			continue
		}
		ks, ok := rep.Checks["key_service"]
		if code != wantCode || !ok || ks.OK != wantOK {
			t.Errorf("%s: detailed health of %s: %d %s, want %d with key_service ok=%v", when, name, code, body, wantCode, wantOK)
		}
		for _, leak := range []string{keyAddr, "127.0.0.1", "http", e.apiURL} {
			if strings.Contains(string(body), leak) {
				t.Errorf("%s: detailed health of %s leaks %q: %s", when, name, leak, body)
			}
		}
	}
}
