package objectserver_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"opendev.org/x/arca/objectserver/diskfile"
)

// clientFrom is an HTTP client whose connections leave from the local
// address ip: a second loopback address stands for a host outside the
// trusted networks.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
}

// TestUntrustedPeerGetsNothing runs the real binary
// with trusted_networks = 127.0.0.1/32 and talks to it from 127.0.0.2: every
// verb of the object protocol (and OPTIONS and the detailed health check)
// answers 403 and no byte of the object, while the plain /healthcheck
// stays open and the trusted peer is served. Before trusted_networks existed
// the untrusted peer read the object's plaintext.
func TestUntrustedPeerGetsNothing(t *testing.T) {
	n := newObjNode(t, t.TempDir())
	secret := []byte("plaintext that only the proxy may read")
	if code, err := n.put(http.DefaultClient, "secret", secret, 0); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT: %d %v", code, err)
	}
	n.kill(syscall.SIGTERM)
	f, err := os.OpenFile(n.conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "trusted_networks = 127.0.0.1/32")
	f.Close()
	n.start()

	outsider := clientFrom("127.0.0.2")
	ts := func() string { return diskfile.FromTime(time.Now()).Internal() }
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		body         string
	}{
		{"GET", n.objURL("secret"), nil, ""},
		{"GET", n.objURL("secret"), map[string]string{"Range": "bytes=0-9"}, ""},
		{"HEAD", n.objURL("secret"), nil, ""},
		{"PUT", n.objURL("planted"), map[string]string{"Content-Type": "text/plain"}, "planted by an outsider"},
		{"POST", n.objURL("secret"), map[string]string{"X-Object-Meta-Owner": "outsider"}, ""},
		{"DELETE", n.objURL("secret"), nil, ""},
		{"REPLICATE", n.url + "/" + n.device + "/1", nil, ""},
		{"OPTIONS", n.url + "/", nil, ""},
		{"GET", n.url + "/healthcheck/detailed", nil, ""},
		{"GET", n.url + "/healthcheck?detailed=1", nil, ""},
		{"GET", n.url + "/metrics", nil, ""},
	} {
		t.Run(tc.method+" "+strings.TrimPrefix(tc.path, n.url), func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Timestamp", ts())
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := outsider.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s from an untrusted peer: %d %q, want 403", tc.method, resp.StatusCode, b)
			}
			if bytes.Contains(b, secret[:9]) {
				t.Fatalf("plaintext served to an untrusted peer: %q", b)
			}
		})
	}
	// nothing the outsider sent changed the object
	if code, body := n.get("secret"); code != http.StatusOK || !bytes.Equal(body, secret) {
		t.Fatalf("trusted GET: %d %q", code, body)
	}
	if code, _ := n.get("planted"); code != http.StatusNotFound {
		t.Fatalf("an outsider's PUT was stored: %d", code)
	}
	// the plain health check stays open to load balancers and monitors
	resp, err := outsider.Get(n.url + "/healthcheck")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("plain /healthcheck from an untrusted peer: %d, want 200", resp.StatusCode)
	}
	// the trusted peer gets the OPTIONS too (so the 403 above is the peer's)
	req, _ := http.NewRequest("OPTIONS", n.url+"/", nil)
	resp, err = clientFrom("127.0.0.1").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OPTIONS from the trusted peer: %d", resp.StatusCode)
	}
}
