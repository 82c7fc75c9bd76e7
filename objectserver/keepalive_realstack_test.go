package objectserver_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestNotModifiedKeepsTheConnection: a client of the Swift proxy (in front
// of arca-object-servers) revalidates an object with a conditional HEAD and
// GET, each answered 304, then reads the object, all on one keep-alive
// connection, as python-swiftclient and browsers do. The object server's
// 304 must carry Content-Length: 0 as Swift's does: without it, Swift's
// proxy (eventlet) announced the HEAD's 304 as chunked and ended it with a
// last chunk ("0\r\n\r\n") that the client then read as the start of its
// next answer.
func TestNotModifiedKeepsTheConnection(t *testing.T) {
	s := newStack(t)
	cont, tag := s.newContainer(t, "arca-ka-")
	body := "kept alive " + tag
	req, _ := http.NewRequest("PUT", s.Storage+"/"+cont+"/o", strings.NewReader(body))
	req.Header.Set("X-Auth-Token", s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("object PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("Etag")

	u, err := url.Parse(s.Storage)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(conn)
	path := u.Path + "/" + cont + "/o"
	for i, step := range []struct {
		method, cond string
		want         int
		wantBody     string
	}{
		{"HEAD", "If-None-Match: " + etag, http.StatusNotModified, ""},
		{"GET", "If-None-Match: " + etag, http.StatusNotModified, ""},
		{"HEAD", "If-None-Match: " + etag, http.StatusNotModified, ""},
		{"GET", "X-Step: plain", http.StatusOK, body},
	} {
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nX-Auth-Token: %s\r\n%s\r\n\r\n", step.method, path, u.Host, s.Token, step.cond)
		resp, err := http.ReadResponse(br, &http.Request{Method: step.method})
		if err != nil {
			t.Fatalf("step %d, %s on the kept connection: %v", i, step.method, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != step.want || string(got) != step.wantBody {
			t.Fatalf("step %d, %s: %d %q (%v); want %d %q", i, step.method, resp.StatusCode, got, err, step.want, step.wantBody)
		}
		if step.want == http.StatusNotModified && resp.Header.Get("Content-Type") == "text/html; charset=UTF-8" {
			t.Errorf("step %d: the 304 carries swob's default Content-Type, not the object's", i)
		}
	}
}
