package api_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/internal/testenv"
)

// The hostile-request suite runs against a real arca-api process (its
// http.Server limits and timeouts are part of what is tested), speaking raw
// HTTP/1.1 over TCP so that requests Go's client would refuse to send
// (control characters, NUL, conflicting lengths) reach the server. Every
// case must get a clean 4xx (never a 5xx, never a hang) and leave every
// table of the database exactly as it was.
//
// Two framing cases are absent on purpose, because Go's server accepts them
// as RFC 9112 allows: an obs-fold continuation line is joined to the
// previous header with a space (it cannot create a header of its own), and
// Transfer-Encoding: chunked beside a Content-Length wins over it (a front
// proxy that frames by Content-Length instead must not forward such
// requests; docs/reliability.md).

// hostileServer starts arca-api on SQLite with short client timeouts and
// opens its database for counting rows.
func hostileServer(t *testing.T) (*testenv.API, *sql.DB) {
	t.Helper()
	srv := testenv.StartAPI(t, testenv.APIOptions{Extra: `
[DEFAULT]
client_header_timeout = 1
client_socket_timeout = 2
`})
	u := url.URL{Scheme: "sqlite", Path: "/" + filepath.Join(srv.Dir, "arca.sqlite")}
	db, _, err := dbconn.Open(context.Background(), u.String(), dbconn.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return srv, db
}

// allRowCounts counts the rows of every table, whatever tables exist.
func allRowCounts(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	sort.Strings(tables)
	var b strings.Builder
	for _, table := range tables {
		var n int
		// Table names come from sqlite_master, not from a request.
		if err := db.QueryRow(`SELECT COUNT(*) FROM "` + table + `"`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s=%d ", table, n)
	}
	return b.String()
}

// rawHTTP sends raw bytes and returns the status code of the response (0
// when the server closed the connection without one) and its text.
func rawHTTP(t *testing.T, addr string, raw []byte) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	go func() { _, _ = conn.Write(raw) }() // the server may answer before reading it all
	resp, err := io.ReadAll(conn)
	if err != nil && len(resp) == 0 {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("no answer within 15s")
		}
		return 0, ""
	}
	line, _, _ := strings.Cut(string(resp), "\r\n")
	parts := strings.SplitN(line, " ", 3)
	if len(parts) < 2 {
		return 0, string(resp)
	}
	code, _ := strconv.Atoi(parts[1])
	return code, string(resp)
}

