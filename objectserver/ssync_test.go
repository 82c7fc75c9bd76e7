package objectserver

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// ssyncBody is a sender's whole exchange: missing check lines, then
// updates (subrequests as the sender writes them).
func ssyncBody(missing []string, updates string) string {
	return ":MISSING_CHECK: START\r\n" + strings.Join(missing, "") + ":MISSING_CHECK: END\r\n" +
		":UPDATES: START\r\n" + updates + ":UPDATES: END\r\n"
}

func TestSsyncReceiver(t *testing.T) {
	e := newEnv(t)
	hash := e.srv.swift.HashPath("AUTH_p1", "c", "o/bj")
	ts := e.next()
	archive := strings.Repeat("REBUILT-FRAGMENT ", 300)
	put := fmt.Sprintf("PUT /AUTH_p1/c/o/bj\r\nContent-Length: %d\r\nContent-Type: text/plain\r\nX-Timestamp: %s\r\nX-Object-Sysmeta-Ec-Frag-Index: 2\r\nX-Object-Sysmeta-Ec-Etag: %s\r\n\r\n%s",
		len(archive), ts, md5hex("whole"), archive)
	hdr := map[string]string{"X-Backend-Storage-Policy-Index": "2", "X-Backend-Ssync-Frag-Index": "2"}
	resp := e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody([]string{hash + " " + ts + "\r\n"}, put)), hdr)
	body := readBody(t, resp)
	want := "\r\n:MISSING_CHECK: START\r\n" + hash + " dm\r\n:MISSING_CHECK: END\r\n:UPDATES: START\r\n:UPDATES: END\r\n"
	if resp.StatusCode != http.StatusOK || body != want || resp.Header.Get("X-Backend-Accept-No-Commit") != "True" {
		t.Fatalf("SSYNC: %d %q", resp.StatusCode, body)
	}
	files := e.ecFiles()
	if len(files) != 1 || files[0] != ts+"#2#d.data" {
		t.Fatalf("files %v", files)
	}
	e.assertNoPlaintext("REBUILT-FRAGMENT")
	resp = e.do("GET", "/sda/1/AUTH_p1/c/o/bj", nil, map[string]string{"X-Backend-Storage-Policy-Index": "2"})
	if got := readBody(t, resp); resp.StatusCode != http.StatusOK || got != archive || resp.Header.Get("X-Object-Sysmeta-Ec-Etag") != md5hex("whole") {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	// The same offer again: nothing wanted. A newer one: data and meta.
	for _, c := range []struct{ offer, want string }{
		{hash + " " + ts + "\r\n", ""},
		{hash + " " + e.next() + "\r\n", hash + " dm"},
	} {
		resp = e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody([]string{c.offer}, "")), hdr)
		body = readBody(t, resp)
		if body != "\r\n:MISSING_CHECK: START\r\n"+c.want+"\r\n:MISSING_CHECK: END\r\n:UPDATES: START\r\n:UPDATES: END\r\n" {
			t.Fatalf("offer %q: %q", c.offer, body)
		}
	}
}

// TestSsyncRefusals: what a sender that does not follow the protocol
// gets: an :ERROR: line, never a subrequest run from a broken stream.
func TestSsyncRefusals(t *testing.T) {
	e := newEnv(t)
	hdr := map[string]string{"X-Backend-Storage-Policy-Index": "2", "X-Backend-Ssync-Frag-Index": "2"}
	for _, c := range []struct{ name, body string }{
		{"no start", "hello\r\n"},
		{"bad offer", ":MISSING_CHECK: START\r\nonlyhash\r\n:MISSING_CHECK: END\r\n"},
		{"hash escaping the partition", ":MISSING_CHECK: START\r\n..%2F..%2F..%2Fetc 1234567890.00000\r\n:MISSING_CHECK: END\r\n"},
		{"bad method", ssyncBody(nil, "GET /AUTH_p1/c/o\r\n\r\n")},
		{"PUT without length", ssyncBody(nil, "PUT /AUTH_p1/c/o\r\nX-Timestamp: 1\r\n\r\n")},
		{"DELETE with a body", ssyncBody(nil, "DELETE /AUTH_p1/c/o\r\nContent-Length: 3\r\n\r\nabc")},
		{"failed PUT", ssyncBody(nil, "PUT /AUTH_p1/c/o\r\nContent-Length: 1\r\nContent-Type: a/b\r\n\r\nx")},
	} {
		resp := e.do("SSYNC", "/sda/1", strings.NewReader(c.body), hdr)
		if body := readBody(t, resp); !strings.Contains(body, ":ERROR: ") {
			t.Errorf("%s: %q", c.name, body)
		}
	}
	if files := e.ecFiles(); len(files) != 0 {
		t.Fatalf("files %v", files)
	}
	resp := e.do("SSYNC", "/sda/1", strings.NewReader(""), map[string]string{"X-Backend-Storage-Policy-Index": "2", "X-Backend-Ssync-Frag-Index": "x"})
	if readBody(t, resp); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad frag index: %d", resp.StatusCode)
	}
}

func FuzzDecodeMissing(f *testing.F) {
	f.Add("9d41d8cd98f00b204e9800998ecf8427 1380144470.00000 m:186a0,t:4,durable:False")
	f.Add("9d41d8cd98f00b204e9800998ecf8427 1380144470.00000_0000000000000001")
	f.Fuzz(func(t *testing.T, line string) {
		o, err := decodeMissing(line)
		if err == nil && o.hash == "" {
			t.Fatal("an offer without a hash")
		}
		_ = encodeWanted(o, localState{})
	})
}

// TestSsyncConcurrencyBounded: as Swift's receiver, the server takes at
// most replication_concurrency SSYNC exchanges at once and answers the
// next 503 (the sender tries later); a finished exchange frees its slot.
// Without a bound, a peer could hold any number open.
func TestSsyncConcurrencyBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ReplicationConcurrency = 2 })
	hdr := map[string]string{"X-Backend-Storage-Policy-Index": "0"}
	var open []*io.PipeWriter
	for range 2 {
		pr, pw := io.Pipe()
		open = append(open, pw)
		resp := e.do("SSYNC", "/sda/1", pr, hdr)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("exchange %d: %d", len(open), resp.StatusCode)
		}
		t.Cleanup(func() { resp.Body.Close() })
	}
	resp := e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody(nil, "")), hdr)
	if body := readBody(t, resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Service Unavailable") {
		t.Fatalf("a third exchange: %d %q, want 503", resp.StatusCode, body)
	}
	_, _ = io.WriteString(open[0], ssyncBody(nil, ""))
	_ = open[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := e.do("SSYNC", "/sda/1", strings.NewReader(ssyncBody(nil, "")), hdr)
		body := readBody(t, resp)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after one exchange ended: %d %q", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = open[1].Close()
}
