package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/tlsconf"
	"opendev.org/x/arca/internal/tlsconf/tlsconftest"
)

// TestNoHTTP2 holds the claim tools/vuln-accepted.txt makes for the
// standard library's HTTP/2 server advisories: no Arca listener ever speaks
// HTTP/2. A TLS listener offers only http/1.1 by ALPN (a client that asks
// for h2 alone is refused in the handshake, one that prefers h2 gets
// HTTP/1.1), and a plain one answers HTTP/2 with prior knowledge (h2c)
// with no HTTP/2 frames. Every listener is built as the three servers
// build theirs: an http.Server with no Protocols, serving on
// Options.Listener.
func TestNoHTTP2(t *testing.T) {
	env := tlsconftest.New(t)
	roots := x509.NewCertPool()
	roots.AddCert(env.CA.Cert)
	pair, err := tls.X509KeyPair(env.ClientCert, env.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	clientTLS := func(protos ...string) *tls.Config {
		return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, NextProtos: protos}
	}
	for _, tc := range []struct {
		name string
		opts tlsconf.Options
	}{
		{"plain", tlsconf.Options{}},
		{"tls", tlsconf.Options{CertFile: env.CertFile, KeyFile: env.KeyFile}},
		{"tls with client certificates", tlsconf.Options{CertFile: env.CertFile, KeyFile: env.KeyFile, CAFile: env.CAFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, tc.opts)
			if !tc.opts.Enabled() {
				// HTTP/2 with prior knowledge, as a client that wants h2c.
				var p http.Protocols
				p.SetUnencryptedHTTP2(true)
				c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: &p}}
				if resp, err := c.Get("http://" + addr + "/"); err == nil {
					proto := resp.Proto
					resp.Body.Close()
					t.Fatalf("cleartext HTTP/2 (prior knowledge) answered %s %s", resp.Status, proto)
				}
				return
			}
			// A client that prefers h2 and can fall back gets HTTP/1.1.
			var p http.Protocols
			p.SetHTTP1(true)
			p.SetHTTP2(true)
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: clientTLS(), Protocols: &p, ForceAttemptHTTP2: true,
			}}
			resp, err := c.Get("https://" + addr + "/")
			if err != nil {
				t.Fatalf("HTTPS request offering h2 and http/1.1: %v", err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != 1 {
				t.Fatalf("a client offering h2 got %s, want HTTP/1.1", resp.Proto)
			}
			// A client that offers h2 alone does not get a connection.
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, clientTLS("h2"))
			if err == nil {
				proto := conn.ConnectionState().NegotiatedProtocol
				conn.Close()
				t.Fatalf("a TLS handshake offering only h2 succeeded (ALPN %q)", proto)
			}
			if !strings.Contains(err.Error(), "no application protocol") {
				t.Errorf("handshake offering only h2: %v, want the server's no_application_protocol alert", err)
			}
		})
	}
}

// serve runs an http.Server, configured as Arca's servers are, on a
// loopback listener wrapped by o, and returns its address.
func serve(t *testing.T, o tlsconf.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := o.Listener(ln)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.Proto)) }),
		ReadHeaderTimeout: 5 * time.Second,
		// The refused handshakes are the point; keep them out of the output.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.Serve(wrapped) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}
