package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"opendev.org/x/arca/internal/testenv"
)

// call sends a no-auth request as project "demo" and returns status and body.
func call(t *testing.T, method, u, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Project-Id", "demo")
	req.Header.Set("X-User-Id", "alice")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// traceMarkers are what a stack trace or an internal error leaking into a
// response or a log looks like.
var traceMarkers = []string{"goroutine ", "panic", ".go:", "runtime/", "dial tcp", "sql: ", "Error 1"}

// TestDatabaseOutageRealServer runs arca-api on MariaDB through a TCP
// proxy, cuts the proxy (the database host gone: connections refused,
// pooled ones reset), expects 503 with Barbican's error body and no
// internal detail on every route that needs the database, then restores it
// and expects the same process to serve again with no manual step.
func TestDatabaseOutageRealServer(t *testing.T) {
	_, dsn := testenv.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" {
		testenv.StackMissing(t, "the test server is reached over "+cfg.Net+", not TCP (the proxy forwards TCP)")
	}
	proxy := testenv.StartTCPProxy(t, cfg.Addr)
	dbURL := url.URL{Scheme: "mysql+pymysql", User: url.UserPassword(cfg.User, cfg.Passwd), Host: proxy.Addr,
		Path: "/" + cfg.DBName, RawQuery: "charset=utf8mb4&connect_timeout=2&read_timeout=5&write_timeout=5"}
	if cfg.Passwd == "" {
		dbURL.User = url.User(cfg.User)
	}
	srv := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: dbURL.String()})

	status, body := call(t, "POST", srv.URL+"/v1/secrets", `{"name":"before","payload":"outage-test-payload","payload_content_type":"text/plain"}`)
	if status != http.StatusCreated {
		t.Fatalf("store before the outage: %d %s", status, body)
	}
	var created struct {
		SecretRef string `json:"secret_ref"`
	}
	_ = json.Unmarshal(body, &created)
	id := created.SecretRef[strings.LastIndex(created.SecretRef, "/")+1:]

	proxy.Cut()
	requests := []struct{ method, path, body string }{
		{"POST", "/v1/secrets", `{"name":"during","payload":"x","payload_content_type":"text/plain"}`},
		{"GET", "/v1/secrets/" + id, ""},
		{"GET", "/v1/secrets/" + id + "/payload", ""},
		{"GET", "/v1/secrets", ""},
		{"PUT", "/v1/secrets/" + id + "/metadata", `{"metadata":{"a":"b"}}`},
		{"DELETE", "/v1/secrets/" + id, ""},
		{"POST", "/v1/orders", `{"type":"key","meta":{"algorithm":"aes","bit_length":256}}`},
		{"GET", "/v1/orders", ""},
		{"GET", "/v1/project-keys/active", ""},
	}
	start := time.Now()
	for _, r := range requests {
		status, body := call(t, r.method, srv.URL+r.path, r.body)
		if status != http.StatusServiceUnavailable {
			t.Errorf("%s %s with the database gone: %d, want 503: %s", r.method, r.path, status, body)
			continue
		}
		var eb struct {
			Code        int    `json:"code"`
			Title       string `json:"title"`
			Description string `json:"description"`
		}
		if err := json.Unmarshal(body, &eb); err != nil || eb.Code != 503 || eb.Title != "Service Unavailable" || eb.Description == "" {
			t.Errorf("%s %s: not Barbican's error body: %s", r.method, r.path, body)
		}
		for _, m := range traceMarkers {
			if strings.Contains(string(body), m) {
				t.Errorf("%s %s: response shows internals (%q): %s", r.method, r.path, m, body)
			}
		}
	}
	t.Logf("%d requests answered 503 in %s", len(requests), time.Since(start).Round(time.Millisecond))
	// oslo-style health (docs/operations.md): the plain check keeps
	// answering (a database outage must not drain every node at once), the
	// operators' detailed check names the database.
	if status, body := call(t, "GET", srv.URL+"/healthcheck", ""); status != http.StatusOK {
		t.Errorf("plain healthcheck with the database gone: %d %s", status, body)
	}
	if status, body := call(t, "GET", srv.URL+"/healthcheck/detailed", ""); status != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), `"database":{"ok":false`) {
		t.Errorf("detailed healthcheck with the database gone: %d %s", status, body)
	}

	proxy.Restore(t)
	restored := time.Now()
	for {
		status, body := call(t, "GET", srv.URL+"/v1/secrets/"+id+"/payload", "")
		if status == http.StatusOK {
			if string(body) != "outage-test-payload" {
				t.Fatalf("payload after recovery: %q", body)
			}
			break
		}
		if time.Since(restored) > 15*time.Second {
			t.Fatalf("no recovery 15s after the database came back: %d %s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("recovered %s after the database came back", time.Since(restored).Round(time.Millisecond))
	if status, body := call(t, "POST", srv.URL+"/v1/secrets", `{"name":"after","payload":"x","payload_content_type":"text/plain"}`); status != http.StatusCreated {
		t.Fatalf("store after recovery: %d %s", status, body)
	}
	if logs := srv.Logs(); strings.Contains(logs, "goroutine ") || strings.Contains(logs, "panic") {
		t.Errorf("arca-api logged a stack trace or panic:\n%s", logs)
	}
}

// TestKill9UnderConcurrentStores kills arca-api with SIGKILL while eight
// clients store secrets, starts a new arca-api on the same database and
// master key, and reads back every secret that was acknowledged with 201:
// an acknowledgement means the secret is durable.
func TestKill9UnderConcurrentStores(t *testing.T) {
	_, dsn := testenv.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql+pymysql", User: url.UserPassword(cfg.User, cfg.Passwd), Host: cfg.Addr,
		Path: "/" + cfg.DBName, RawQuery: "charset=utf8mb4"}
	if cfg.Passwd == "" {
		u.User = url.User(cfg.User)
	}
	if cfg.Net == "unix" {
		u.Host, u.RawQuery = "", url.Values{"unix_socket": {cfg.Addr}, "charset": {"utf8mb4"}}.Encode()
	}
	first := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: u.String()})

	type acked struct{ id, payload string }
	var (
		mu    sync.Mutex
		acks  []acked
		fails int
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				payload := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "worker %d secret %d %d", w, i, time.Now().UnixNano()))
				req, _ := http.NewRequestWithContext(ctx, "POST", first.URL+"/v1/secrets", strings.NewReader(
					`{"payload":"`+payload+`","payload_content_type":"application/octet-stream","payload_content_encoding":"base64"}`))
				req.Header.Set("X-Project-Id", "demo")
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					mu.Lock()
					fails++
					mu.Unlock()
					return // the server is gone
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					continue
				}
				var body struct {
					SecretRef string `json:"secret_ref"`
				}
				if json.Unmarshal(b, &body) != nil {
					continue
				}
				mu.Lock()
				acks = append(acks, acked{body.SecretRef[strings.LastIndex(body.SecretRef, "/")+1:], payload})
				mu.Unlock()
			}
		}()
	}
	// Kill once the load is well under way.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acks)
		mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.Kill()
	wg.Wait()
	cancel()
	if len(acks) == 0 {
		t.Fatal("no secret was acknowledged before the kill")
	}

	second := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: u.String(), MasterKeyFile: first.KeyFile})
	for _, a := range acks {
		req, _ := http.NewRequest("GET", second.URL+"/v1/secrets/"+a.id+"/payload", nil)
		req.Header.Set("X-Project-Id", "demo")
		req.Header.Set("Accept", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want, _ := base64.StdEncoding.DecodeString(a.payload); resp.StatusCode != 200 || string(b) != string(want) {
			t.Errorf("acknowledged secret %s after kill -9: %d %q, want %q", a.id, resp.StatusCode, b, want)
		}
	}
	t.Logf("%d secrets acknowledged before kill -9, %d requests cut; all readable from a new arca-api", len(acks), fails)
}