// request spells an HTTP/1.1 request; headers are raw "Name: value" lines.
func request(method, target string, body string, headers ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, target)
	hasProject, hasLength, hasType := false, false, false
	for _, h := range headers {
		lower := strings.ToLower(h)
		hasProject = hasProject || strings.HasPrefix(lower, "x-project-id:")
		hasLength = hasLength || strings.HasPrefix(lower, "content-length:") || strings.HasPrefix(lower, "transfer-encoding:")
		hasType = hasType || strings.HasPrefix(lower, "content-type:")
		b.WriteString(h + "\r\n")
	}
	if !hasProject {
		b.WriteString("X-Project-Id: demo\r\n")
	}
	if body != "" && !hasType {
		b.WriteString("Content-Type: application/json\r\n")
	}
	if !hasLength {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

func TestHostileRequests(t *testing.T) {
	srv, db := hostileServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	status, resp := rawHTTP(t, addr, request("POST", "/v1/secrets", `{"name":"victim","payload":"p","payload_content_type":"text/plain"}`))
	if status != http.StatusCreated {
		t.Fatalf("creating the victim secret: %d\n%s", status, resp)
	}
	i := strings.Index(resp, "/v1/secrets/")
	id := resp[i+len("/v1/secrets/") : i+len("/v1/secrets/")+36]

	deepArray := `{"name":` + strings.Repeat("[", 12000) + strings.Repeat("]", 12000) + `}`
	deepObject := `{"metadata":` + strings.Repeat(`{"a":`, 10100) + `"v"` + strings.Repeat("}", 10100) + `}`
	chunked := func(total int) string {
		var b strings.Builder
		chunk := strings.Repeat("a", 1000)
		b.WriteString(`{"name":"`)
		for b.Len() < total {
			b.WriteString(chunk)
		}
		body := b.String()
		var out strings.Builder
		for len(body) > 0 {
			n := min(len(body), 4096)
			fmt.Fprintf(&out, "%x\r\n%s\r\n", n, body[:n])
			body = body[n:]
		}
		out.WriteString("0\r\n\r\n")
		return out.String()
	}
	tests := []struct {
		name string
		raw  []byte
		want int
	}{
		// Size limits.
		{"one huge header", request("GET", "/v1/secrets", "", "X-Pad: "+strings.Repeat("a", 80<<10)), 431},
		{"many headers", request("GET", "/v1/secrets", "", strings.TrimSuffix(strings.Repeat("X-Pad: "+strings.Repeat("b", 60)+"\r\n", 2000), "\r\n")), 431},
		{"huge request line", request("GET", "/v1/secrets/"+strings.Repeat("c", 80<<10), ""), 431},
		{"huge token", request("GET", "/v1/secrets", "", "X-Auth-Token: "+strings.Repeat("t", 70<<10)), 431},
		{"declared body too large", request("POST", "/v1/secrets", `{"name":"x"}`, "Content-Length: 100000000"), 413},
		{"chunked body too large", request("POST", "/v1/secrets", chunked(40000), "Transfer-Encoding: chunked"), 413},
		{"metadata body too large", request("PUT", "/v1/secrets/"+id+"/metadata", `{"metadata":{"a":"`+strings.Repeat("m", 70<<10)+`"}}`), 413},
		// Malformed bodies.
		{"deep JSON array", request("POST", "/v1/secrets", deepArray), 400},
		{"deep JSON object", request("PUT", "/v1/secrets/"+id+"/metadata", deepObject), 400},
		{"invalid UTF-8 name", request("POST", "/v1/secrets", "{\"name\":\"\xc3\x28\"}"), 400},
		{"invalid UTF-8 metadata key", request("PUT", "/v1/secrets/"+id+"/metadata", "{\"metadata\":{\"\xff\":\"v\"}}"), 400},
		{"invalid UTF-8 metadata value", request("PUT", "/v1/secrets/"+id+"/metadata", "{\"metadata\":{\"k\":\"\xfe\"}}"), 400},
		{"invalid UTF-8 text payload", request("POST", "/v1/secrets", "{\"payload\":\"\xed\xa0\x80\",\"payload_content_type\":\"text/plain\"}"), 400},
		{"NUL in JSON", request("POST", "/v1/secrets", "{\"name\":\"a\x00b\"}"), 400},
		{"UTF-16 body", request("POST", "/v1/secrets", "\xff\xfe{\x00}\x00", "Content-Type: application/json; charset=utf-16"), 400},
		// Names: traversal and NUL.
		{"traversal in id", request("DELETE", "/v1/secrets/../../../etc/passwd", ""), 404},
		{"encoded traversal in id", request("DELETE", "/v1/secrets/..%2f..%2f"+id, ""), 404},
		{"NUL after id", request("DELETE", "/v1/secrets/"+id+"%00", ""), 404},
		{"NUL inside id", request("DELETE", "/v1/secrets/"+id[:35]+"%00", ""), 404},
		{"raw NUL in path", request("DELETE", "/v1/secrets/"+id+"\x00", ""), 400},
		{"id with SQL", request("DELETE", "/v1/secrets/"+url.PathEscape("' OR '1'='1"), ""), 404},
		{"traversal metadata key (body)", request("PUT", "/v1/secrets/"+id+"/metadata", `{"metadata":{"../../etc":"v"}}`), 400},
		{"traversal metadata key (path)", request("PUT", "/v1/secrets/"+id+"/metadata/..%2f..%2fx", `{"key":"../../x","value":"v"}`), 400},
		{"NUL metadata key", request("POST", "/v1/secrets/"+id+"/metadata", `{"key":"a\u0000b","value":"v"}`), 400},
		{"NUL metadata key (path)", request("PUT", "/v1/secrets/"+id+"/metadata/a%00b", `{"key":"a\u0000b","value":"v"}`), 400},
		{"slash metadata key", request("POST", "/v1/secrets/"+id+"/metadata", `{"key":"a/b","value":"v"}`), 400},
		// Header injection and framing.
		{"CR in header value", request("POST", "/v1/secrets", `{"name":"x"}`, "X-Project-Id: demo\rX-Roles: admin"), 400},
		{"NUL in header value", request("POST", "/v1/secrets", `{"name":"x"}`, "X-Project-Id: de\x00mo"), 400},
		{"space in header name", request("POST", "/v1/secrets", `{"name":"x"}`, "X-Project Id: demo"), 400},
		{"conflicting lengths", request("POST", "/v1/secrets", `{"name":"x"}`, "Content-Length: 12", "Content-Length: 13"), 400},
		{"bad chunk size", request("POST", "/v1/secrets", "zz\r\n{}\r\n0\r\n\r\n", "Transfer-Encoding: chunked"), 400},
		{"CRLF in version header", request("GET", "/v1/secrets", "", "OpenStack-API-Version: key-manager 1.1\rSet-Cookie: x=1"), 400},
		{"absurd microversion", request("GET", "/v1/secrets", "", "OpenStack-API-Version: key-manager 1.99999999999999999999"), 400},
		// Paging.
		{"limit overflows", request("GET", "/v1/secrets?limit=99999999999999999999999", ""), 400},
		{"offset overflows", request("GET", "/v1/secrets?offset=99999999999999999999999", ""), 400},
		{"orders limit overflows", request("GET", "/v1/orders?limit=1e400", ""), 400},
		{"project keys offset overflows", request("GET", "/v1/project-keys?offset=-99999999999999999999999", ""), 400},
	}
	before := allRowCounts(t, db)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, resp := rawHTTP(t, addr, tt.raw)
			if status != tt.want {
				t.Fatalf("status %d, want %d\n%.600s", status, tt.want, resp)
			}
			if strings.Contains(resp, "Set-Cookie") || strings.Contains(resp, "goroutine ") {
				t.Fatalf("response carries injected or internal text:\n%.600s", resp)
			}
		})
	}
	if after := allRowCounts(t, db); after != before {
		t.Fatalf("hostile requests changed the database:\nbefore %s\nafter  %s", before, after)
	}

	// Huge but well-formed paging values are clamped, as Barbican does, and
	// the links they produce stay sane (no overflowed offsets).
	for _, list := range []string{"/v1/secrets", "/v1/orders", "/v1/project-keys"} {
		for _, q := range []string{"limit=9223372036854775807", "offset=9223372036854775807", "limit=9223372036854775807&offset=9223372036854775807", "limit=-5&offset=-5"} {
			status, resp := rawHTTP(t, addr, request("GET", list+"?"+q, ""))
			if status != http.StatusOK || strings.Contains(resp, "offset=-") {
				t.Errorf("GET %s?%s: %d\n%.600s", list, q, status, resp)
			}
		}
	}
	// The victim is untouched.
	if status, resp := rawHTTP(t, addr, request("GET", "/v1/secrets/"+id+"/payload", "", "Accept: text/plain")); status != 200 || !strings.HasSuffix(resp, "\r\n\r\np") {
		t.Fatalf("victim payload after the suite: %d\n%s", status, resp)
	}
	if logs := srv.Logs(); strings.Contains(logs, "goroutine ") || strings.Contains(logs, "panic") {
		t.Fatalf("arca-api logged a panic:\n%s", logs)
	}
}

// TestSlowClients opens connections that send their headers or body a byte
// at a time: the server's header and socket timeouts (1 s and 2 s here)
// must cut them off, and nothing may reach the database.
func TestSlowClients(t *testing.T) {
	srv, db := hostileServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	before := allRowCounts(t, db)
	body := `{"name":"slow","payload":"slow","payload_content_type":"text/plain"}`
	cases := []struct {
		name       string
		head, drip string
	}{
		{"slow headers", "POST /v1/secrets HTTP/1.1\r\nHost: x\r\n", "X-Project-Id: demo\r\nContent-Type: application/json\r\n"},
		{"slow body", fmt.Sprintf("POST /v1/secrets HTTP/1.1\r\nHost: x\r\nX-Project-Id: demo\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body)), body},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := conn.Write([]byte(c.head)); err != nil {
				t.Fatal(err)
			}
			cut := make(chan time.Duration, 1)
			var answer strings.Builder
			go func() {
				r := bufio.NewReader(conn)
				_, _ = io.Copy(&answer, r)
				cut <- time.Since(start)
			}()
			for i := 0; i < len(c.drip); i++ {
				select {
				case d := <-cut:
					t.Logf("cut after %s having sent %d of %d bytes; answer %q", d.Round(10*time.Millisecond), i, len(c.drip), firstLine(answer.String()))
					if strings.HasPrefix(answer.String(), "HTTP/1.1 2") || strings.HasPrefix(answer.String(), "HTTP/1.1 5") {
						t.Fatalf("a slow client got %q", firstLine(answer.String()))
					}
					return
				case <-time.After(250 * time.Millisecond):
				}
				if _, err := conn.Write([]byte{c.drip[i]}); err != nil {
					t.Logf("cut (write failed) after %s having sent %d of %d bytes", time.Since(start).Round(10*time.Millisecond), i, len(c.drip))
					return
				}
			}
			t.Fatalf("the server let a client take %s over %d bytes", time.Since(start).Round(time.Millisecond), len(c.drip))
		})
	}
	if after := allRowCounts(t, db); after != before {
		t.Fatalf("slow clients changed the database:\nbefore %s\nafter  %s", before, after)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}
